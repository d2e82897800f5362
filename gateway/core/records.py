"""Lines in, accepted records or rejections with a reason out. No I/O.

A codec per line format (docs/formats.md). An accepted record is the device's fields as text,
exactly as sent, joined by commas (``b"17,0.017000,0.1234"``), ready to follow ``seq`` and
``received_at`` in a batch row. A rejected line carries a reason from :class:`Reason` and a
detail that carries the numbers.

Decoding works on a list of lines at a time: when every line of a read is well-formed (the
usual case) one compiled regular expression checks them all at C speed, and only a read that
holds a bad line is examined line by line.
"""

from __future__ import annotations

import enum
import functools
import json
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

NUMBER = rb"-?\d+(?:\.\d+)?"
COUNTER = rb"(?:0|[1-9]\d*)"
# The same for whole reads, possessive (no backtracking): about 1.5x faster on 70-byte lines.
_FAST_NUMBER = rb"-?\d++(?:\.\d++)?+"
_FAST_COUNTER = rb"(?:0|[1-9]\d*+)"
# A text field may not hold what would need CSV quoting or hide in a terminal.
TEXT = rb'[^,"\x00-\x1f\x7f]*'

_NUMBER_RE = re.compile(NUMBER)
_COUNTER_RE = re.compile(COUNTER)
_TEXT_RE = re.compile(TEXT)
_COUNTERS_RE = re.compile(rb"^(\d+),", re.MULTILINE)
_NMEA_NAME_RE = re.compile(r"[A-Z0-9]{1,10}")
_HEX_RE = re.compile(rb"[0-9A-F]{2}")


class Reason(enum.StrEnum):
    """Why a line was rejected. The values are stable: counters and quarantine use them."""

    TOO_LONG = "too_long"
    INVALID_UTF8 = "invalid_utf8"
    EMPTY = "empty"
    FIELD_COUNT = "field_count"
    NOT_NUMERIC = "not_numeric"
    BAD_COUNTER = "bad_counter"
    TEXT_FIELD = "text_field"
    BAD_CHECKSUM = "bad_checksum"
    MALFORMED = "malformed"
    PARTIAL_FIRST_LINE = "partial_first_line"


@dataclass(slots=True)
class Rejection:
    reason: Reason
    detail: str
    line: bytes  # the line as received (possibly only its head, for overlong lines)
    length: int  # its full length in bytes


@dataclass(slots=True)
class Decoded:
    """What a list of lines turned into. ``counters`` is None for formats without one."""

    records: list[bytes] = field(default_factory=list)
    counters: Sequence[int] | None = None  # a range when they are consecutive
    rejections: list[Rejection] = field(default_factory=list)


