"""``gateway report``'s arithmetic: combine per-batch results, find gaps, build the summary. No I/O.

The per-batch step (:mod:`gateway.report.batch`) turns one batch file into a
:class:`BatchResult`: its edges (seq, device counter, times), every jump of the device counter
inside it, a few min/max buckets for the overview plot and, per channel, *exact* statistics.
This module combines any number of them into a :class:`Combined` and turns that into the
summary and the series the plots draw.

Exactly equal, whatever the split and order: a channel's sum and sum of squares are kept as
:class:`fractions.Fraction` of the values as the device wrote them (decimal text, so the
denominators are powers of ten and stay small), counts are integers and minima and maxima are
exact. Adding those is associative and commutative, so a Dask cluster that combines batches
in whatever order they finish gets the very numbers a single machine gets batch by batch;
floats appear only when the summary is built, once, from the exact totals. Everything else is
kept per batch and sorted by ``seq`` before use.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

from gateway.core.records import counter_field
from gateway.core.spans import Adjacent, Hole, walk
from gateway.core.spans import Overlap as SpanOverlap

#: Overview buckets wanted over the whole report; each batch gets its share (at least one).
OVERVIEW_BUCKETS = 4000
MAX_BUCKETS_PER_BATCH = 256


def buckets_per_batch(batch_count: int, wanted: int = OVERVIEW_BUCKETS) -> int:
    """Overview buckets each batch contributes: ``wanted`` in all, 1 to 256 each.

    Both the single-machine and the distributed run call this with the number of batches
    listed, so both cut every batch the same way.
    """
    if batch_count <= 0:
        return 1
    return max(1, min(MAX_BUCKETS_PER_BATCH, -(-wanted // batch_count)))


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """Exact statistics of one channel's values: combine with :meth:`merge` (or ``+``)."""

    count: int = 0
    total: Fraction = Fraction(0)
    squares: Fraction = Fraction(0)
    low: Fraction | None = None
    high: Fraction | None = None
    non_numeric: int = 0  # values that are not finite numbers (text fields)

    @classmethod
    def of_values(cls, values: Iterable[Fraction | int | str], non_numeric: int = 0):
        """Statistics of exact values (Fractions, ints or decimal text): the reference."""
        exact = [Fraction(value) for value in values]
        if not exact:
            return cls(non_numeric=non_numeric)
        return cls(
            len(exact),
            sum(exact, Fraction(0)),
            sum((value * value for value in exact), Fraction(0)),
            min(exact),
            max(exact),
            non_numeric,
        )

    def merge(self, other: ChannelStats) -> ChannelStats:
        lows = [v for v in (self.low, other.low) if v is not None]
        highs = [v for v in (self.high, other.high) if v is not None]
        return ChannelStats(
            self.count + other.count,
            self.total + other.total,
            self.squares + other.squares,
            min(lows) if lows else None,
            max(highs) if highs else None,
            self.non_numeric + other.non_numeric,
        )

    __add__ = merge

    @property
    def mean(self) -> float | None:
        return float(self.total / self.count) if self.count else None

    @property
    def variance(self) -> Fraction | None:
        """Sample variance (n - 1), exact."""
        if self.count < 2:
            return None
        n = self.count
        return (self.squares - self.total * self.total / n) / (n - 1)

    @property
    def std(self) -> float | None:
        variance = self.variance
        return None if variance is None else math.sqrt(float(variance))

    def as_dict(self) -> dict:
        return {
            "count": self.count,
            "min": None if self.low is None else float(self.low),
            "max": None if self.high is None else float(self.high),
            "mean": self.mean,
            "std": self.std,
            "non_numeric": self.non_numeric,
        }


@dataclass(frozen=True, slots=True)
class Bucket:
    """A slice of consecutive rows of one batch: min and max per channel (batch order)."""

    first_seq: int
    rows: int
    start: float  # earliest received_at in the slice
    end: float
    low: tuple[float, ...]  # NaN where a channel has no number in the slice
    high: tuple[float, ...]


