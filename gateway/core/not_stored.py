"""Rows the reader read but did not store: why, how many, which device counters. No I/O.

The reader counts every row it cannot store by its :class:`Cause` and keeps them in
*episodes*: one stretch of one cause (the disk full from 10:02:07 to 10:02:31, the disk-limit
policy refusing for an hour). An :class:`Episode` holds its start and end, the rows, the bytes
where only bytes are known (a hand-off overflow drops bytes, not lines), and the device
counters as :class:`CounterSpan`s: runs of consecutive counters, each with the ``seq`` the next
stored row got. Rows not stored take no ``seq``, so the audit finds them between two stored
rows whose ``seq`` follow each other while their device counters jump; ``next_seq`` says which
jump. The store writes each episode as one entry of ``state/not_stored.jsonl``.
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gateway.core.csvfields import split_row


class Cause(enum.StrEnum):
    """Why rows were not stored. The values are stable: ledger, status and metrics use them."""

    DISK_FULL = "disk_full"  # ENOSPC, EDQUOT: a write found no room
    READ_ONLY = "read_only"  # EROFS: the data dir's file system is mounted read-only
    DISK_ERROR = "disk_error"  # any other error a write or recovery met (EIO, EACCES, ...)
    DISK_LIMIT = "disk_limit"  # GATEWAY_ON_FULL=stop-accepting refused them (a limit holds)
    HANDOFF_OVERFLOW = "handoff_overflow"  # the writer fell behind; the port thread dropped bytes
    REJECTED_NOT_KEPT = "rejected_not_kept"  # rejected lines the quarantine could not keep


#: Causes of rows that were accepted and then not stored (``fieldgate_rows_not_stored_total``).
ACCEPTED_CAUSES = (Cause.DISK_FULL, Cause.READ_ONLY, Cause.DISK_ERROR, Cause.DISK_LIMIT)
#: Causes that are the disk refusing writes: the reader probes until it takes them again.
DISK_FAULTS = (Cause.DISK_FULL, Cause.READ_ONLY, Cause.DISK_ERROR)

#: What each cause means, as the audit and the status say it.
DESCRIPTIONS = {
    Cause.DISK_FULL: "not stored: the disk was full",
    Cause.READ_ONLY: "not stored: the data dir was read-only",
    Cause.DISK_ERROR: "not stored: the disk refused writes",
    Cause.DISK_LIMIT: "not stored: refused by the disk-limit policy (GATEWAY_ON_FULL)",
    Cause.HANDOFF_OVERFLOW: "dropped: the reader fell behind and its hand-off overflowed",
    Cause.REJECTED_NOT_KEPT: "rejected by the reader and not kept in the quarantine",
}

#: What to do about each, for the log lines and the status.
HINTS = {
    Cause.DISK_FULL: "free space on the data dir's disk (gateway status shows what it holds; "
    "gateway cleanup --dry-run what may go); storing resumes by itself within seconds",
    Cause.READ_ONLY: "the data dir's file system is read-only: a kernel remounts an SD card "
    "read-only after I/O errors (see dmesg); fix or replace the card, or remount it "
    "read-write; storing resumes by itself within seconds",
    Cause.DISK_ERROR: "see the error; check the data dir's permissions and the card (dmesg); "
    "storing resumes by itself when a write goes through",
    Cause.DISK_LIMIT: "upload or free space; see gateway cleanup --dry-run",
    Cause.HANDOFF_OVERFLOW: "storing fell behind the port: a slow or failing card, or "
    "GATEWAY_QUEUE_BYTES too small for the rate",
    Cause.REJECTED_NOT_KEPT: "the quarantine's day budget (GATEWAY_MAX_QUARANTINE_BYTES / 2) "
    "is spent or its disk refused the write; the lines were refused either way",
}

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def cause_of(error: OSError) -> Cause:
    """The cause a failed write stands for."""
    if error.errno in _FULL:
        return Cause.DISK_FULL
    if error.errno == errno.EROFS:
        return Cause.READ_ONLY
    return Cause.DISK_ERROR


#: Spans an episode keeps; past this, new counters widen the last span (and ``spans_merged``
#: says how often): a stretch of hours with a flaky wire may not grow memory without bound.
MAX_SPANS = 256


@dataclass(slots=True)
class CounterSpan:
    """Device counters ``first..last`` (consecutive) were not stored; the next row stored got
    ``next_seq`` (None: unknown, the data dir could not be read)."""

    first: int
    last: int
    next_seq: int | None

    def as_list(self) -> list:
        return [self.first, self.last, self.next_seq]


@dataclass(slots=True)
class Episode:
    """A stretch of one cause. ``start``/``end`` are Unix times the caller passes in."""

    cause: Cause
    start: float
    end: float
    error: str = ""  # what the disk said, for disk faults
    rows: int = 0  # rows (or lines) not stored; for an overflow, what the device counter says
    bytes: int = 0  # bytes dropped (an overflow)
    spans: list[CounterSpan] = field(default_factory=list)
    spans_merged: int = 0

    def add_rows(self, counters: Sequence[int] | None, rows: int, next_seq: int | None, at: float):
        """Count ``rows`` rows at ``at``; ``counters`` their device counters, where known."""
        self.rows += rows
        self.end = max(self.end, at)
        for counter in counters or ():
            self.add_counter(counter, next_seq)

    def add_counter(self, counter: int, next_seq: int | None) -> None:
        last = self.spans[-1] if self.spans else None
        if last is not None and counter == last.last + 1 and last.next_seq == next_seq:
            last.last = counter
        elif len(self.spans) < MAX_SPANS:
            self.spans.append(CounterSpan(counter, counter, next_seq))
        else:
            self.spans_merged += 1
            last.first, last.last = min(last.first, counter), max(last.last, counter)

    def add_span(self, first: int, last: int, next_seq: int | None, rows: int, at: float) -> None:
        """Counters ``first..last`` are missing at once (an overflow's device gap)."""
        self.rows += rows
        self.end = max(self.end, at)
        if len(self.spans) < MAX_SPANS:
            self.spans.append(CounterSpan(first, last, next_seq))
        else:
            self.spans_merged += 1
            tail = self.spans[-1]
            tail.first, tail.last = min(tail.first, first), max(tail.last, last)

    @property
    def lost_anything(self) -> bool:
        return bool(self.rows or self.bytes or self.spans)


def record_counters(records: Iterable[bytes], index: int) -> list[int]:
    """The device counters of accepted records (device fields joined by commas, quoted where a
    field must be) whose counter is field ``index``. The codecs checked each counter: digits
    only, at most 20 of them."""
    counters = []
    for record in records:
        head = record.split(b",", index + 1)
        if index and b'"' in b",".join(head[:index]):
            head = split_row(record)
        counters.append(int(head[index]))
    return counters
