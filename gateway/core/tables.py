"""Batches in, one rectangular table per record type out: what an analyst loads. No I/O.

A batch is rectangular already, except where rows carry record types (``nmea0183``: every row
is ``seq,received_at,record_type,fields``, the sentence's fields in one CSV field, so that one
batch can hold every sentence type in ``seq`` order). Here each record type gets its own
table, ``seq,received_at,f1,f2,...`` (NMEA numbers a sentence's fields from 1); a type whose
rows vary in field count (a GSV sentence lists one to four satellites) is padded with empty
fields to its widest row. Rows of other formats go to one table per shape (the batch's header),
so a device that changed its columns mid-run gives two tables, not a ragged one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.core.batchfile import FIXED_COLUMNS, header_columns
from gateway.core.csvfields import join_fields, split_row
from gateway.core.nmea0183 import NAMES as RECORD_TYPE_COLUMNS

_SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Table:
    """One record type's (or one shape's) rows, with the widest row's width."""

    columns: tuple[str, ...]  # the device columns; for a record type f1..fN, grown as needed
    rows: list[list[bytes]] = field(default_factory=list)  # seq, received_at, fields

    def as_csv(self) -> bytes:
        width = len(FIXED_COLUMNS) + len(self.columns)
        lines = [join_fields(name.encode() for name in (*FIXED_COLUMNS, *self.columns))]
        for row in self.rows:
            lines.append(join_fields([*row, *([b""] * (width - len(row)))]))
        return b"\n".join(lines) + b"\n"


class Tables:
    """Feed batches (``add``), in ``seq`` order; take the tables by name (``tables``)."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        self._shapes: dict[tuple[str, ...], str] = {}  # a shape's columns -> its table's name

    def add(self, batch: bytes) -> None:
        """One batch's bytes (as sealed, decompressed). Raises ValueError on a bad header."""
        lines = batch.split(b"\n")
        columns = header_columns(lines[0])
        device = columns[len(FIXED_COLUMNS) :]
        typed = tuple(device) == RECORD_TYPE_COLUMNS
        table = None if typed else self._table_for_shape(tuple(device))
        for line in lines[1:]:
            if not line:
                continue
            values = split_row(line)
            fixed = values[: len(FIXED_COLUMNS)]
            if not typed:
                table.rows.append(values)
                continue
            record_type, text = values[2].decode(), values[3]
            fields = text.split(b",") if text else []  # NMEA fields hold no comma
            table = self.tables.setdefault(_safe(record_type), Table(()))
            if len(fields) > len(table.columns):
                table.columns = tuple(f"f{n}" for n in range(1, len(fields) + 1))
            table.rows.append([*fixed, *fields])

    def _table_for_shape(self, device: tuple[str, ...]) -> Table:
        if device not in self._shapes:
            name = "rows" if not self._shapes else f"rows-{len(self._shapes) + 1}"
            self._shapes[device] = name
            self.tables[name] = Table(device)
        return self.tables[self._shapes[device]]

    def counts(self) -> dict[str, int]:
        """Rows per table, most first: what a summary shows of a stream's record types."""
        return dict(sorted(((n, len(t.rows)) for n, t in self.tables.items()), key=_by_count))


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _safe(name: str) -> str:
    """A record type as a file name (addresses are A-Z and 0-9 already; be safe anyway)."""
    return _SAFE_NAME_RE.sub("_", name) or "_"