@dataclass(frozen=True, slots=True, order=True)
class CounterJump:
    """Between two consecutive rows the device counter did not grow by exactly 1."""

    seq: int  # seq of the row after the jump
    before: int  # device counter of the row before
    after: int
    at: float  # received_at of the row after


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one batch holds. ``problem`` set: the batch could not be read (nothing else is)."""

    name: str
    first_seq: int = 0
    last_seq: int = -1
    rows: int = 0
    first_at: float = 0.0  # received_at of the first and last row
    last_at: float = 0.0
    start: float = 0.0  # earliest and latest received_at
    end: float = 0.0
    first_counter: int | None = None
    last_counter: int | None = None
    device_rate: float | None = None  # samples per second of device time t
    channels: tuple[str, ...] = ()
    stats: tuple[ChannelStats, ...] = ()
    buckets: tuple[Bucket, ...] = ()
    jumps: tuple[CounterJump, ...] = ()
    problem: str | None = None

    @property
    def sort_key(self) -> tuple:
        return (self.first_seq, self.last_seq, self.name)


@dataclass(frozen=True)
class Combined:
    """Any number of batch results combined. :func:`combine` is associative and commutative."""

    stats: Mapping[str, ChannelStats] = field(default_factory=dict)
    batches: tuple[BatchResult, ...] = ()  # statistics stripped: they live in ``stats``
    unreadable: tuple[tuple[str, str], ...] = ()  # (batch, problem)

    @classmethod
    def of(cls, result: BatchResult) -> Combined:
        if result.problem is not None:
            return cls(unreadable=((result.name, result.problem),))
        stats = dict(zip(result.channels, result.stats, strict=True))
        return cls(stats, (replace(result, stats=()),))

    def canonical(self) -> Combined:
        """The same content in one order: batches by seq, channels by name."""
        return Combined(
            {name: self.stats[name] for name in sorted(self.stats)},
            tuple(sorted(self.batches, key=lambda b: b.sort_key)),
            tuple(sorted(self.unreadable)),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Combined):
            return NotImplemented
        a, b = self.canonical(), other.canonical()
        return (
            list(a.stats.items()) == list(b.stats.items())
            and a.batches == b.batches
            and a.unreadable == b.unreadable
        )

    __hash__ = None  # type: ignore[assignment]


def combine(a: Combined, b: Combined) -> Combined:
    stats = dict(a.stats)
    for name, channel in b.stats.items():
        stats[name] = stats[name].merge(channel) if name in stats else channel
    return Combined(stats, a.batches + b.batches, a.unreadable + b.unreadable)


class Combiner:
    """:func:`combine` one part at a time without copying what is already held (a fleet
    report adds tens of thousands of batches)."""

    def __init__(self) -> None:
        self._stats: dict[str, ChannelStats] = {}
        self._batches: list[BatchResult] = []
        self._unreadable: list[tuple[str, str]] = []

    def add(self, part: Combined | BatchResult) -> None:
        if isinstance(part, BatchResult):
            part = Combined.of(part)
        for name, channel in part.stats.items():
            held = self._stats.get(name)
            self._stats[name] = channel if held is None else held.merge(channel)
        self._batches.extend(part.batches)
        self._unreadable.extend(part.unreadable)

    def result(self) -> Combined:
        return Combined(dict(self._stats), tuple(self._batches), tuple(self._unreadable))


def combine_all(parts: Iterable[Combined | BatchResult]) -> Combined:
    combiner = Combiner()
    for part in parts:
        combiner.add(part)
    return combiner.result()


# -- gaps -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeqGap:
    first: int  # first missing seq
    last: int
    at: float  # received_at of the last row before the hole

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class DeviceGap:
    first: int  # first missing device counter
    last: int
    seq: int  # seq of the row after the gap
    at: float
    rejected: int | None  # how many of the missing lines the reader rejected (None: unknown)

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class Overlap:
    first: int
    last: int
    batches: tuple[str, str]


@dataclass
class Gaps:
    seq: list[SeqGap] = field(default_factory=list)
    device: list[DeviceGap] = field(default_factory=list)
    resets: list[CounterJump] = field(default_factory=list)  # the counter went back
    overlaps: list[Overlap] = field(default_factory=list)


def find_gaps(
    batches: Sequence[BatchResult], rejected_counters: Sequence[int] | None = None
) -> Gaps:
    """Holes in ``seq`` between batches; counter jumps inside and between contiguous batches.

    ``rejected_counters`` (sorted; None when the quarantine is not at hand) splits each
    device gap into lines the reader rejected and lines lost before it.
    """
    gaps = Gaps()
    jumps: list[CounterJump] = [jump for batch in batches for jump in batch.jumps]
    ordered = sorted(batches, key=lambda b: b.sort_key)
    for found in walk((b.first_seq, b.last_seq, b) for b in ordered):
        match found:
            case Hole(first, last, before):
                gaps.seq.append(SeqGap(first, last, before.last_at))
            case SpanOverlap(first, last, holder, batch):
                gaps.overlaps.append(Overlap(first, last, (holder.name, batch.name)))
            case Adjacent(before, after) if (
                before.last_counter is not None and after.first_counter is not None
            ):
                jumps.append(
                    CounterJump(
                        after.first_seq, before.last_counter, after.first_counter, after.first_at
                    )
                )
    for jump in sorted(jumps):
        if jump.after > jump.before + 1:
            first, last = jump.before + 1, jump.after - 1
            rejected = None
            if rejected_counters is not None:
                rejected = bisect.bisect_right(rejected_counters, last) - bisect.bisect_left(
                    rejected_counters, first
                )
            gaps.device.append(DeviceGap(first, last, jump.seq, jump.at, rejected))
        elif jump.after <= jump.before:
            gaps.resets.append(jump)
    return gaps


# -- the summary ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejects:
    """What the data dir's quarantine says about the report's days."""

    by_reason: Mapping[str, int]
    counters: tuple[int, ...] = ()  # device counters of rejected lines, where they survived
    times: tuple[float, ...] = ()  # when each rejected line was read
    recovered_tails: int = 0  # row tails recovery cut off unfinished batches

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


UNKNOWN_REJECTS = (
    "unknown: rejected lines stay in the gateway's quarantine (quarantine/*.jsonl in its data "
    "dir), which is not uploaded; run the report on the data dir, or `gateway status` there"
)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="microseconds")


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    values = sorted(values)
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2


def build_summary(
    combined: Combined,
    *,
    gateway_id: str,
    source: str,
    line_format: str,
    since: dt.date | None = None,
    until: dt.date | None = None,
    rejects: Rejects | None = None,
    duplicate_objects: int = 0,
) -> dict:
    """The report's summary as JSON-ready data (floats only here, from exact totals)."""
    combined = combined.canonical()
    batches = combined.batches
    rows = sum(b.rows for b in batches)
    start = min((b.start for b in batches), default=None)
    end = max((b.end for b in batches), default=None)
    duration = None if start is None else end - start
    counters = sorted(rejects.counters) if rejects is not None else None
    gaps = find_gaps(batches, counters)
    device_missing = sum(g.count for g in gaps.device)
    if line_format == "auto":  # the batches were read as they said: with counters or without
        has_counter = any(b.first_counter is not None for b in batches)
    else:
        has_counter = counter_field(line_format) is not None
    summary: dict = {
        "gateway_id": gateway_id,
        "source": source,
        "line_format": line_format,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "batches": len(batches),
        "unreadable_batches": [{"batch": n, "problem": p} for n, p in combined.unreadable],
        "duplicate_objects": duplicate_objects,
        "rows": rows,
        "seq_first": batches[0].first_seq if batches else None,
        "seq_last": max(b.last_seq for b in batches) if batches else None,
        "start": _iso(start),
        "end": _iso(end),
        "duration_seconds": duration,
        "rate_hz": rows / duration if duration else None,
        "device_rate_hz": _median([b.device_rate for b in batches if b.device_rate]),
        "gaps": {
            "seq_missing": sum(g.count for g in gaps.seq),
            "device_missing": device_missing if has_counter else None,
            "device_rejected": (
                sum(g.rejected or 0 for g in gaps.device) if rejects is not None else None
            ),
            "device_counter_resets": len(gaps.resets),
            "seq": [
                {"first": g.first, "last": g.last, "count": g.count, "after": _iso(g.at)}
                for g in gaps.seq
            ],
            "device": [
                {
                    "first": g.first,
                    "last": g.last,
                    "count": g.count,
                    "seq": g.seq,
                    "at": _iso(g.at),
                    "rejected": g.rejected,
                }
                for g in gaps.device
            ],
            "resets": [
                {"seq": j.seq, "before": j.before, "after": j.after, "at": _iso(j.at)}
                for j in gaps.resets
            ],
            "overlaps": [
                {"first": o.first, "last": o.last, "batches": list(o.batches)}
                for o in gaps.overlaps
            ],
        },
        "rejects": (
            {
                "known": True,
                "total": rejects.total,
                "by_reason": dict(sorted(rejects.by_reason.items())),
                "recovered_tails": rejects.recovered_tails,
            }
            if rejects is not None
            else {"known": False, "note": UNKNOWN_REJECTS}
        ),
        "channels": {name: stats.as_dict() for name, stats in combined.stats.items()},
    }
    return summary


