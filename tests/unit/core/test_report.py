"""gateway.core.report: exact combination, gaps from edges, the summary. Plain data only."""

import datetime as dt
import random
import statistics
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.report import (
    UNKNOWN_REJECTS,
    BatchResult,
    Bucket,
    ChannelStats,
    Combined,
    CounterJump,
    Rejects,
    buckets_per_batch,
    build_summary,
    combine,
    combine_all,
    find_gaps,
    format_summary,
    overview,
    rate_series,
)

CHANNELS = ("ch0", "ch1")


def batch_of(rows, name=None, buckets=2):
    """A BatchResult from rows (seq, counter, at, {channel: decimal text}), computed the slow,
    obvious way: the reference the per-batch code is checked against elsewhere."""
    seqs = [r[0] for r in rows]
    counters = [r[1] for r in rows]
    times = [r[2] for r in rows]
    jumps = tuple(
        CounterJump(rows[i][0], counters[i - 1], counters[i], times[i])
        for i in range(1, len(rows))
        if counters[i] != counters[i - 1] + 1
    )
    stats = tuple(ChannelStats.of_values(r[3][c] for r in rows) for c in CHANNELS)
    count = max(1, min(buckets, len(rows)))
    bounds = [len(rows) * i // count for i in range(count + 1)]
    slices = []
    for i in range(count):
        part = rows[bounds[i] : bounds[i + 1]]
        slices.append(
            Bucket(
                part[0][0],
                len(part),
                min(r[2] for r in part),
                max(r[2] for r in part),
                tuple(min(float(r[3][c]) for r in part) for c in CHANNELS),
                tuple(max(float(r[3][c]) for r in part) for c in CHANNELS),
            )
        )
    return BatchResult(
        name or f"{seqs[0]:012d}-{seqs[-1]:012d}.csv",
        seqs[0],
        seqs[-1],
        len(rows),
        times[0],
        times[-1],
        min(times),
        max(times),
        counters[0],
        counters[-1],
        1000.0,
        CHANNELS,
        stats,
        tuple(slices),
        jumps,
    )


decimal_text = st.builds(
    lambda units, decimals: f"{Decimal(units).scaleb(-decimals):f}",
    st.integers(-(10**9), 10**9),
    st.integers(0, 6),
)


@st.composite
def sessions(draw):
    """Rows with seq holes, counter jumps and resets, cut into batches at random places."""
    count = draw(st.integers(1, 40))
    rows, seq, counter, at = [], draw(st.integers(0, 1000)), 0, 1_700_000_000.0
    for _ in range(count):
        event = draw(st.sampled_from(["next"] * 6 + ["jump", "reset", "hole"]))
        if event == "jump":
            counter += draw(st.integers(2, 50))
        elif event == "reset":
            counter = draw(st.integers(0, 3))
        elif event == "hole":
            seq += draw(st.integers(1, 20))
        rows.append((seq, counter, at, {c: draw(decimal_text) for c in CHANNELS}))
        seq += 1
        counter += 1
        at += draw(st.sampled_from([0.0, 0.001, 0.02, 3.0]))
    cuts = sorted(set(draw(st.lists(st.integers(1, count - 1), max_size=10)))) if count > 1 else []
    batches = []
    for start, end in zip([0, *cuts], [*cuts, count], strict=True):
        part = rows[start:end]
        # A batch never spans a seq hole: the reader's batches hold contiguous seq.
        run_start = 0
        for i in range(1, len(part)):
            if part[i][0] != part[i - 1][0] + 1:
                batches.append(batch_of(part[run_start:i]))
                run_start = i
        batches.append(batch_of(part[run_start:]))
    return rows, batches


def random_tree_combine(parts, rng):
    """Combine in a random order and a random tree shape."""
    items = [Combined.of(p) for p in parts]
    rng.shuffle(items)
    while len(items) > 1:
        i = rng.randrange(len(items) - 1)
        a, b = items[i], items[i + 1]
        items[i : i + 2] = [combine(a, b) if rng.random() < 0.5 else combine(b, a)]
    return items[0] if items else Combined()


def summary_of(combined, rejects=None):
    return build_summary(
        combined, gateway_id="gw", source="test", line_format="csv-seq", rejects=rejects
    )


@settings(max_examples=80, deadline=None)
@given(sessions(), st.randoms(use_true_random=False))
def test_any_split_and_order_of_combining_gives_the_same_result(session, rng):
    _, batches = session
    in_order = combine_all(batches)
    shuffled = random_tree_combine(batches, rng)
    assert shuffled == in_order
    assert summary_of(shuffled) == summary_of(in_order)
    assert overview(shuffled) == overview(in_order)
    assert rate_series(shuffled) == rate_series(in_order)
    # Groups combined first (as workers might), then the groups: still the same.
    groups = [combine_all(batches[i : i + 3]) for i in range(0, len(batches), 3)]
    rng.shuffle(groups)
    assert combine_all(groups) == in_order


@settings(max_examples=80, deadline=None)
@given(sessions())
def test_statistics_are_exact_whatever_the_batches(session):
    rows, batches = session
    combined = combine_all(batches)
    for channel in CHANNELS:
        values = [Fraction(r[3][channel]) for r in rows]
        stats = combined.stats[channel]
        assert stats == ChannelStats.of_values(values)
        assert stats.count == len(values)
        assert stats.mean == float(statistics.mean(values))
        if len(values) > 1:
            assert stats.variance == statistics.variance(values)  # exact: Fractions
            assert stats.std == pytest.approx(statistics.stdev(values), rel=1e-15)
        assert (stats.low, stats.high) == (min(values), max(values))


def naive_gaps(rows):
    """Device gaps and resets by scanning every row: (first, last, seq) and seqs of resets."""
    gaps, resets = [], []
    for previous, row in zip(rows, rows[1:], strict=False):
        if row[0] != previous[0] + 1:
            continue  # rows in between are missing: counters not comparable
        if row[1] > previous[1] + 1:
            gaps.append((previous[1] + 1, row[1] - 1, row[0]))
        elif row[1] <= previous[1]:
            resets.append(row[0])
    return gaps, resets


def naive_holes(rows):
    return [
        (previous[0] + 1, row[0] - 1)
        for previous, row in zip(rows, rows[1:], strict=False)
        if row[0] != previous[0] + 1
    ]


@settings(max_examples=100, deadline=None)
@given(sessions())
def test_gaps_from_edges_equal_a_scan_of_every_row(session):
    rows, batches = session
    gaps = find_gaps(batches)
    device, resets = naive_gaps(rows)
    assert [(g.first, g.last, g.seq) for g in gaps.device] == device
    assert [j.seq for j in gaps.resets] == resets
    assert [(g.first, g.last) for g in gaps.seq] == naive_holes(rows)
    assert gaps.overlaps == []


def rows_from(pairs, at=100.0):
    return [(s, n, at + s / 10, {c: "1.0" for c in CHANNELS}) for s, n in pairs]


def test_gaps_name_their_place_and_what_the_quarantine_explains():
    first = batch_of(rows_from([(0, 10), (1, 11), (2, 15)]))  # 12-14 missing inside
    second = batch_of(rows_from([(3, 16), (4, 20)]))  # 17-19 missing inside
    third = batch_of(rows_from([(8, 30), (9, 2)]))  # seq 5-7 missing, then a reset
    gaps = find_gaps([third, first, second], rejected_counters=[13, 17, 18, 99])
    assert [(g.first, g.last, g.count, g.seq, g.rejected) for g in gaps.device] == [
        (12, 14, 3, 2, 1),
        (17, 19, 3, 4, 2),
    ]
    assert [(g.first, g.last, g.count, g.at) for g in gaps.seq] == [(5, 7, 3, 100.4)]
    assert [(j.seq, j.before, j.after) for j in gaps.resets] == [(9, 30, 2)]


def test_a_counter_jump_between_contiguous_batches_is_a_gap():
    gaps = find_gaps([batch_of(rows_from([(0, 0), (1, 1)])), batch_of(rows_from([(2, 7), (3, 8)]))])
    assert [(g.first, g.last, g.seq, g.rejected) for g in gaps.device] == [(2, 6, 2, None)]


def test_overlapping_batches_are_reported_not_counted_as_gaps():
    a = batch_of(rows_from([(0, 0), (1, 1), (2, 2)]), name="a")
    b = batch_of(rows_from([(2, 2), (3, 3)]), name="b")
    gaps = find_gaps([b, a])
    assert [(o.first, o.last, o.batches) for o in gaps.overlaps] == [(2, 2, ("a", "b"))]
    assert gaps.device == [] and gaps.seq == []


def test_the_summary_says_what_is_unknown_without_the_quarantine():
    combined = combine_all([batch_of(rows_from([(0, 0), (1, 1), (2, 5)]))])
    summary = summary_of(combined)
    assert summary["rejects"] == {"known": False, "note": UNKNOWN_REJECTS}
    assert summary["gaps"]["device_rejected"] is None
    assert summary["gaps"]["device"][0]["rejected"] is None
    known = summary_of(combined, Rejects({"field_count": 2, "utf8": 1}, (3,), (100.1,)))
    assert known["rejects"] == {
        "known": True,
        "total": 3,
        "by_reason": {"field_count": 2, "utf8": 1},
        "recovered_tails": 0,
    }
    assert known["gaps"]["device_rejected"] == 1
    assert "3 device samples missing (1 jumps, 1 of them rejected)" in format_summary(known)


def test_the_summary_of_a_simple_session():
    rows = [(s, s, 1_700_000_000.0 + s / 100, {"ch0": f"{s}.5", "ch1": "-2"}) for s in range(101)]
    summary = summary_of(
        combine_all([batch_of(rows[:50]), batch_of(rows[50:])]),
    )
    assert summary["rows"] == 101 and summary["batches"] == 2
    assert (summary["seq_first"], summary["seq_last"]) == (0, 100)
    assert summary["duration_seconds"] == pytest.approx(1.0)
    assert summary["rate_hz"] == pytest.approx(101.0)
    assert summary["start"] == "2023-11-14T22:13:20.000000+00:00"
    assert summary["gaps"]["device_missing"] == 0 and summary["gaps"]["seq_missing"] == 0
    assert summary["channels"]["ch0"] == {
        "count": 101,
        "min": 0.5,
        "max": 100.5,
        "mean": 50.5,
        "std": statistics.stdev([s + 0.5 for s in range(101)]),
        "non_numeric": 0,
    }
    assert summary["channels"]["ch1"]["std"] == 0.0


def test_unreadable_batches_are_listed_and_left_out():
    good = batch_of(rows_from([(0, 0), (1, 1)]))
    bad = BatchResult("2024/05/01/x.csv.gz", problem="not gzip: bad magic")
    summary = summary_of(combine_all([bad, good]))
    assert summary["unreadable_batches"] == [
        {"batch": "2024/05/01/x.csv.gz", "problem": "not gzip: bad magic"}
    ]
    assert summary["rows"] == 2


def test_the_overview_keeps_every_extreme_and_breaks_at_holes():
    rows = [(s, s, 100.0 + s, {"ch0": "0", "ch1": "0"}) for s in range(40)]
    rows[17] = (17, 17, 117.0, {"ch0": "-9.5", "ch1": "0"})
    later = [(s, s, 1000.0 + s, {"ch0": "7", "ch1": "0"}) for s in range(60, 70)]
    combined = combine_all([batch_of(rows[:20], buckets=5), batch_of(rows[20:]), batch_of(later)])
    envelope = overview(combined, max_points=8)["ch0"]
    assert min(envelope.low) == -9.5 and max(envelope.high) == 7.0
    assert len(envelope.times) <= 8
    (cut,) = envelope.breaks
    assert envelope.times[cut] == 1060.0


def test_rates_count_every_row_once():
    rows = [(s, s, 100.0 + s / 4, {"ch0": "1", "ch1": "1"}) for s in range(200)]
    combined = combine_all([batch_of(rows[i : i + 20], buckets=4) for i in range(0, 200, 20)])
    series = rate_series(combined, Rejects({"x": 2}, (), (100.0, 130.0)), max_bins=10)
    assert sum(r * series.width for r in series.rows_per_second) == pytest.approx(200)
    assert sum(r * series.width for r in series.rejects_per_second) == pytest.approx(2)


@pytest.mark.parametrize(
    ("batches", "expected"), [(0, 1), (1, 256), (16, 250), (4000, 1), (100_000, 1)]
)
def test_buckets_per_batch(batches, expected):
    assert buckets_per_batch(batches) == expected


def test_channel_stats_merge_is_exact_where_floats_are_not():
    # 0.1 + 0.2 + 0.3 in floats depends on the order; the exact sum does not.
    parts = [ChannelStats.of_values([text]) for text in ("0.1", "0.2", "0.3")]
    forward = parts[0] + parts[1] + parts[2]
    backward = parts[2] + parts[1] + parts[0]
    assert forward == backward and forward.total == Fraction(6, 10)
    assert (0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3)
    assert forward.mean == 0.2


def test_summary_days_are_iso():
    summary = build_summary(
        Combined(),
        gateway_id="gw",
        source="s",
        line_format="csv",
        since=dt.date(2024, 5, 1),
        until=dt.date(2024, 5, 2),
    )
    assert (summary["since"], summary["until"], summary["rows"]) == ("2024-05-01", "2024-05-02", 0)
    assert summary["gaps"]["device_missing"] is None
    assert "no device counter" in format_summary(summary)


def test_random_is_seeded():
    assert random_tree_combine([], random.Random(1)) == Combined()
