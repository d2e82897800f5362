"""Text lines as devices print them: delimited fields, name:value pairs, or whole lines. No I/O.

None of these requires numbers: fields are kept verbatim as text and CSV-quoted in the row where
they must be (:mod:`gateway.core.csvfields`), so ``21,5`` from a ``;``-separated device survives
as ``"21,5"``. A batch row is one physical line, so a line holding a line feed (possible only
with ``GATEWAY_LINE_TERMINATOR=cr`` or ``crlf``) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import repeat

from gateway.core.codec import (
    Codec,
    Invalid,
    Layout,
    Reason,
    default_names,
    show,
    utf8,
    wire_name,
    wire_names,
)
from gateway.core.csvfields import quote_field

#: ``GATEWAY_DELIMITER`` values and the separator each stands for (``space``: runs of spaces).
DELIMITERS = {"comma": b",", "semicolon": b";", "tab": b"\t", "space": b" "}
#: The separators ``auto`` tries, in the order it prefers them when several split a line
#: consistently: a tab or a ``;`` rarely sits inside a value, a ``,`` may (a decimal comma),
#: spaces often do.
SEPARATOR_ORDER = (b"\t", b";", b",", b" ")
SEPARATOR_NAMES = {b",": "commas", b";": "semicolons", b"\t": "tabs", b" ": "runs of spaces"}

_SPACES_RE = re.compile(rb" +")
_PAIR_SEPARATORS_RE = re.compile(rb"[,\t ]+")
_PAIR_RE = re.compile(rb"([^\x00-\x20,:=\x7f]+)[:=]([^\n]*)")


def line_feed_problem(line: bytes) -> Invalid | None:
    """A line holding a line feed cannot be one row; say which terminator setting reads it."""
    where = line.find(b"\n")
    if where < 0:
        return None
    return Invalid(
        Reason.LINE_FEED,
        f"line holds a line feed at byte {where}; a row is one line: for a device that ends "
        "lines with LF or CR LF, set GATEWAY_LINE_TERMINATOR=lf",
    )


def _check_text(line: bytes) -> None:
    if not line:
        raise Invalid(Reason.EMPTY, "empty line")
    utf8(line)
    problem = line_feed_problem(line)
    if problem is not None:
        raise problem


class DelimitedCodec(Codec):
    """Fields between separators (``,`` ``;`` tab or runs of spaces), kept as text.

    The separator is configured or learned; so is the field count. A header line (every field
    a name, where the data have values) names the columns.
    """

    name = "delimited"
    counter_field = None
    time_field = None
    has_header_lines = True

    def __init__(
        self,
        field_count: int | None = None,
        *,
        names: Sequence[str] = (),
        delimiter: str = "auto",
    ) -> None:
        if delimiter != "auto" and delimiter not in DELIMITERS:
            raise ValueError(f"unknown delimiter {delimiter!r}")
        self.separators = SEPARATOR_ORDER if delimiter == "auto" else (DELIMITERS[delimiter],)
        if names and field_count is not None and len(names) != field_count:
            raise ValueError(f"{len(names)} field names for {field_count} fields")
        super().__init__()
        self.configured_names = tuple(names)
        self.fixed_count = field_count or (len(names) or None)
        if self.fixed_count is not None and delimiter != "auto":
            self._set_layout(Layout(self.fixed_count, self.separators[0]))

    def split(self, line: bytes, layout: Layout) -> list[bytes] | None:
        fields = self._split(line, layout.separator)
        return fields if len(fields) == layout.count else None

    def header_candidate(self, line: bytes) -> tuple[str, ...] | None:
        separators = (self.layout.separator,) if self.layout else self.separators
        for separator in separators:
            fields = self._split(line, separator)
            if len(fields) > 1 or len(separators) == 1:
                names = wire_names(fields)
                if names is not None:
                    return names
        return None

    def _split(self, line: bytes, separator: bytes) -> list[bytes]:
        if separator == b" ":  # leading and trailing spaces pad columns; they are no field
            return _SPACES_RE.split(line.strip(b" "))
        return line.split(separator)

    def _layouts(self, line: bytes) -> tuple[Layout, ...]:
        _check_text(line)
        single = len(self.separators) == 1
        layouts = []
        for separator in self.separators:
            count = len(self._split(line, separator))
            if self.fixed_count is not None:
                if count == self.fixed_count:
                    layouts.append(Layout(count, separator))
            elif count > 1 or single:
                layouts.append(Layout(count, separator))
        if not layouts:
            if self.fixed_count is not None:
                raise Invalid(
                    Reason.FIELD_COUNT,
                    f"no separator ({self._separator_list()}) splits the line into "
                    f"{self.fixed_count} fields",
                )
            raise Invalid(
                Reason.FIELD_COUNT, f"no field separator ({self._separator_list()}) in the line"
            )
        return tuple(layouts)

    def _separator_list(self) -> str:
        return ", ".join(SEPARATOR_NAMES[s] for s in self.separators)

    def _fields(self, line: bytes) -> list[bytes]:
        _check_text(line)
        layout = self.layout
        fields = self._split(line, layout.separator)
        if len(fields) != layout.count:
            raise Invalid(
                Reason.FIELD_COUNT,
                f"expected {layout.count} fields separated by "
                f"{SEPARATOR_NAMES[layout.separator]}, got {len(fields)}",
            )
        return list(map(quote_field, fields))

    def _compile(self, layout: Layout) -> None:
        separator = layout.separator
        if separator == b" ":
            self._chunk_re = None
            return
        self._separators_per_line = layout.count - 1
        # A field holding a comma (a decimal comma, under ';' or tab) is quoted in the row.
        other = re.escape(separator)
        self._comma_field_re = re.compile(rb"[^" + other + rb"\n]*,[^" + other + rb"\n]*")

    def decode_fast(
        self, lines: list[bytes], *, lf_free: bool = False
    ) -> tuple[list[bytes], None] | None:
        """A read split by ``,``, ``;`` or tab with no quote, CR or bad UTF-8, at C speed."""
        layout = self.layout
        if layout is None or layout.separator == b" " or not lines or not all(lines):
            return None
        joined = b"\n".join(lines)
        if b'"' in joined or b"\r" in joined:
            return None
        if not lf_free and joined.count(b"\n") != len(lines) - 1:
            return None
        if not joined.isascii():
            try:
                joined.decode("utf-8")
            except UnicodeDecodeError:
                return None
        separator = layout.separator
        if set(map(bytes.count, lines, repeat(separator))) != {self._separators_per_line}:
            return None
        if separator == b",":
            return lines, None
        quoted = self._comma_field_re.sub(rb'"\g<0>"', joined) if b"," in joined else joined
        return quoted.replace(separator, b",").split(b"\n"), None


class KeyValueCodec(Codec):
    """``name:value`` or ``name=value`` pairs separated by ``,``, spaces or tabs.

    The names are the columns (learned from the lines, or ``GATEWAY_FIELD_NAMES``); a line
    with the same names in another order is put in column order; values are kept verbatim.
    """

    name = "keyvalue"
    counter_field = None
    time_field = None

    def __init__(self, field_count: int | None = None, *, names: Sequence[str] = ()) -> None:
        if names and field_count is not None and len(names) != field_count:
            raise ValueError(f"{len(names)} field names for {field_count} fields")
        super().__init__()
        self.fixed_count = field_count or (len(names) or None)
        if names:
            keys = tuple(name.encode() for name in names)
            self._set_layout(Layout(len(keys), b"", keys))

    def _names(self) -> tuple[str, ...]:
        keys = self.layout.keys
        return wire_names(keys) or default_names(len(keys))

    def _pairs(self, line: bytes) -> tuple[tuple[bytes, ...], list[bytes]]:
        _check_text(line)
        keys, values = [], []
        for token in _PAIR_SEPARATORS_RE.split(line.strip(b",\t ")):
            match = _PAIR_RE.fullmatch(token)
            if match is None:
                raise Invalid(Reason.MALFORMED, f"{show(token)} is not a name:value pair")
            key = match[1]
            if wire_name(key) is None or b'"' in key:
                raise Invalid(Reason.MALFORMED, f"{show(key)} is not a name")
            if key in keys:
                raise Invalid(Reason.MALFORMED, f"name {show(key)} appears twice")
            keys.append(key)
            values.append(match[2])
        return tuple(keys), values

    def _layouts(self, line: bytes) -> tuple[Layout, ...]:
        keys, _ = self._pairs(line)
        if self.fixed_count is not None and len(keys) != self.fixed_count:
            raise Invalid(Reason.FIELD_COUNT, f"expected {self.fixed_count} pairs, got {len(keys)}")
        return (Layout(len(keys), b"", keys),)

    def _fields(self, line: bytes) -> list[bytes]:
        keys, values = self._pairs(line)
        expected = self.layout.keys
        if keys != expected:
            if set(keys) != set(expected):
                raise Invalid(Reason.KEYS, _keys_detail(keys, expected))
            by_key = dict(zip(keys, values, strict=True))
            values = [by_key[key] for key in expected]
        return list(map(quote_field, values))

    def _compile(self, layout: Layout) -> None:
        # One read of lines with the learned names in order, values free of what needs quoting.
        pair = rb"[,\t ]++".join(re.escape(key) + rb"[:=]([^,\t \n\"\r]*+)" for key in layout.keys)
        line = rb"[,\t ]*+" + pair + rb"[,\t ]*+"
        self._line_re = re.compile(line, re.MULTILINE)
        self._template = b",".join(b"\\g<%d>" % (index + 1) for index in range(layout.count))
        self._chunk_re = re.compile(b"(?:" + line + b")(?:\n" + line + b")*+")

    def _fast_records(self, lines: list[bytes], joined: bytes) -> list[bytes] | None:
        if not all(lines):
            return None
        if not joined.isascii():
            try:
                joined.decode("utf-8")
            except UnicodeDecodeError:
                return None
        return self._line_re.sub(self._template, joined).split(b"\n")


def _keys_detail(keys: Sequence[bytes], expected: Sequence[bytes]) -> str:
    missing = [key.decode() for key in expected if key not in keys]
    extra = [key.decode() for key in keys if key not in expected]
    parts = [f"missing {', '.join(missing)}"] if missing else []
    parts += [f"unexpected {', '.join(extra)}"] if extra else []
    return (
        f"names {', '.join(k.decode() for k in keys)} are not the learned ones ({'; '.join(parts)})"
    )


class RawCodec(Codec):
    """Every line whole, as one text field ``line``: the fallback that keeps anything UTF-8."""

    name = "raw"
    counter_field = None
    time_field = None

    def __init__(self) -> None:
        super().__init__(1)

    def _names(self) -> tuple[str, ...]:
        return ("line",)

    def _layouts(self, line: bytes) -> tuple[Layout, ...]:
        self._fields(line)
        return (self.layout,)

    def _fields(self, line: bytes) -> list[bytes]:
        utf8(line)
        problem = line_feed_problem(line)
        if problem is not None:
            raise problem
        return [quote_field(line)]

    def decode_fast(
        self, lines: list[bytes], *, lf_free: bool = False
    ) -> tuple[list[bytes], None] | None:
        """A read of valid UTF-8 lines, at C speed; each line is quoted only if it must be."""
        if not lines:
            return None
        joined = b"\n".join(lines)
        if not lf_free and joined.count(b"\n") != len(lines) - 1:
            return None  # a line holds a line feed
        if not joined.isascii():
            try:
                joined.decode("utf-8")
            except UnicodeDecodeError:
                return None
        if b"," in joined or b'"' in joined or b"\r" in joined:
            return list(map(quote_field, lines)), None
        return lines, None
