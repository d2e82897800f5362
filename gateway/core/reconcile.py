"""Reconcile the chain device counter -> seq -> sealed batches -> objects in the bucket. No I/O.

:func:`reconcile` takes what the audit found (local batches, objects in S3, batches cleanup
dropped, the device counters of stored rows, rejected lines' counters, reader restarts) and
names every gap with its cause and every duplicate. The audit passes when no seq is missing
without a recorded reason, nothing is duplicated, and every batch marked uploaded is in S3.
Gaps on the device side (lost on the wire, rejected) are reported; they are the device's or
the cable's, and fail the audit only with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from gateway.core.spans import Overlap, holes, walk


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
    *,
    strict: bool = False,
) -> AuditReport:
    """``remote`` None: the bucket was not consulted. ``device_rows``: (seq, counter) pairs
    of the stored rows, in seq order, for formats with a device counter."""
    report = AuditReport()
    local = sorted(local)
    remote_sorted = sorted(remote or [])
    dropped = sorted(dropped)
    everything = sorted([*local, *remote_sorted, *dropped])
    if not everything:
        return report
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

    # device counter: jumps between consecutive stored rows.
    if device_rows:
        rejected = set(rejected_counters)
        restarts = set(restart_seqs)
        previous_seq, previous = device_rows[0]
        for seq, counter in device_rows[1:]:
            if seq == previous_seq + 1:  # otherwise rows between are cleaned up: not comparable
                if counter <= previous:
                    report.device_counter_resets += 1
                elif counter > previous + 1:
                    cause = "the reader restarted" if seq in restarts else "lost on the wire"
                    report.gaps.extend(_device_gaps(previous + 1, counter - 1, rejected, cause))
            previous_seq, previous = seq, counter
        if strict:
            for gap in report.gaps:
                if gap.level == "device":
                    report.failures.append(f"device {gap.first}-{gap.last}: {gap.cause}")
    return report


def _device_gaps(first: int, last: int, rejected: set[int], other: str) -> list[Gap]:
    """Split a counter gap into runs of rejected lines and runs lost for ``other``."""

    def cause(was_rejected: bool) -> str:
        return "rejected by the reader (see quarantine)" if was_rejected else other

    if last - first > 100_000:  # a jump this big is not a run of individual lines
        return [Gap("device", first, last, other)]
    gaps: list[Gap] = []
    run_start, run_rejected = first, first in rejected
    for counter in range(first + 1, last + 1):
        is_rejected = counter in rejected
        if is_rejected != run_rejected:
            gaps.append(Gap("device", run_start, counter - 1, cause(run_rejected)))
            run_start, run_rejected = counter, is_rejected
    gaps.append(Gap("device", run_start, last, cause(run_rejected)))
    return gaps