def format_summary(summary: dict) -> str:
    """The summary for a terminal."""
    lines = [
        f"{summary['gateway_id']} ({summary['source']}, {summary['line_format']}): "
        f"{summary['rows']} rows in {summary['batches']} batches, "
        f"seq {summary['seq_first']}..{summary['seq_last']}",
    ]
    if summary["start"]:
        rate = summary["rate_hz"]
        device_rate = summary["device_rate_hz"]
        lines.append(
            f"  {summary['start']} .. {summary['end']} ({summary['duration_seconds']:.3f} s), "
            + (f"{rate:.3f} rows/s" if rate else "rate unknown")
            + (f", device {device_rate:.3f} samples/s" if device_rate else "")
        )
    gaps = summary["gaps"]
    device = gaps["device_missing"]
    lines.append(
        f"  gaps: {gaps['seq_missing']} seq missing ({len(gaps['seq'])} holes), "
        + (
            f"{device} device samples missing ({len(gaps['device'])} jumps"
            + (f", {gaps['device_rejected']} of them rejected" if gaps["device_rejected"] else "")
            + f"), {gaps['device_counter_resets']} counter resets"
            if device is not None
            else "no device counter in this format"
        )
    )
    rejects = summary["rejects"]
    if rejects["known"]:
        reasons = ", ".join(f"{k} {v}" for k, v in rejects["by_reason"].items()) or "none"
        lines.append(f"  rejects: {rejects['total']} ({reasons})")
    else:
        lines.append(f"  rejects: {rejects['note']}")
    for item in summary["unreadable_batches"]:
        lines.append(f"  unreadable: {item['batch']}: {item['problem']}")
    for name, stats in summary["channels"].items():
        if stats["count"]:
            lines.append(
                f"  {name:>10}: n={stats['count']} min={stats['min']:.6g} max={stats['max']:.6g}"
                f" mean={stats['mean']:.6g}"
                + (f" std={stats['std']:.6g}" if stats["std"] is not None else "")
                + (f" non-numeric={stats['non_numeric']}" if stats["non_numeric"] else "")
            )
        else:
            lines.append(f"  {name:>10}: no numbers ({stats['non_numeric']} non-numeric)")
    return "\n".join(lines)


