"""Reconcile the chain device counter -> seq -> sealed batches -> objects in the bucket. No I/O.

:func:`reconcile` takes what the audit found (local batches, objects in S3, batches cleanup
dropped, the device counters of stored rows, rejected lines' counters, reader restarts, the
episodes of rows the reader did not store) and names every gap with its cause and every
duplicate. The audit passes when no seq is missing without a recorded reason, nothing is
duplicated, and every batch marked uploaded is in S3. Gaps on the device side are reported
and fail the audit only with ``strict=True``.

A device gap lies between two stored rows whose ``seq`` follow each other. Its counters are
attributed, first match wins: rejected by the reader (the quarantine, or rejected and not
kept), not stored for a cause (an episode's span keyed by the ``seq`` of the row after the
gap: the disk full or read-only, the disk-limit policy, a hand-off overflow), and what is
left to the reader's restart (a run began at that ``seq``) or else to the wire. So the wire
is never blamed for what the disk or the policy cost. Episode spans no gap holds (before the
first stored row, after the last) are reported as gaps of their own.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from gateway.core.not_stored import DESCRIPTIONS, Cause, Episode
from gateway.core.spans import Overlap, holes, walk

REJECTED = "rejected by the reader (see quarantine)"
RESTARTED = "the reader restarted"
WIRE = "lost on the wire"


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A seq range held somewhere: a local batch, an object, a dropped batch."""

    first: int
    last: int
    where: str = ""
    touched: bool = False  # local batches: marked uploaded


@dataclass(frozen=True, slots=True)
class Gap:
    level: str  # "seq" or "device"
    first: int  # first missing value
    last: int
    cause: str

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class Duplicate:
    level: str
    first: int
    last: int
    where: tuple[str, ...]


@dataclass
class AuditReport:
    seq_first: int | None = None
    seq_last: int | None = None
    rows_local: int = 0
    rows_in_s3: int = 0
    pending_upload: list[Span] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    device_counter_resets: int = 0
    # Rows (or lines) the reader did not store, by cause: {"rows", "bytes", "episodes"}.
    not_stored: dict[str, dict] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        for gap in data["gaps"]:
            gap["count"] = gap["last"] - gap["first"] + 1
        return data


def _holes(spans: Sequence[Span], low: int, high: int) -> list[tuple[int, int]]:
    return holes(((s.first, s.last) for s in spans), low, high)


def _overlaps(spans: Sequence[Span], level: str) -> list[Duplicate]:
    return [
        Duplicate(level, found.first, found.last, (found.holder.where, found.item.where))
        for found in walk((s.first, s.last, s) for s in spans)
        if isinstance(found, Overlap)
    ]


def _subtract(low: int, high: int, spans: Iterable[Span]) -> list[tuple[int, int]]:
    return _holes(sorted(s for s in spans if s.last >= low and s.first <= high), low, high)


def reconcile(
    local: Sequence[Span],
    remote: Sequence[Span] | None,
    dropped: Sequence[Span] = (),
    device_rows: Sequence[tuple[int, int]] | None = None,
    rejected_counters: Iterable[int] = (),
    restart_seqs: Iterable[int] = (),
    not_stored: Sequence[Episode] = (),
    *,
    strict: bool = False,
) -> AuditReport:
    """``remote`` None: the bucket was not consulted. ``device_rows``: (seq, counter) pairs
    of the stored rows, in seq order, for formats with a device counter. ``not_stored``: the
    episodes of the not-stored ledger."""
    report = AuditReport()
    report.not_stored = _not_stored_totals(not_stored)
    _seq_level(report, local, remote, dropped)

    # device counter: jumps between consecutive stored rows, and what the ledgers explain.
    report.gaps += _device_gaps(
        device_rows or (), rejected_counters, set(restart_seqs), not_stored, report
    )
    if strict:
        for gap in report.gaps:
            if gap.level == "device":
                report.failures.append(f"device {gap.first}-{gap.last}: {gap.cause}")
    return report


