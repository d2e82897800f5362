"""RFC 4180 fields in batch rows: quote a field, join and split a row. No I/O.

A batch row is always one physical line: a field never holds a line feed (the codecs refuse
lines that do). A field that holds a comma, a double quote or a carriage return is written
between double quotes, with each double quote inside doubled; any other field is written as it
is. Rows without a double quote anywhere (every row of the numeric formats) split at commas.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# What makes a field need quoting. A carriage return is quoted too: some CSV readers end a row
# at a lone CR.
_NEEDS_QUOTES_RE = re.compile(rb'[,"\r]')
# One field at a position: quoted (doubled quotes inside, no line feed), or plain; then a
# comma or the end.
_FIELD_RE = re.compile(rb'"((?:[^"\n]|"")*+)"(?=,|\Z)|([^,"\n]*+)(?=,|\Z)')
#: A quoted field standing whole between commas, line starts and line ends, for C-speed checks
#: of many rows at once (:func:`gateway.core.manifest.quick_check` removes them, then counts).
QUOTED_FIELD_RE = re.compile(rb'(?<![^,\n])"(?:[^"\n]|"")*+"(?![^,\n])')


def quote_field(field: bytes) -> bytes:
    """``field`` as it is written in a row: quoted only when it needs to be."""
    if _NEEDS_QUOTES_RE.search(field) is None:
        return field
    return b'"' + field.replace(b'"', b'""') + b'"'


def join_fields(fields: Iterable[bytes]) -> bytes:
    """A row (or the device part of one) from field values, each quoted as needed."""
    return b",".join(map(quote_field, fields))


def split_row(row: bytes) -> list[bytes]:
    """The field values of one row (quotes removed, doubled quotes undone).

    Raises ValueError, saying where, when a quote is not where RFC 4180 allows it.
    """
    if b'"' not in row:
        return row.split(b",")
    fields = []
    position, end = 0, len(row)
    while True:
        match = _FIELD_RE.match(row, position)
        if match is None:
            raise ValueError(f"malformed quoted field at byte {position}")
        quoted, plain = match.groups()
        fields.append(plain if quoted is None else quoted.replace(b'""', b'"'))
        position = match.end()
        if position == end:
            return fields
        position += 1  # the comma
