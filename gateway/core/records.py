"""Lines in, accepted records or rejections with a reason out. No I/O.

A codec per line format (docs/formats.md). An accepted record is the device's fields as text,
exactly as sent, joined by commas (``b"17,0.017000,0.1234"``), ready to follow ``seq`` and
``received_at`` in a batch row; a field that holds a comma or a quote is CSV-quoted. A rejected
line carries a reason from :class:`Reason` and a detail that carries the numbers.

Decoding works on a list of lines at a time: when every line of a read is well-formed (the
usual case) one compiled regular expression checks them all at C speed, and only a read that
holds a bad line is examined line by line.

The numeric formats here (``csv``, ``csv-seq``, ``json``, ``nmea``) are the simulator's
dialects; ``nmea0183``, ``delimited``, ``keyvalue`` and ``raw`` read what real devices print
(:mod:`gateway.core.nmea0183`, :mod:`gateway.core.textcodecs`); ``auto`` picks one of them from
the first complete lines (:mod:`gateway.core.detect`).
"""

from __future__ import annotations

import functools
import json
import operator
import re
from collections.abc import Sequence

from gateway.core.codec import (
    COUNTER,
    FAST_COUNTER,
    FAST_NUMBER,
    MAX_COUNTER_DIGITS,
    NUMBER,
    TEXT,
    Codec,
    Decoded,
    Invalid,
    Layout,
    Reason,
    Rejection,
    Shape,
    show,
    utf8,
)
from gateway.core.detect import AutoCodec, detect
from gateway.core.nmea0183 import NAMES as NMEA0183_NAMES
from gateway.core.nmea0183 import Nmea0183Codec
from gateway.core.textcodecs import DELIMITERS, DelimitedCodec, KeyValueCodec, RawCodec

__all__ = [
    "CODECS",
    "COUNTER",
    "NUMBER",
    "TEXT",
    "Codec",
    "CsvCodec",
    "CsvSeqCodec",
    "Decoded",
    "Invalid",
    "JsonCodec",
    "Layout",
    "NmeaCodec",
    "Reason",
    "Rejection",
    "Shape",
    "counter_field",
    "leading_counter",
    "make_codec",
    "time_field",
]

_COUNTERS_RE = re.compile(rb"^(\d+),", re.MULTILINE)
_NMEA_NAME_RE = re.compile(r"[A-Z0-9]{1,10}")
_HEX_RE = re.compile(rb"[0-9A-F]{2}")


class _CommaFields(Codec):
    """Codecs whose records are comma-separated fields of one count (csv and nmea)."""

    def _counted(self, fields: list[bytes]) -> list[bytes]:
        """``fields`` if they are as many as the layout's (when there is one)."""
        if self.layout is not None and len(fields) != self.layout.count:
            raise Invalid(
                Reason.FIELD_COUNT, f"expected {self.layout.count} fields, got {len(fields)}"
            )
        return fields

    def _layouts(self, line: bytes) -> tuple[Layout, ...]:
        count = len(self._fields(line))
        if count < self.min_fields:
            raise Invalid(
                Reason.FIELD_COUNT, f"expected at least {self.min_fields} fields, got {count}"
            )
        return (Layout(count),)


