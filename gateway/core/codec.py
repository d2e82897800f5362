"""What every line format shares: reasons, rejections, layouts, shapes, the codec base. No I/O.

A codec turns one line into the device part of a batch row (its fields as text, exactly as sent,
each CSV-quoted only where it must be) or refuses it with a :class:`Reason` and a detail that
carries the numbers. How a line splits into fields is its :class:`Layout` (a field count, a
separator, a key set): configured, or learned by :class:`~gateway.core.intake.LineIntake` from
several complete lines. What a batch needs to know about rows (column names, where the device
counter and time are) is their :class:`Shape`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.core.batchfile import FIXED_COLUMNS
from gateway.core.csvfields import split_row

NUMBER = rb"-?\d+(?:\.\d+)?"
#: A device counter is a machine integer: 20 digits hold any unsigned 64-bit value. The limit
#: is also a security limit: Python refuses to convert integers of more than 4300 digits.
MAX_COUNTER_DIGITS = 20
COUNTER = rb"(?:0|[1-9]\d{0,%d})" % (MAX_COUNTER_DIGITS - 1)
# The same for whole reads, possessive (no backtracking): about 1.5x faster on 70-byte lines.
FAST_NUMBER = rb"-?\d++(?:\.\d++)?+"
FAST_COUNTER = rb"(?:0|[1-9]\d{0,%d}+)" % (MAX_COUNTER_DIGITS - 1)
# A text field of the numeric formats may not hold what would need quoting or hide in a terminal.
TEXT = rb'[^,"\x00-\x1f\x7f]*'
#: Longest name a header line or a key may give a column.
MAX_NAME_CHARS = 64

_NUMBER_RE = re.compile(NUMBER)
_COUNTER_RE = re.compile(COUNTER)
_DIGITS_RE = re.compile(rb"[1-9]\d*")
_TEXT_RE = re.compile(TEXT)


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
    KEYS = "keys"  # a name:value line whose names are not the learned ones
    HEADER = "header"  # a header line: it names the columns and is not a row
    LINE_FEED = "line_feed"  # a line holding a line feed (terminator cr): rows are one line


@dataclass(slots=True)
class Rejection:
    reason: Reason
    detail: str
    line: bytes  # the line as received (possibly only its head, for overlong lines)
    length: int  # its full length in bytes
    received_at: float | None = None  # when the read holding it returned, where known


@dataclass(slots=True)
class Decoded:
    """What a list of lines turned into. ``counters`` is None for formats without one."""

    records: list[bytes] = field(default_factory=list)
    counters: Sequence[int] | None = None  # a range when they are consecutive
    rejections: list[Rejection] = field(default_factory=list)


class Invalid(Exception):
    """A line does not decode: why, and the detail a rejection carries."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Layout:
    """How lines split into fields: the part of a shape learned from (or fixed for) the wire."""

    count: int  # device fields per row
    separator: bytes = b","  # delimited: b",", b";", b"\t", or b" " for runs of spaces
    keys: tuple[bytes, ...] = ()  # keyvalue: the names, in column order


@dataclass(frozen=True, slots=True)
class Shape:
    """What a run of rows looks like, for the batch that stores them.

    ``names`` are the device columns (after ``seq`` and ``received_at``); ``counter_field`` and
    ``time_field`` index them (None: the rows have none); ``record_type``: each row's first
    device field is a record type (an NMEA address) and the rest depends on it.
    """

    format: str
    names: tuple[str, ...]
    counter_field: int | None = None
    time_field: int | None = None
    record_type: bool = False

    def __str__(self) -> str:
        return f"{self.format} ({', '.join(self.names)})"


def show(text: bytes, limit: int = 24) -> str:
    """A field for a rejection detail: quoted, cut at ``limit`` bytes, bad bytes escaped."""
    shown = text[:limit].decode("utf-8", "backslashreplace")
    return repr(shown + ("..." if len(text) > limit else ""))