def _seq_level(
    report: AuditReport,
    local: Sequence[Span],
    remote: Sequence[Span] | None,
    dropped: Sequence[Span],
) -> None:
    """Holes, drops, duplicates and missing objects in seq."""
    local = sorted(local)
    remote_sorted = sorted(remote or [])
    dropped = sorted(dropped)
    everything = sorted([*local, *remote_sorted, *dropped])
    if not everything:
        return
    low = min(s.first for s in everything)
    high = max(s.last for s in everything)
    report.seq_first, report.seq_last = low, high
    report.rows_local = sum(s.last - s.first + 1 for s in local)
    report.rows_in_s3 = sum(s.last - s.first + 1 for s in remote_sorted)

    # seq: every value is held locally, in S3, or was dropped by cleanup with a record.
    for first, last in _holes(everything, low, high):
        report.gaps.append(Gap("seq", first, last, "missing: no batch, object or loss record"))
        report.failures.append(f"seq {first}-{last} missing without a recorded reason")
    for span in dropped:
        for first, last in _subtract(span.first, span.last, remote_sorted):
            report.gaps.append(
                Gap("seq", first, last, f"dropped by cleanup before upload ({span.where})")
            )
    report.duplicates += _overlaps(local, "seq")
    report.duplicates += _overlaps(remote_sorted, "object")
    for duplicate in report.duplicates:
        report.failures.append(
            f"{duplicate.level} {duplicate.first}-{duplicate.last} held twice: "
            f"{', '.join(duplicate.where)}"
        )
    if remote is not None:
        for span in local:
            missing = _subtract(span.first, span.last, remote_sorted)
            if not missing:
                continue
            if span.touched:
                for first, last in missing:
                    report.gaps.append(
                        Gap("seq", first, last, f"marked uploaded but missing in S3 ({span.where})")
                    )
                    report.failures.append(f"{span.where} is marked uploaded but not in S3")
            else:
                report.pending_upload.append(span)


def _not_stored_totals(episodes: Sequence[Episode]) -> dict[str, dict]:
    totals: dict[str, dict] = {}
    for episode in episodes:
        entry = totals.setdefault(str(episode.cause), {"rows": 0, "bytes": 0, "episodes": 0})
        entry["rows"] += episode.rows
        entry["bytes"] += episode.bytes
        entry["episodes"] += 1
    return dict(sorted(totals.items()))


# A labelled stretch of counters: (first, last, cause).
Piece = tuple[int, int, str]


@dataclass(slots=True)
class _Held:
    """A span of the not-stored ledger, until a gap between stored rows holds it."""

    first: int
    last: int
    cause: str
    placed: bool = False


def _device_gaps(
    device_rows: Sequence[tuple[int, int]],
    rejected_counters: Iterable[int],
    restarts: set[int],
    not_stored: Sequence[Episode],
    report: AuditReport,
) -> list[Gap]:
    rejected = sorted(set(rejected_counters))
    by_seq: dict[int | None, list[_Held]] = {}  # by the seq of the stored row after them
    unkept: list[_Held] = []  # rejected lines not kept: found by counter, as quarantined ones
    for episode in not_stored:
        for span in episode.spans:
            held = _Held(span.first, span.last, DESCRIPTIONS[episode.cause])
            if episode.cause is Cause.REJECTED_NOT_KEPT:
                unkept.append(held)
            else:
                by_seq.setdefault(span.next_seq, []).append(held)
    gaps: list[Gap] = []
    for (previous_seq, previous), (seq, counter) in itertools.pairwise(device_rows):
        if seq != previous_seq + 1:  # rows between are cleaned up: not comparable
            continue
        if counter <= previous:
            report.device_counter_resets += 1
        elif counter > previous + 1:
            first, last = previous + 1, counter - 1
            pieces = [(c, c, REJECTED) for c in _within(rejected, first, last)]
            for held in [*unkept, *by_seq.get(seq, ())]:
                if held.last >= first and held.first <= last:
                    held.placed = True
                    pieces.append((held.first, held.last, held.cause))
            other = RESTARTED if seq in restarts else WIRE
            gaps += _attribute(first, last, pieces, other)
    left = [*unkept, *(held for spans in by_seq.values() for held in spans)]
    gaps += [  # before the first stored row, after the last
        Gap("device", held.first, held.last, held.cause)
        for held in sorted(left, key=lambda h: h.first)
        if not held.placed
    ]
    return gaps


def _within(points: list[int], first: int, last: int) -> list[int]:
    """The sorted ``points`` in ``first..last``."""
    return points[bisect.bisect_left(points, first) : bisect.bisect_right(points, last)]


def _attribute(first: int, last: int, pieces: list[Piece], other: str) -> list[Gap]:
    """Cover ``first..last`` with ``pieces`` and ``other`` between them; neighbours with one
    cause become one gap. Pieces do not overlap (a counter is rejected, or accepted and not
    stored); should a device repeat counters, the piece that starts first keeps the overlap
    (and, starting together, the one listed first)."""
    covered: list[Piece] = []
    position = first
    for a, b, cause in sorted(pieces, key=lambda p: p[0]):
        a, b = max(a, position, first), min(b, last)
        if a > b:
            continue
        if a > position:
            covered.append((position, a - 1, other))
        covered.append((a, b, cause))
        position = b + 1
    if position <= last:
        covered.append((position, last, other))
    gaps: list[Gap] = []
    for a, b, cause in covered:
        if gaps and gaps[-1].cause == cause and gaps[-1].last + 1 == a:
            gaps[-1] = Gap("device", gaps[-1].first, b, cause)
        else:
            gaps.append(Gap("device", a, b, cause))
    return gaps