# -- plot series ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """One channel's overview: per time bin, the bin's first time, min and max."""

    times: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    breaks: tuple[int, ...]  # indexes of bins that do not continue the one before (a gap)


def _bins(start: float, end: float, count: int) -> float:
    span = end - start
    return span / count if span > 0 else 1.0


def _segments(buckets: Sequence[Bucket]) -> list[int]:
    """Segment number of each bucket (seq order): a new one after a seq hole or a pause."""
    spans = sorted(b.end - b.start for b in buckets)
    pause = max(1.0, 10 * spans[len(spans) // 2])
    segments, segment = [0], 0
    for previous, bucket in zip(buckets, buckets[1:], strict=False):
        if (
            bucket.first_seq != previous.first_seq + previous.rows
            or bucket.start - previous.end > pause
        ):
            segment += 1
        segments.append(segment)
    return segments


def overview(combined: Combined, max_points: int = 2000) -> dict[str, Envelope]:
    """Per channel, min/max of the buckets re-binned to at most ``max_points`` time bins.

    A line breaks where rows are missing (a seq hole) or none arrived for a while.
    """
    batches = sorted(combined.batches, key=lambda b: b.sort_key)
    pairs = [(bucket, b.channels) for b in batches for bucket in b.buckets]
    if not pairs:
        return {}
    buckets = [bucket for bucket, _ in pairs]
    segments = _segments(buckets)
    points = max(1, min(max_points, len(buckets)))
    start = min(bucket.start for bucket in buckets)
    end = max(bucket.start for bucket in buckets)
    width = _bins(start, end, points)
    per_channel: dict[str, dict[int, list]] = {}
    for (bucket, channels), segment in zip(pairs, segments, strict=True):
        index = min(points - 1, int((bucket.start - start) / width))
        for name, low, high in zip(channels, bucket.low, bucket.high, strict=True):
            if math.isnan(low):
                continue
            bins = per_channel.setdefault(name, {})
            held = bins.get(index)
            if held is None:
                bins[index] = [bucket.start, low, high, segment, segment]
            else:
                held[0] = min(held[0], bucket.start)
                held[1] = min(held[1], low)
                held[2] = max(held[2], high)
                held[3] = min(held[3], segment)
                held[4] = max(held[4], segment)
    envelopes = {}
    for name in sorted(per_channel):
        bins = per_channel[name]
        held = [bins[i] for i in sorted(bins)]
        envelopes[name] = Envelope(
            tuple(b[0] for b in held),
            tuple(b[1] for b in held),
            tuple(b[2] for b in held),
            tuple(i for i in range(1, len(held)) if held[i][3] > held[i - 1][4]),
        )
    return envelopes


@dataclass(frozen=True)
class RateSeries:
    """Rows per second over time, and rejected lines per second (when known)."""

    times: tuple[float, ...]  # start of each bin
    width: float
    rows_per_second: tuple[float, ...]
    rejects_per_second: tuple[float, ...] | None


def rate_series(
    combined: Combined, rejects: Rejects | None = None, max_bins: int = 400, min_width: float = 0.25
) -> RateSeries:
    """Bucket rows binned by their first received_at: rows per second per bin."""
    buckets = [bucket for b in combined.batches for bucket in b.buckets]
    if not buckets:
        return RateSeries((), 1.0, (), None)
    start = min(bucket.start for bucket in buckets)
    end = max(bucket.end for bucket in buckets)
    width = max(min_width, _bins(start, end, max_bins))
    count = int((end - start) / width) + 1
    rows = [0] * count
    for bucket in buckets:
        rows[int((bucket.start - start) / width)] += bucket.rows
    rejected = None
    if rejects is not None:
        rejected = [0] * count
        for at in rejects.times:
            index = int((at - start) / width)
            if 0 <= index < count:
                rejected[index] += 1
    return RateSeries(
        tuple(start + i * width for i in range(count)),
        width,
        tuple(r / width for r in rows),
        None if rejected is None else tuple(r / width for r in rejected),
    )
