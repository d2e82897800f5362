"""The batch CSV format: header, rows, and checking a file's bytes. No I/O.

UTF-8, a header row, then one row per accepted line: ``seq,received_at,<device fields>``.
``received_at`` is the reader's Unix time (6 decimals) when the read holding the line returned;
the device fields are the line's text exactly. A field that holds a comma, a double quote or a
carriage return is quoted as RFC 4180 says (:mod:`gateway.core.csvfields`); a row is always one
physical line. Rows of the numeric formats never need quoting and are checked by the fast path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

from gateway.core.csvfields import join_fields, split_row

FIXED_COLUMNS = ("seq", "received_at")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_TIME_RE = re.compile(rb"\d+(?:\.\d+)?")
#: Digits a seq may have (a machine integer), so no row can make int() refuse or crawl.
MAX_SEQ_DIGITS = 20


def column_names(field_count: int, configured: Sequence[str] = ()) -> list[str]:
    """Names of the device columns: the configured ones, else ``f0, f1, ...``."""
    if configured:
        if len(configured) != field_count:
            raise ValueError(
                f"{len(configured)} field names configured but lines have {field_count} fields"
            )
        names = list(configured)
    else:
        names = [f"f{index}" for index in range(field_count)]
    for name in names:
        if not _NAME_RE.fullmatch(name) or name in FIXED_COLUMNS:
            raise ValueError(f"field name {name!r} is not usable as a CSV column name")
    return names


def device_field(row: bytes, index: int) -> bytes:
    """The ``index``-th device field of a batch row (after ``seq`` and ``received_at``), its
    quotes removed. Raises IndexError past the last field, ValueError on a malformed quote."""
    column = len(FIXED_COLUMNS) + index
    row = row.rstrip(b"\n")
    if b'"' not in row:
        return row.split(b",", column + 1)[column]
    return split_row(row)[column]


def row_seq(row: bytes) -> int:
    return int(row[: row.index(b",")])


def header_row(names: Sequence[str]) -> bytes:
    """The header row: ``seq,received_at`` and the names (quoted where a name must be)."""
    return join_fields(name.encode() for name in (*FIXED_COLUMNS, *names)) + b"\n"


def header_columns(header: bytes) -> tuple[str, ...]:
    """The column names of a header row (without its newline); ValueError if it is not
    UTF-8 or a quote is misplaced."""
    return tuple(name.decode("utf-8") for name in split_row(header))


def received_at_text(unix_time: float) -> bytes:
    return b"%.6f" % unix_time


def format_rows(first_seq: int, received_at: bytes, records: Sequence[bytes]) -> list[bytes]:
    """One CSV row per record, numbered from ``first_seq``, each ending in a newline."""
    middle = b"," + received_at + b","
    return [
        b"%d%s%s\n" % (seq, middle, record)
        for seq, record in zip(range(first_seq, first_seq + len(records)), records, strict=True)
    ]


def format_block(first_seq: int, received_at: bytes, records: Sequence[bytes]) -> bytes:
    """``b"".join(format_rows(...))`` in one formatting call, without an object per row."""
    row = b"%d," + received_at.replace(b"%", b"%%") + b",%s\n"
    seqs = range(first_seq, first_seq + len(records))
    return (row * len(records)) % tuple(chain.from_iterable(zip(seqs, records, strict=True)))


@dataclass(frozen=True, slots=True)
class BatchCheck:
    """What a batch file's bytes hold, up to the first problem (if any)."""

    columns: tuple[str, ...]
    rows: int
    first_seq: int | None
    last_seq: int | None
    good_bytes: int  # bytes up to and including the last good row
    problem: str | None
    earliest: float | None  # smallest received_at
    latest: float | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_batch(data: bytes, expected_first_seq: int | None = None) -> BatchCheck:
    """Check header and rows: complete lines, the header's field count, ``seq`` contiguous.

    Stops at the first bad row; ``good_bytes`` says where the good part ends, so recovery can
    cut a file back to its last complete row.
    """
    end = data.find(b"\n")
    columns: tuple[str, ...] = ()
    if end >= 0:
        try:
            columns = header_columns(data[:end])
        except ValueError:  # not UTF-8, or a misplaced quote
            columns = ()
    if end < 0 or columns[:2] != FIXED_COLUMNS or len(columns) < 3:
        problem = "no header row" if end < 0 else "header row does not start with seq,received_at"
        return BatchCheck(columns, 0, None, None, 0, problem, None, None)
    width = len(columns)
    position = end + 1
    rows = 0
    first = last = None
    earliest = latest = None
    problem = None
    expected = expected_first_seq
    size = len(data)
    while position < size:
        end = data.find(b"\n", position)
        if end < 0:
            problem = f"row {rows + 1} is incomplete ({size - position} bytes, no newline)"
            break
        row = data[position:end]
        if b'"' in row:
            try:
                count = len(split_row(row))
            except ValueError as error:
                problem = f"row {rows + 1} has a {error}"
                break
        else:
            count = row.count(b",") + 1
        if count != width:
            problem = f"row {rows + 1} has {count} fields, header has {width}"
            break
        seq_text, time_text, _ = row.split(b",", 2)  # never quoted: checked just below
        if (
            not seq_text.isdigit()
            or len(seq_text) > MAX_SEQ_DIGITS
            or not _TIME_RE.fullmatch(time_text)
        ):
            problem = f"row {rows + 1} has no valid seq and received_at"
            break
        seq = int(seq_text)
        if expected is not None and seq != expected:
            problem = f"row {rows + 1} has seq {seq}, expected {expected}"
            break
        try:
            data[position:end].decode("utf-8")
        except UnicodeDecodeError:
            problem = f"row {rows + 1} is not valid UTF-8"
            break
        received = float(time_text)
        earliest = received if earliest is None else min(earliest, received)
        latest = received if latest is None else max(latest, received)
        if first is None:
            first = seq
        last = seq
        expected = seq + 1
        rows += 1
        position = end + 1
    return BatchCheck(
        columns,
        rows,
        first,
        last,
        position,
        problem,
        earliest,
        latest,
    )