class _Invalid(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        self.reason = reason
        self.detail = detail


class Codec:
    """Base of the codecs. ``field_count`` None: learned from the first valid line."""

    name = ""
    has_counter = False
    #: Where the device counter and the device time sit among a row's device fields.
    counter_field: int | None = None
    time_field: int = 0
    #: The device counter at the start of a line, where a rejected line kept it.
    _leading_counter_re: re.Pattern[bytes] | None = None

    def __init__(self, field_count: int | None = None, *, numeric: bool = True) -> None:
        if field_count is not None and field_count < self.min_fields:
            raise ValueError(
                f"{self.name} lines have at least {self.min_fields} fields, got {field_count}"
            )
        self.numeric = numeric
        self.field_count = field_count
        self._chunk_re: re.Pattern[bytes] | None = None
        if field_count is not None:
            self._compile(field_count)

    min_fields = 1

    def decode(self, lines: list[bytes]) -> Decoded:
        """Accept or reject each line, keeping the order of the accepted ones."""
        if self._chunk_re is not None and lines:
            joined = b"\n".join(lines)
            if self._chunk_re.fullmatch(joined):
                return Decoded(self._fast_records(lines), self._fast_counters(lines, joined))
        decoded = Decoded(counters=[] if self.has_counter else None)
        for line in lines:
            try:
                fields = self._fields(line)
            except _Invalid as invalid:
                decoded.rejections.append(
                    Rejection(invalid.reason, invalid.detail, line, len(line))
                )
                continue
            if self.field_count is None:  # the first valid line sets the shape
                self.field_count = len(fields)
                self._compile(len(fields))
            decoded.records.append(b",".join(fields))
            if decoded.counters is not None:
                decoded.counters.append(int(fields[0]))
        return decoded

    def decode_one(self, line: bytes) -> Decoded:
        return self.decode([line])

    @classmethod
    def leading_counter(cls, line: bytes) -> int | None:
        """The device counter a (rejected) line starts with, where it survived, else None."""
        pattern = cls._leading_counter_re
        match = pattern.match(line) if pattern is not None else None
        return int(match[1]) if match else None

    # Subclasses: split a line into field texts or raise _Invalid.
    def _fields(self, line: bytes) -> list[bytes]:
        raise NotImplementedError

    # Subclasses with a whole-read regular expression override these.
    def _compile(self, field_count: int) -> None:
        self._chunk_re = None

    def _fast_records(self, lines: list[bytes]) -> list[bytes]:
        return lines

    def _fast_counters(self, lines: list[bytes], joined: bytes) -> Sequence[int] | None:
        return None

    def _check_values(self, fields: list[bytes], first_is_counter: bool) -> None:
        for index, text in enumerate(fields):
            if first_is_counter and index == 0:
                if not _COUNTER_RE.fullmatch(text):
                    raise _Invalid(
                        Reason.BAD_COUNTER, f"counter {_show(text)} is not a whole number"
                    )
            elif self.numeric:
                if not _NUMBER_RE.fullmatch(text):
                    raise _Invalid(
                        Reason.NOT_NUMERIC, f"field {index} {_show(text)} is not a number"
                    )
            elif not _TEXT_RE.fullmatch(text):
                raise _Invalid(
                    Reason.TEXT_FIELD, f"field {index} holds a quote or control character"
                )


def _show(text: bytes, limit: int = 24) -> str:
    shown = text[:limit].decode("utf-8", "backslashreplace")
    return repr(shown + ("..." if len(text) > limit else ""))


def _utf8(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Invalid(
            Reason.INVALID_UTF8, f"invalid UTF-8 at byte {error.start} of {len(line)}"
        ) from None


class CsvCodec(Codec):
    """``t,ch0,ch1,...``: comma-separated fields; the line is the record."""

    name = "csv"

    def _fields(self, line: bytes) -> list[bytes]:
        if not line:
            raise _Invalid(Reason.EMPTY, "empty line")
        _utf8(line)
        fields = line.split(b",")
        if self.field_count is not None and len(fields) != self.field_count:
            raise _Invalid(
                Reason.FIELD_COUNT, f"expected {self.field_count} fields, got {len(fields)}"
            )
        self._check_values(fields, self.has_counter)
        return fields

    def _compile(self, field_count: int) -> None:
        value = _FAST_NUMBER if self.numeric else TEXT
        first = _FAST_COUNTER if self.has_counter else value
        line = first + (b"(?:," + value + b")") * (field_count - 1)
        # TEXT may match non-ASCII bytes; those reads take the per-line path for the UTF-8 check.
        self._chunk_re = (
            re.compile(b"(?:" + line + b")(?:\n" + line + b")*") if self.numeric else None
        )


class CsvSeqCodec(CsvCodec):
    """``n,t,ch0,...``: csv with the device counter first."""

    name = "csv-seq"
    has_counter = True
    counter_field = 0
    time_field = 1
    min_fields = 2
    _leading_counter_re = re.compile(rb"(\d+),")

    def _fast_counters(self, lines: list[bytes], joined: bytes) -> Sequence[int]:
        first_line = lines[0]
        first = int(first_line[: first_line.index(b",")])
        expected = range(first, first + len(lines))
        # The usual case, consecutive counters, costs one startswith per line.
        if all(map(bytes.startswith, lines, [b"%d," % n for n in expected])):
            return expected
        return list(map(int, _COUNTERS_RE.findall(joined)))


class _Number(str):
    """A JSON number kept as the text the device wrote."""


_JSON = json.JSONDecoder(parse_float=_Number, parse_int=_Number)


class JsonCodec(Codec):
    """``{"n": 17, "t": 0.017000, "ch": [0.1234, -0.5000]}``: fields n, t, ch0, ..."""

    name = "json"
    has_counter = True
    counter_field = 0
    time_field = 1
    min_fields = 2
    _leading_counter_re = re.compile(rb'\{"n": (\d+),')

    def _fields(self, line: bytes) -> list[bytes]:
        if not line:
            raise _Invalid(Reason.EMPTY, "empty line")
        text = _utf8(line)
        try:
            value = _JSON.decode(text)
        except ValueError as error:
            raise _Invalid(
                Reason.MALFORMED, f"not JSON: {error.msg} at column {error.colno}"
            ) from None
        if not isinstance(value, dict) or list(value) != ["n", "t", "ch"]:
            raise _Invalid(Reason.MALFORMED, 'expected an object with keys "n", "t", "ch"')
        channels = value["ch"]
        if not isinstance(channels, list):
            raise _Invalid(Reason.MALFORMED, '"ch" is not an array')
        fields = [value["n"], value["t"], *channels]
        for index, item in enumerate(fields):
            if not isinstance(item, _Number):
                raise _Invalid(Reason.NOT_NUMERIC, f"field {index} is not a number")
        encoded = [item.encode() for item in fields]
        if self.field_count is not None and len(encoded) != self.field_count:
            raise _Invalid(
                Reason.FIELD_COUNT, f"expected {self.field_count} fields, got {len(encoded)}"
            )
        self._check_values(encoded, first_is_counter=True)
        return encoded


class NmeaCodec(Codec):
    """``$FGDAT,17,0.017000,0.1234*5C``: checksummed; fields between the name and ``*``."""

    name = "nmea"
    has_counter = True
    counter_field = 0
    time_field = 1
    min_fields = 2
    _leading_counter_re = re.compile(rb"\$[A-Z0-9]{1,10},(\d+),")

    def __init__(
        self, field_count: int | None = None, *, numeric: bool = True, sentence: str = ""
    ) -> None:
        if sentence and not _NMEA_NAME_RE.fullmatch(sentence):
            raise ValueError(f"NMEA sentence name {sentence!r} is not 1-10 of A-Z, 0-9")
        self.sentence = sentence.encode()
        super().__init__(field_count, numeric=numeric)

    def _fields(self, line: bytes) -> list[bytes]:
        if not line:
            raise _Invalid(Reason.EMPTY, "empty line")
        _utf8(line)
        star = line.rfind(b"*")
        if not line.startswith(b"$") or star < 0 or len(line) - star != 3:
            raise _Invalid(Reason.MALFORMED, "not a $NAME,...*HH sentence")
        body = line[1:star]
        if not _HEX_RE.fullmatch(line, star + 1):
            raise _Invalid(Reason.MALFORMED, f"checksum {_show(line[star + 1 :])} is not hex")
        expected = int(line[star + 1 :], 16)
        actual = functools.reduce(operator.xor, body, 0)
        if actual != expected:
            raise _Invalid(
                Reason.BAD_CHECKSUM, f"checksum {expected:02X} does not match {actual:02X}"
            )
        name, _, rest = body.partition(b",")
        if self.sentence and name != self.sentence:
            raise _Invalid(
                Reason.MALFORMED, f"sentence {_show(name)} is not {self.sentence.decode()}"
            )
        fields = rest.split(b",")
        if self.field_count is not None and len(fields) != self.field_count:
            raise _Invalid(
                Reason.FIELD_COUNT, f"expected {self.field_count} fields, got {len(fields)}"
            )
        self._check_values(fields, first_is_counter=True)
        return fields


CODECS: dict[str, type[Codec]] = {
    "csv": CsvCodec,
    "csv-seq": CsvSeqCodec,
    "json": JsonCodec,
    "nmea": NmeaCodec,
}


def make_codec(
    line_format: str, field_count: int | None = None, *, numeric: bool = True, sentence: str = ""
) -> Codec:
    """The codec for a line format name (docs/formats.md)."""
    try:
        kind = CODECS[line_format]
    except KeyError:
        raise ValueError(
            f"unknown line format {line_format!r}; expected one of {', '.join(CODECS)}"
        ) from None
    if kind is NmeaCodec:
        return NmeaCodec(field_count, numeric=numeric, sentence=sentence)
    return kind(field_count, numeric=numeric)


def counter_field(line_format: str) -> int | None:
    """Index of the device counter among a row's device fields; None: the format has none."""
    kind = CODECS.get(line_format)
    return kind.counter_field if kind is not None else None


def time_field(line_format: str) -> int:
    """Index of the device time among a row's device fields."""
    return CODECS[line_format].time_field


def leading_counter(line_format: str, line: bytes) -> int | None:
    """The device counter a rejected line of ``line_format`` starts with, where it survived."""
    kind = CODECS.get(line_format)
    return kind.leading_counter(line) if kind is not None else None