class CsvCodec(_CommaFields):
    """``t,ch0,ch1,...``: comma-separated fields; the line is the record."""

    name = "csv"
    has_header_lines = True

    def _fields(self, line: bytes) -> list[bytes]:
        if not line:
            raise Invalid(Reason.EMPTY, "empty line")
        utf8(line)
        fields = self._counted(line.split(b","))
        self._check_values(fields, self.has_counter)
        return fields

    def _compile(self, layout: Layout) -> None:
        value = FAST_NUMBER if self.numeric else TEXT
        first = FAST_COUNTER if self.has_counter else value
        line = first + (b"(?:," + value + b")") * (layout.count - 1)
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
    _leading_counter_re = re.compile(rb"(\d{1,%d})," % MAX_COUNTER_DIGITS)

    def _fast_counters(self, lines: list[bytes], joined: bytes) -> Sequence[int]:
        # The read matched the whole-read expression: every line starts with a short counter
        # and a comma.
        first = int(lines[0].partition(b",")[0])
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
    _leading_counter_re = re.compile(rb'\{"n": (\d{1,%d}),' % MAX_COUNTER_DIGITS)

    def _fields(self, line: bytes) -> list[bytes]:
        if not line:
            raise Invalid(Reason.EMPTY, "empty line")
        text = utf8(line)
        try:
            value = _JSON.decode(text)
        except ValueError as error:
            raise Invalid(
                Reason.MALFORMED, f"not JSON: {error.msg} at column {error.colno}"
            ) from None
        except RecursionError:  # "[[[[...": deeper than the parser goes
            raise Invalid(Reason.MALFORMED, "not JSON: nested too deeply") from None
        if not isinstance(value, dict) or list(value) != ["n", "t", "ch"]:
            raise Invalid(Reason.MALFORMED, 'expected an object with keys "n", "t", "ch"')
        channels = value["ch"]
        if not isinstance(channels, list):
            raise Invalid(Reason.MALFORMED, '"ch" is not an array')
        fields = [value["n"], value["t"], *channels]
        for index, item in enumerate(fields):
            if not isinstance(item, _Number):
                raise Invalid(Reason.NOT_NUMERIC, f"field {index} is not a number")
        encoded = [item.encode() for item in fields]
        if self.layout is not None and len(encoded) != self.layout.count:
            raise Invalid(
                Reason.FIELD_COUNT, f"expected {self.layout.count} fields, got {len(encoded)}"
            )
        self._check_values(encoded, first_is_counter=True)
        return encoded

    def _layouts(self, line: bytes) -> tuple[Layout, ...]:
        return (Layout(len(self._fields(line))),)


class NmeaCodec(_CommaFields):
    """``$FGDAT,17,0.017000,0.1234*5C``: checksummed; fields between the name and ``*``."""

    name = "nmea"
    has_counter = True
    counter_field = 0
    time_field = 1
    min_fields = 2
    _leading_counter_re = re.compile(rb"\$[A-Z0-9]{1,10},(\d{1,%d})," % MAX_COUNTER_DIGITS)

    def __init__(
        self,
        field_count: int | None = None,
        *,
        numeric: bool = True,
        sentence: str = "",
        names: Sequence[str] = (),
    ) -> None:
        if sentence and not _NMEA_NAME_RE.fullmatch(sentence):
            raise ValueError(f"NMEA sentence name {sentence!r} is not 1-10 of A-Z, 0-9")
        self.sentence = sentence.encode()
        super().__init__(field_count, numeric=numeric, names=names)

    def sentence_name(self, line: bytes) -> bytes:
        """The name of a sentence this codec accepted."""
        return line[1 : line.index(b",")]

    def _fields(self, line: bytes) -> list[bytes]:
        if not line:
            raise Invalid(Reason.EMPTY, "empty line")
        utf8(line)
        star = line.rfind(b"*")
        if not line.startswith(b"$") or star < 0 or len(line) - star != 3:
            raise Invalid(Reason.MALFORMED, "not a $NAME,...*HH sentence")
        body = line[1:star]
        if not _HEX_RE.fullmatch(line, star + 1):
            raise Invalid(Reason.MALFORMED, f"checksum {show(line[star + 1 :])} is not hex")
        expected = int(line[star + 1 :], 16)
        actual = functools.reduce(operator.xor, body, 0)
        if actual != expected:
            raise Invalid(
                Reason.BAD_CHECKSUM, f"checksum {expected:02X} does not match {actual:02X}"
            )
        name, _, rest = body.partition(b",")
        if self.sentence and name != self.sentence:
            raise Invalid(
                Reason.MALFORMED, f"sentence {show(name)} is not {self.sentence.decode()}"
            )
        fields = self._counted(rest.split(b","))
        self._check_values(fields, first_is_counter=True)
        return fields


