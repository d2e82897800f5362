"""gateway.report.batch: one batch's bytes -> exact statistics, edges, buckets (pandas)."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.batchfile import column_names, format_rows, header_row
from gateway.core.report import ChannelStats, CounterJump, combine_all
from gateway.report.batch import summarize_batch

decimal_text = st.builds(
    lambda units, decimals: f"{Decimal(units).scaleb(-decimals):f}",
    st.integers(-(10**12), 10**12),
    st.integers(0, 6),
)


def batch_bytes(first_seq, records, names, received_at=b"1714525200.250000"):
    return header_row(names) + b"".join(format_rows(first_seq, received_at, records))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(decimal_text, decimal_text, st.integers(0, 3)), min_size=1, max_size=300),
    st.integers(0, 10**9),
    st.integers(1, 40),
)
def test_statistics_equal_the_exact_ones_of_the_text(values, first_seq, buckets):
    counters, counter = [], 5
    for _, _, step in values:
        counter += step  # 0: a reset-like repeat, 1: next, 2+: a jump
        counters.append(counter)
    records = [
        b"%d,%s,%s,%s" % (n, b"%.6f" % (n / 1000), a.encode(), b.encode())
        for n, (a, b, _) in zip(counters, values, strict=True)
    ]
    names = column_names(4, ["n", "t", "ch0", "ch1"])
    result = summarize_batch(batch_bytes(first_seq, records, names), "b.csv", "csv-seq", buckets)
    assert result.problem is None
    assert (result.first_seq, result.last_seq, result.rows) == (
        first_seq,
        first_seq + len(values) - 1,
        len(values),
    )
    assert result.channels == ("ch0", "ch1")
    assert result.stats == (
        ChannelStats.of_values(a for a, _, _ in values),
        ChannelStats.of_values(b for _, b, _ in values),
    )
    assert (result.first_counter, result.last_counter) == (counters[0], counters[-1])
    assert result.jumps == tuple(
        CounterJump(first_seq + i, counters[i - 1], counters[i], 1714525200.25)
        for i in range(1, len(values))
        if counters[i] != counters[i - 1] + 1
    )
    assert sum(b.rows for b in result.buckets) == len(values)
    assert len(result.buckets) == min(buckets, len(values))
    assert min(b.low[0] for b in result.buckets) == float(min(Fraction(a) for a, _, _ in values))
    assert max(b.high[1] for b in result.buckets) == float(max(Fraction(b) for _, b, _ in values))


def test_a_channel_split_over_batches_sums_to_the_whole():
    values = [f"{i * 0.37 - 20:.3f}" for i in range(1000)]
    names = column_names(3, ["n", "t", "v"])

    def records(start, end):
        return [b"%d,%.6f,%s" % (n, n / 100, values[n].encode()) for n in range(start, end)]

    whole = summarize_batch(batch_bytes(0, records(0, 1000), names), "w", "csv-seq", 8)
    parts = [
        summarize_batch(batch_bytes(s, records(s, e), names), f"p{s}", "csv-seq", 8)
        for s, e in ((0, 333), (333, 334), (334, 1000))
    ]
    assert combine_all(parts).stats["v"] == whole.stats[0]
    assert whole.device_rate == pytest.approx(100.0)


def test_csv_format_has_no_counter_and_times_from_t():
    names = column_names(2, ["t", "x"])
    records = [b"%.6f,%d" % (i / 250, i % 7) for i in range(500)]
    result = summarize_batch(batch_bytes(10, records, names), "b", "csv", 4)
    assert result.first_counter is None and result.jumps == ()
    assert result.device_rate == pytest.approx(250.0)
    assert result.stats[0] == ChannelStats.of_values(str(i % 7) for i in range(500))


def test_big_values_and_long_decimals_stay_exact():
    big = ["987654321.123456", "-987654321.654321", "123456789.000001"] * 200
    long = ["0.12345678901234567", "0.3333333333333333", "2.5"] * 200
    # Squares fit in int64, their sum does not: summed in pieces.
    wide = ["3000000.000", "-2999999.999", "1.5"] * 200
    records = [
        b"%d,%.6f,%s,%s,%s" % (n, n / 10, b.encode(), c.encode(), w.encode())
        for n, (b, c, w) in enumerate(zip(big, long, wide, strict=True))
    ]
    names = column_names(5, ["n", "t", "big", "long", "wide"])
    result = summarize_batch(batch_bytes(0, records, names), "b", "json", 3)
    assert result.stats[0] == ChannelStats.of_values(big)
    assert result.stats[2] == ChannelStats.of_values(wide)
    # More digits than a double holds: each value's shortest decimal that reads back the same.
    assert result.stats[1] == ChannelStats.of_values(repr(float(v)) for v in long)
    assert result.stats[1] != ChannelStats.of_values(long)


def test_text_fields_are_counted_not_averaged():
    names = column_names(4, ["n", "t", "v", "label"])
    records = [b"%d,%.6f,1.5,%s" % (n, n / 10, b"ok" if n % 3 else b"7") for n in range(9)]
    result = summarize_batch(batch_bytes(0, records, names), "b", "nmea", 2)
    label = result.stats[1]
    assert (label.count, label.non_numeric, label.low, label.high) == (3, 6, 7, 7)
    assert result.stats[0].mean == 1.5


@pytest.mark.parametrize(
    ("data", "expected", "problem"),
    [
        (b"a,b,c\n1,2,3\n", None, "header does not start with seq,received_at and a device field"),
        (b"seq,received_at,n,t,x\n", None, "no rows"),
        (
            b"seq,received_at,n,t,x\n0,1.0,0,0.0,1\n2,1.0,1,0.1,1\n",
            None,
            "seq is not contiguous from 0",
        ),
        (
            b"seq,received_at,n,t,x\n5,1.0,0,0.0,1\n6,1.0,1,0.1,1\n",
            (5, 7),
            "rows hold seq 5-6, the name says 5-7",
        ),
        (
            b"seq,received_at,n,t,x\n0,1.0,zero,0.0,1\n",
            None,
            "device counter n is not a whole number in every row",
        ),
        (
            b"seq,received_at,n\n0,1.0,0\n",
            None,
            "csv-seq rows need a device time field; header has ['n']",
        ),
    ],
)
def test_what_is_not_a_batch_is_named(data, expected, problem):
    result = summarize_batch(data, "bad.csv", "csv-seq", 4, expected)
    assert (result.name, result.problem, result.rows) == ("bad.csv", problem, 0)
