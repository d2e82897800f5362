"""History frames and CSV export from batches (gateway/core/history.py: pure)."""

import pytest

from gateway.core.history import BatchRows, Export, export_rows, history_frames
from gateway.core.stream_protocol import parse_message

COLUMNS = ("seq", "received_at", "n", "t", "a", "b")


def batch(first_seq: int, counters, rate=500.0, received_at=None) -> BatchRows:
    rows = []
    for offset, n in enumerate(counters):
        # the reader reads lines in chunks: 25 rows share a read time
        at = received_at if received_at is not None else 1_700_000_000 + (n - n % 25) / rate
        rows.append(b"%d,%.6f,%d,%.4f,%d,-1" % (first_seq + offset, at, n, n / rate, n % 7))
    return BatchRows(COLUMNS, rows, b"seq,received_at,n,t,a,b")


def test_the_span_before_the_live_edge_ends_where_the_live_view_begins():
    batches = [batch(0, range(0, 1000)), batch(1000, range(1000, 2000))]
    found = history_frames(reversed(batches), before_seq=1500, span=1.0, line_format="csv-seq")
    assert (found.first_seq, found.last_seq) == (1000, 1499)  # 1 s at 500/s, up to the joint
    seqs = [s for f in found.frames for s in range(f["seq"][0], f["seq"][1] + 1)]
    assert seqs == list(range(1000, 1500))
    assert found.exhausted is False  # older rows are kept, just not asked for
    for frame in found.frames:
        assert parse_message(__import__("json").dumps(frame)) == frame  # what live frames are


def test_a_long_span_is_bucketed_coarser_and_the_reader_s_device_gaps_are_there():
    rate = 50.0  # 20 minutes at 50 lines/s (bench.history measures an hour at 500/s)
    before = batch(0, range(0, 30_000), rate)
    after = batch(30_000, range(30_075, 60_000), rate)  # 75 lines lost at the unplug
    found = history_frames(
        [after, before], before_seq=10**9, span=1200.0, line_format="csv-seq", max_buckets=600
    )
    assert found.exhausted is True and found.rows == 60_000 - 75
    assert found.points_per_second == pytest.approx(600 / 1200)
    buckets = sum(len(f["t"]) for f in found.frames)
    assert 590 <= buckets <= 602
    gapped = [f for f in found.frames if "gap" in f]
    assert [f["gap"] for f in gapped] == [{"device_lines": 75}]
    assert gapped[0]["seq"][0] == 30_000


def test_a_device_restart_ends_the_span_there():
    batches = [batch(0, range(5000, 5500)), batch(500, range(0, 300))]  # counter and t restart
    found = history_frames(reversed(batches), before_seq=800, span=60, line_format="csv-seq")
    assert (found.first_seq, found.last_seq, found.exhausted) == (500, 799, False)


def test_the_span_starts_inside_a_batch_without_reading_older_ones():
    older = BatchRows(COLUMNS, [b"not,a,row"])  # never read: the span began in the next one
    newer = batch(100, range(100, 1100))  # 2 s at 500/s
    found = history_frames([newer, older], before_seq=10**9, span=1.0, line_format="csv-seq")
    assert (found.first_seq, found.last_seq, found.exhausted) == (599, 1099, False)


def test_a_torn_last_row_of_the_open_batch_is_left_out():
    open_batch = batch(0, range(10))
    open_batch.rows.append(b"10,1700000000.02")  # the reader is writing it
    found = history_frames([open_batch], before_seq=100, span=60, line_format="csv-seq")
    assert found.last_seq == 9


def test_nothing_before_the_first_row_is_an_empty_answer():
    found = history_frames([batch(0, range(10))], before_seq=0, span=60, line_format="csv-seq")
    assert found.frames == [] and found.first_seq is None and found.exhausted


def test_export_writes_one_header_and_the_rows_in_the_range_verbatim():
    batches = [batch(0, range(0, 500)), batch(500, range(500, 1000))]
    start, end = 1_700_000_000 + 0.5, 1_700_000_000 + 1.5  # rows 250..749
    export = Export()
    data = b"".join(export_rows(batches, start, end, export))
    lines = data.split(b"\n")
    assert lines[0] == b"seq,received_at,n,t,a,b" and lines[-1] == b""
    assert lines[1] == batches[0].rows[250] and lines[-2] == batches[1].rows[249]
    assert (export.rows, export.first_seq, export.last_seq, export.stopped) == (500, 250, 749, None)


def test_export_stops_where_the_columns_change_and_says_where():
    other = BatchRows(("seq", "received_at", "n", "t", "a"), [b"1000,1700000002.1,1,0.1,5"])
    export = Export()
    data = b"".join(export_rows([batch(0, range(1000)), other], 0, 2e9, export))
    assert data.count(b"\n") == 1001 and export.rows == 1000
    assert export.stopped == (
        "the columns changed at seq 1000 (n,t,a,b -> n,t,a); export again from there"
    )