CODECS: dict[str, type[Codec]] = {
    "auto": AutoCodec,
    "csv": CsvCodec,
    "csv-seq": CsvSeqCodec,
    "json": JsonCodec,
    "nmea": NmeaCodec,
    "nmea0183": Nmea0183Codec,
    "delimited": DelimitedCodec,
    "keyvalue": KeyValueCodec,
    "raw": RawCodec,
}


def make_codec(
    line_format: str,
    field_count: int | None = None,
    *,
    numeric: bool = True,
    sentence: str = "",
    names: Sequence[str] = (),
    delimiter: str = "auto",
) -> Codec:
    """The codec for a line format name (docs/formats.md).

    ``field_count`` / ``names`` fix the layout (no learning); ``sentence`` filters NMEA
    sentence names (``nmea``, ``nmea0183``); ``delimiter`` is ``auto`` or one of
    :data:`~gateway.core.textcodecs.DELIMITERS` (``delimited``, also when ``auto`` picks
    it); ``numeric`` False lets ``csv``, ``csv-seq`` and ``nmea`` fields be text (``auto``
    leaves text to ``delimited``).
    """
    try:
        kind = CODECS[line_format]
    except KeyError:
        raise ValueError(
            f"unknown line format {line_format!r}; expected one of {', '.join(CODECS)}"
        ) from None
    if delimiter != "auto" and delimiter not in DELIMITERS:
        raise ValueError(
            f"unknown delimiter {delimiter!r}; expected auto or one of {', '.join(DELIMITERS)}"
        )
    if kind is AutoCodec:
        return AutoCodec(_candidates(field_count, sentence, names, delimiter), RawCodec())
    if kind is NmeaCodec:
        return NmeaCodec(field_count, numeric=numeric, sentence=sentence, names=names)
    if kind is Nmea0183Codec:
        return Nmea0183Codec(sentence=sentence)
    if kind is DelimitedCodec:
        return DelimitedCodec(field_count, names=names, delimiter=delimiter)
    if kind is KeyValueCodec:
        return KeyValueCodec(field_count, names=names)
    if kind is RawCodec:
        return RawCodec()
    return kind(field_count, numeric=numeric, names=names)


def _candidates(
    field_count: int | None, sentence: str, names: Sequence[str], delimiter: str
) -> list[Codec]:
    """The formats ``auto`` tries (:data:`~gateway.core.detect.ORDER` says in which order).

    A fixed field count rules out the formats that need more fields than that.
    """
    count = field_count or (len(names) or None)
    counted: list[tuple[type[Codec], dict]] = [
        (NmeaCodec, {"sentence": sentence}),
        (JsonCodec, {}),
        (KeyValueCodec, {}),
        (CsvSeqCodec, {}),
        (CsvCodec, {}),
        (DelimitedCodec, {"delimiter": delimiter}),
    ]
    candidates: list[Codec] = [Nmea0183Codec(sentence=sentence)]  # a fixed shape
    candidates += [
        kind(count, names=names, **options)
        for kind, options in counted
        if count is None or count >= kind.min_fields
    ]
    return candidates


def counter_field(line_format: str) -> int | None:
    """Index of the device counter among a row's device fields; None: the format has none."""
    kind = CODECS.get(line_format)
    return kind.counter_field if kind is not None else None


def time_field(line_format: str) -> int | None:
    """Index of the device time among a row's device fields; None: the format has none."""
    return CODECS[line_format].time_field


def leading_counter(line_format: str, line: bytes) -> int | None:
    """The device counter a rejected line of ``line_format`` starts with, where it survived."""
    kind = CODECS.get(line_format)
    return kind.leading_counter(line) if kind is not None else None


def stored_format(device_columns: Sequence[str], rows: Sequence[bytes]) -> str:
    """The format rows were stored in, read back from a batch whose data dir did not say (a
    report from the bucket alone): ``device_columns`` from its header, ``rows`` the device
    fields of a few rows joined by commas (for csv, csv-seq and json rows: the line itself)."""
    if tuple(device_columns) == NMEA0183_NAMES:
        return "nmea0183"
    auto = make_codec("auto")
    found = detect(list(rows), [auto.classify(row) for row in rows], auto, final=True)
    return found.codec.name if found is not None else "raw"