def utf8(line: bytes) -> str:
    """The line as text, or :class:`Invalid` saying where its UTF-8 breaks."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Invalid(
            Reason.INVALID_UTF8, f"invalid UTF-8 at byte {error.start} of {len(line)}"
        ) from None


def check_counter(text: bytes) -> None:
    """Raise :class:`Invalid` unless ``text`` is a device counter (never converts a long one)."""
    if _COUNTER_RE.fullmatch(text):
        return
    if _DIGITS_RE.fullmatch(text):
        raise Invalid(
            Reason.BAD_COUNTER,
            f"counter has {len(text)} digits; at most {MAX_COUNTER_DIGITS} are read",
        )
    raise Invalid(Reason.BAD_COUNTER, f"counter {show(text)} is not a whole number")


def wire_name(text: bytes) -> str | None:
    """The column name a header field or a key gives, or None when it does not look like one.

    A name starts with a letter or ``_``, has at most :data:`MAX_NAME_CHARS` printable
    characters, and may stand between spaces and one pair of double quotes (which are dropped).
    """
    try:
        name = text.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].strip()
    if not name or len(name) > MAX_NAME_CHARS or not (name[0].isalpha() or name[0] == "_"):
        return None
    return name if name.isprintable() else None


def wire_names(fields: Sequence[bytes]) -> tuple[str, ...] | None:
    """Column names from a header line's fields, or None unless every field looks like a name.

    A name that repeats an earlier one or is a fixed column (``seq``, ``received_at``) becomes
    ``f<i>`` (its position), so the columns stay unique.
    """
    names: list[str] = []
    for index, text in enumerate(fields):
        name = wire_name(text)
        if name is None:
            return None
        names.append(f"f{index}" if name in names or name in FIXED_COLUMNS else name)
    return tuple(names)


def _quoted_fields(line: bytes) -> list[bytes] | None:
    try:
        return split_row(line)
    except ValueError:
        return None


def default_names(count: int) -> tuple[str, ...]:
    return tuple(f"f{index}" for index in range(count))


class Codec:
    """Base of the codecs: one line format, with a known layout or one to learn.

    Subclasses say how one line decodes (``_fields``), which layouts a line alone fits
    (``layouts``) and, where they can, how to check a whole read at once (``_compile``,
    ``_fast_records``, ``_fast_counters``).
    """

    name = ""
    has_counter = False
    #: Where the device counter and the device time sit among a row's device fields.
    counter_field: int | None = None
    time_field: int | None = 0
    #: Rows begin with a record type (the NMEA address).
    record_type = False
    #: A device may print a header line (names, split like the data) before its data.
    has_header_lines = False
    min_fields = 1
    #: The device counter at the start of a line, where a rejected line kept it.
    _leading_counter_re: re.Pattern[bytes] | None = None

    def __init__(
        self,
        field_count: int | None = None,
        *,
        numeric: bool = True,
        names: Sequence[str] = (),
    ) -> None:
        if names and field_count is not None and len(names) != field_count:
            raise ValueError(f"{len(names)} field names for {field_count} fields")
        count = field_count if field_count is not None else (len(names) or None)
        if count is not None and count < self.min_fields:
            raise ValueError(
                f"{self.name} lines have at least {self.min_fields} fields, got {count}"
            )
        self.numeric = numeric
        self.configured_names = tuple(names)
        self.header: bytes | None = None  # the header line that named the columns, if any
        self._header_names: tuple[str, ...] = ()
        self._chunk_re: re.Pattern[bytes] | None = None
        self.layout: Layout | None = None
        if count is not None:
            self._set_layout(self._configured_layout(count))

    # -- what the intake asks ---------------------------------------------------------------

    @property
    def field_count(self) -> int | None:
        return self.layout.count if self.layout is not None else None

    @property
    def learns(self) -> bool:
        """True while the layout is unknown: lines must be seen first."""
        return self.layout is None

    def shape(self) -> Shape:
        """The shape of the rows this codec makes (its layout must be known)."""
        if self.layout is None:
            raise ValueError(f"{self.name}: the layout is not known yet")
        return Shape(
            self.name, self._names(), self.counter_field, self.time_field, self.record_type
        )

    def with_layout(
        self, layout: Layout, header: bytes | None = None, names: tuple[str, ...] = ()
    ) -> Codec:
        """A copy of this codec that reads ``layout``, named by a header line if one was seen."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.header = header
        clone._header_names = names
        clone._set_layout(layout)
        return clone

    def layouts(self, line: bytes) -> tuple[Layout, ...]:
        """The layouts ``line`` fits on its own (most likely first), or :class:`Invalid`.

        A configured layout is the only one a line can fit.
        """
        if self.layout is not None:
            self._fields(line)
            return (self.layout,)
        return self._layouts(line)

    def split(self, line: bytes, layout: Layout) -> list[bytes] | None:
        """``line``'s fields under ``layout`` (not checked as values), or None if it does not
        split into ``layout.count`` fields. Header lines are recognised with it."""
        fields = line.split(layout.separator)
        return fields if len(fields) == layout.count else None

    def header_names(self, line: bytes, layout: Layout) -> tuple[str, ...] | None:
        """The column names ``line`` gives as a header line for ``layout``, or None."""
        if not self.has_header_lines:
            return None
        fields = self.split(line, layout)
        if fields is None and layout.separator == b"," and b'"' in line:
            fields = _quoted_fields(line)  # "Pressure, abs [hPa]": instruments quote names
            if fields is not None and len(fields) != layout.count:
                fields = None
        return wire_names(fields) if fields is not None else None

    def header_candidate(self, line: bytes) -> tuple[str, ...] | None:
        """The names ``line`` gives if it is a header line of any field count, or None: a
        device that changes shape may print a new header before its new lines."""
        if not self.has_header_lines:
            return None
        fields = (_quoted_fields(line) if b'"' in line else None) or line.split(b",")
        return wire_names(fields) if len(fields) >= self.min_fields else None

    # -- decoding ---------------------------------------------------------------------------

    def decode(self, lines: list[bytes]) -> Decoded:
        """Accept or reject each line, keeping the order of the accepted ones.

        With no layout yet the first valid line sets it: a convenience for one-off use.
        :class:`~gateway.core.intake.LineIntake` never relies on it; it learns a layout from
        several lines first.
        """
        fast = self.decode_fast(lines)
        if fast is not None:
            return Decoded(fast[0], fast[1])
        decoded = Decoded(counters=[] if self.has_counter else None)
        for line in lines:
            try:
                if self.layout is None:
                    self._set_layout(self._layouts(line)[0])
                record, counter = self.decode_line(line)
            except Invalid as invalid:
                decoded.rejections.append(
                    Rejection(invalid.reason, invalid.detail, line, len(line))
                )
                continue
            decoded.records.append(record)
            if decoded.counters is not None:
                decoded.counters.append(counter)
        return decoded

    def decode_fast(
        self, lines: list[bytes], *, lf_free: bool = False
    ) -> tuple[list[bytes], Sequence[int] | None] | None:
        """Records and counters of a read whose every line is well-formed, checked at C speed
        (one regular expression over the joined lines); None when a line needs a closer look.

        ``lf_free``: the caller knows no line holds a line feed (they were split at one), so
        the joined read need not be searched for one.
        """
        if self._chunk_re is None or not lines:
            return None
        joined = b"\n".join(lines)
        if not lf_free and joined.count(b"\n") != len(lines) - 1:
            return None  # a line holds a line feed (terminator cr or crlf): look closer
        if not self._chunk_re.fullmatch(joined):
            return None
        records = self._fast_records(lines, joined)
        if records is None:
            return None
        return records, self._fast_counters(lines, joined)

    def decode_line(self, line: bytes) -> tuple[bytes, int | None]:
        """The record a line makes and its device counter (None without one), or Invalid."""
        fields = self._fields(line)
        return b",".join(fields), (int(fields[0]) if self.has_counter else None)

    def decode_one(self, line: bytes) -> Decoded:
        return self.decode([line])

    @classmethod
    def leading_counter(cls, line: bytes) -> int | None:
        """The device counter a (rejected) line starts with, where it survived, else None."""
        pattern = cls._leading_counter_re
        match = pattern.match(line) if pattern is not None else None
        return int(match[1]) if match else None

    # -- for subclasses ---------------------------------------------------------------------

    def _configured_layout(self, count: int) -> Layout:
        return Layout(count)

    def _set_layout(self, layout: Layout) -> None:
        self.layout = layout
        self._compile(layout)

    def _names(self) -> tuple[str, ...]:
        count = self.layout.count
        if len(self.configured_names) == count:
            return self.configured_names
        if len(self._header_names) == count:
            return self._header_names
        return default_names(count)

    # Split a line into field texts (each as it goes into the row) or raise Invalid.
    def _fields(self, line: bytes) -> list[bytes]:
        raise NotImplementedError

    # The layouts a line fits when none is known, or raise Invalid.
    def _layouts(self, line: bytes) -> tuple[Layout, ...]:
        raise NotImplementedError

    # Subclasses with a whole-read regular expression override these.
    def _compile(self, layout: Layout) -> None:
        self._chunk_re = None

    def _fast_records(self, lines: list[bytes], joined: bytes) -> list[bytes] | None:
        return lines

    def _fast_counters(self, lines: list[bytes], joined: bytes) -> Sequence[int] | None:
        return None

    def _check_values(self, fields: list[bytes], first_is_counter: bool) -> None:
        for index, text in enumerate(fields):
            if first_is_counter and index == 0:
                check_counter(text)
            elif self.numeric:
                if not _NUMBER_RE.fullmatch(text):
                    raise Invalid(Reason.NOT_NUMERIC, f"field {index} {show(text)} is not a number")
            elif not _TEXT_RE.fullmatch(text):
                raise Invalid(
                    Reason.TEXT_FIELD, f"field {index} holds a quote or control character"
                )
