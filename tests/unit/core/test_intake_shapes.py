"""Learning a shape from complete lines, holding lines meanwhile, and noticing a new one."""

import pytest

from gateway.core.codec import Reason, Shape
from gateway.core.framing import LineFramer
from gateway.core.intake import (
    CONFIRM_LINES,
    HOLD_LINES,
    TRANSITIONS,
    CounterReset,
    DeviceGap,
    FormatDetected,
    LineIntake,
    Phase,
    ShapeChanged,
    ShapeLearned,
    Step,
)
from gateway.core.records import make_codec
from tests.unit.core.feeding import Feeder


def csv_seq(first: int, count: int, channels: int = 1) -> bytes:
    values = b",0.5" * channels
    return b"".join(b"%d,%.6f%s\n" % (n, n / 1000, values) for n in range(first, first + count))


CSV_SEQ_3 = Shape("csv-seq", ("f0", "f1", "f2"), 0, 1)
CSV_SEQ_4 = Shape("csv-seq", ("f0", "f1", "f2", "f3"), 0, 1)


# -- learning ------------------------------------------------------------------------------


def test_lines_are_held_until_three_agree_then_kept_with_their_own_times():
    feeder = Feeder.open("csv-seq", fragment=b"0")  # aligned: the first line is whole
    assert feeder.feed(b",0.000000,0.5\n", at=1.0).runs == []
    assert feeder.feed(b"1,0.001000,0.5\n", at=2.0).runs == []
    assert feeder.intake.held_lines == 2
    feeder.feed(b"2,0.002000,0.5\n3,0.003000,0.5\n", at=3.0)
    assert feeder.intake.held_lines == 0
    assert [(row.received_at, row.record) for row in feeder.rows] == [
        (1.0, b"0,0.000000,0.5"),
        (2.0, b"1,0.001000,0.5"),
        (3.0, b"2,0.002000,0.5"),
        (3.0, b"3,0.003000,0.5"),
    ]
    assert {row.shape for row in feeder.rows} == {CSV_SEQ_3}
    assert feeder.shape_events == [ShapeLearned(CSV_SEQ_3, "3 of 3 lines have 3 fields")]
    assert feeder.rejections == []


def test_a_cut_first_line_never_sets_the_field_count():
    """The issue: csv-seq with the field count unset learned it from the tail of a line."""
    feeder = Feeder.open("csv-seq")
    feeder.feed(b"0.5000,1.0\n" + csv_seq(7, 5, channels=2), at=1.0)
    assert len(feeder.rows) == 5
    assert feeder.reasons == [
        (
            Reason.PARTIAL_FIRST_LINE,
            "first line after opening the port is incomplete (expected 4 fields, got 2)",
        )
    ]


def test_a_lone_integer_tail_is_counted_not_fatal():
    """The issue: ``5000\\n`` then csv-seq lines ended the reader (_fast_counters)."""
    for codec in ("csv-seq", "auto"):
        feeder = Feeder.open(codec)
        feeder.feed(b"5000\n" + csv_seq(5001, 20), at=1.0)
        feeder.flush(2.0)
        assert len(feeder.rows) == 20, codec
        assert [reason for reason, _ in feeder.reasons] == [Reason.PARTIAL_FIRST_LINE]


def test_a_configured_field_count_needs_no_learning():
    feeder = Feeder.open(make_codec("csv-seq", 3))
    feeder.feed(b"7,0.007000,1.0\n", at=1.0)
    assert feeder.records == [b"7,0.007000,1.0"]
    assert feeder.shape_events == []


def test_a_header_line_names_the_columns_and_is_no_row():
    feeder = Feeder.open("csv", fragment=b"t")
    feeder.feed(b",temp,humidity\n0.1,21.5,40\n0.2,21.6,41\n0.3,21.7,42\n", at=1.0)
    assert feeder.records == [b"0.1,21.5,40", b"0.2,21.6,41", b"0.3,21.7,42"]
    assert feeder.rows[0].shape.names == ("t", "temp", "humidity")
    assert feeder.reasons == [(Reason.HEADER, "header line: names the columns t, temp, humidity")]
    assert feeder.shape_events[0].evidence == (
        "3 of 4 lines have 3 fields; a header line names them: t, temp, humidity"
    )


def test_the_first_line_after_an_open_may_be_the_header_a_reset_device_prints():
    feeder = Feeder.open("delimited")
    feeder.feed(b"Zeit;Temperatur;Status\n12:00:01;21,5;OK\n12:00:02;21,6;OK\n12:00:03;21,7;OK\n")
    assert feeder.rows[0].shape.names == ("Zeit", "Temperatur", "Status")
    assert feeder.records == [b'12:00:01,"21,5",OK', b'12:00:02,"21,6",OK', b'12:00:03,"21,7",OK']


def test_lines_that_never_agree_are_decided_at_the_hold_limit():
    feeder = Feeder.open("csv", fragment=b"1", hold_lines=8)  # aligned: "1" + "1" is whole
    lines = [b"1", b"1,2", b"1,2,3", b"1,2,3,4"] * 2
    feeder.feed(b"\n".join(lines) + b"\n", at=1.0)
    assert feeder.shape_events == [
        ShapeLearned(Shape("csv", ("f0",), None, 0), "2 of 8 lines have 1 field")
    ]
    assert feeder.records == [b"11", b"1"]
    assert feeder.intake.held_lines == 1  # "1,2,3,4" may start a new shape
    feeder.flush(at=2.0)
    assert feeder.reasons == [
        (Reason.FIELD_COUNT, f"expected 1 fields, got {n}") for n in (2, 3, 4, 2, 3, 4)
    ]


def test_held_lines_never_exceed_the_limits():
    feeder = Feeder.open("csv", hold_lines=HOLD_LINES, hold_bytes=1000)
    for n in range(200):
        feeder.feed(b"x" * (n % 50) + b"\n", at=float(n))
        assert feeder.intake.held_lines < HOLD_LINES
        assert feeder.intake.held_bytes < 1000


def test_a_slow_device_is_decided_after_hold_seconds():
    feeder = Feeder.open("csv", fragment=b"0", hold_seconds=10.0)
    feeder.feed(b".1,21.5\n", at=100.0)
    feeder.feed(b"0.2,21.6\n", at=105.0)
    assert feeder.take(feeder.intake.release_overdue(109.9)).runs == []
    feeder.take(feeder.intake.release_overdue(110.0))
    assert [(row.received_at, row.record) for row in feeder.rows] == [
        (100.0, b"0.1,21.5"),
        (105.0, b"0.2,21.6"),
    ]


def test_a_clean_stop_releases_what_is_held():
    feeder = Feeder.open("csv-seq")
    feeder.feed(b"17,0.017000,0.5\n18,0.018000,0.5\n", at=1.0)
    assert feeder.rows == []
    feeder.flush(at=2.0)
    assert feeder.records == [b"17,0.017000,0.5", b"18,0.018000,0.5"]
    assert feeder.intake.held_lines == 0


def test_a_flush_with_only_the_first_line_uses_it():
    feeder = Feeder.open("csv-seq")
    feeder.feed(b"17,0.017000,0.5\n", at=1.0)
    feeder.flush(at=2.0)
    assert feeder.records == [b"17,0.017000,0.5"]


def test_a_flush_of_lines_no_layout_reads_rejects_each_for_its_reason():
    feeder = Feeder.open("csv-seq", fragment=b"x")
    feeder.feed(b",1\n1.5,2\n", at=1.0)
    feeder.flush(at=2.0)
    assert feeder.reasons == [
        (Reason.BAD_COUNTER, "counter 'x' is not a whole number"),
        (Reason.BAD_COUNTER, "counter '1.5' is not a whole number"),
    ]


# -- a new shape ---------------------------------------------------------------------------


def test_a_device_restarting_with_more_fields_changes_the_shape_after_three_lines():
    feeder = Feeder.open("csv-seq")
    feeder.feed(csv_seq(0, 10), at=1.0)
    feeder.feed(csv_seq(0, 2, channels=2), at=2.0)
    assert feeder.intake.held_lines == 2  # not yet three that agree
    feeder.feed(csv_seq(2, 5, channels=2), at=3.0)
    assert [row.shape for row in feeder.rows] == [CSV_SEQ_3] * 10 + [CSV_SEQ_4] * 7
    assert feeder.records[10] == b"0,0.000000,0.5,0.5"
    assert [row.received_at for row in feeder.rows[10:]] == [2.0, 2.0] + [3.0] * 5
    assert feeder.shape_events[-1] == ShapeChanged(
        CSV_SEQ_3, CSV_SEQ_4, "3 lines in a row have 4 fields"
    )
    assert feeder.counter_events == [CounterReset(0, 9, 0, run=0)]  # run 0 of that feed
    assert feeder.rejections == []


def test_a_new_header_names_the_new_shape():
    feeder = Feeder.open("delimited")
    feeder.feed(b"a;b\n1;2\n3;4\n5;6\n", at=1.0)
    feeder.feed(b"a;b;c\n1;2;3\n4;5;6\n7;8;9\n", at=2.0)
    assert [row.shape.names for row in feeder.rows] == [("a", "b")] * 3 + [("a", "b", "c")] * 3
    assert feeder.reasons == [
        (Reason.HEADER, "header line: names the columns a, b"),
        (Reason.HEADER, "header line: names the columns a, b, c"),
    ]
    assert feeder.shape_events[-1].evidence == (
        "3 lines in a row have 3 fields separated by semicolons; a header line names them: a, b, c"
    )


def test_a_repeated_header_is_no_row_and_no_new_shape():
    feeder = Feeder.open("csv")
    feeder.feed(b"t,v\n1,2\n3,4\n5,6\nt,v\n7,8\n", at=1.0)
    assert feeder.records == [b"1,2", b"3,4", b"5,6", b"7,8"]
    assert feeder.reasons[-1] == (Reason.HEADER, "header line repeated (the device restarted?)")
    assert len(feeder.shape_events) == 1


def test_lines_that_fit_neither_shape_stay_rejections():
    feeder = Feeder.open("csv-seq")
    feeder.feed(csv_seq(0, 5), at=1.0)
    feeder.feed(b"5,0.005\n6,0.006000,0.5\n7,0.0\n8,0.008000,0.5\n", at=2.0)  # truncated lines
    assert len(feeder.rows) == 7
    assert feeder.reasons == [
        (Reason.FIELD_COUNT, "expected 3 fields, got 2"),
        (Reason.FIELD_COUNT, "expected 3 fields, got 2"),
    ]
    assert feeder.counter_events == [DeviceGap(0, 4, 1), DeviceGap(1, 6, 1)]
    assert len(feeder.shape_events) == 1


def test_a_configured_shape_never_changes():
    feeder = Feeder.open(make_codec("csv-seq", 3))
    feeder.feed(csv_seq(0, 3) + csv_seq(0, 5, channels=2), at=1.0)
    assert len(feeder.rows) == 3
    assert [reason for reason, _ in feeder.reasons] == [Reason.FIELD_COUNT] * 5


def test_a_flush_rejects_lines_held_as_a_possible_new_shape():
    feeder = Feeder.open("csv-seq")
    feeder.feed(csv_seq(0, 5) + csv_seq(0, 2, channels=2), at=1.0)
    feeder.flush(at=2.0)
    assert len(feeder.rows) == 5
    assert [reason for reason, _ in feeder.reasons] == [Reason.FIELD_COUNT] * 2
    assert feeder.intake.phase is Phase.READING


def test_auto_follows_a_firmware_update_to_another_format():
    feeder = Feeder.open("auto")
    feeder.feed(b"".join(b"%d.5,21\n" % n for n in range(12)), at=1.0)
    feeder.feed(b"".join(b"temp:%d,hum:40\n" % n for n in range(5)), at=2.0)
    assert [e.format for e in feeder.of(FormatDetected)] == ["csv", "keyvalue"]
    assert feeder.of(ShapeChanged)[0].new == Shape("keyvalue", ("temp", "hum"))
    assert feeder.records[-5:] == [b"%d,40" % n for n in range(5)]
    assert feeder.rejections == []  # the first line (12 x "0.5,21") was whole


# -- numbers of any size --------------------------------------------------------------------


def test_a_counter_of_5000_digits_is_a_counted_rejection():
    feeder = Feeder.open(make_codec("csv-seq", 3), max_line_bytes=8192)
    feeder.feed(csv_seq(0, 2) + b"9" * 5000 + b",0.5,0.5\n" + csv_seq(2, 1), at=1.0)
    assert len(feeder.rows) == 3
    assert feeder.reasons == [(Reason.BAD_COUNTER, "counter has 5000 digits; at most 20 are read")]


def test_a_counter_of_5000_digits_while_learning_is_a_counted_rejection():
    feeder = Feeder.open("auto", max_line_bytes=8192)
    feeder.feed(b"9" * 5000 + b",0.5\n" + csv_seq(0, 10), at=1.0)
    feeder.flush(at=2.0)
    assert len(feeder.rows) == 10
    assert [reason for reason, _ in feeder.reasons] == [Reason.PARTIAL_FIRST_LINE]


# -- the state table ------------------------------------------------------------------------


def test_an_illegal_move_raises_and_leaves_the_phase():
    intake = LineIntake(LineFramer(), make_codec("csv-seq"))
    assert intake.phase is Phase.LEARNING
    with pytest.raises(RuntimeError, match="no move from learning on CONFIRMED"):
        intake._go(Step.CONFIRMED)
    assert intake.phase is Phase.LEARNING


def test_every_phase_can_return_to_reading():
    assert all(
        Phase.READING in moves.values() or phase is Phase.READING
        for phase, moves in TRANSITIONS.items()
    )
    assert CONFIRM_LINES == 3


def test_limits_are_checked():
    with pytest.raises(ValueError, match="need 1 <= confirm_lines <= hold_lines, got 5 and 4"):
        LineIntake(LineFramer(), make_codec("csv"), confirm_lines=5, hold_lines=4)


# -- the reader before shapes ---------------------------------------------------------------


def test_feed_without_a_time_stores_one_shape_and_rejects_a_new_one():
    intake = LineIntake(LineFramer(), make_codec("csv-seq"))
    intake.port_opened(b"0")
    first = intake.feed(b",0.0,0.5\n" + csv_seq(1, 5))
    assert len(first.records) == 6
    assert intake.codec.field_count == 3
    later = intake.feed(csv_seq(0, 4, channels=2))
    assert later.records == []
    assert [(r.reason, r.detail) for r in later.rejections] == [
        (
            Reason.FIELD_COUNT,
            "rows changed shape to csv-seq (f0, f1, f2, f3); "
            "this reader stores csv-seq (f0, f1, f2) until it restarts",
        )
    ] * 4
    assert intake.codec.field_count == 3  # what the reader named its columns from


def test_a_line_feed_inside_a_cr_terminated_line_never_splits_a_row():
    for line_format in ("raw", "csv", "delimited", "keyvalue", "nmea0183", "auto"):
        feeder = Feeder.open(line_format, fragment=b"a", terminator=b"\r")
        feeder.feed(b":1\r" + b"a:2\ra:3\nb:4\r" * 6, at=1.0)
        feeder.flush(2.0)
        assert all(b"\n" not in record for record in feeder.records), line_format
        assert len(feeder.records) + len(feeder.rejections) == 13, line_format


def test_a_lab_instrument_export_with_a_comment_and_a_quoted_header_under_auto():
    lines = [
        b"# Model 2700 export, firmware 1.2",
        '"Time [s]","Temp [\u00b0C]","Pressure, abs [hPa]"'.encode(),
        *[b"%.1f,%.2f,%.1f" % (n / 10, 21.5 + n / 100, 1013 - n / 10) for n in range(12)],
    ]
    feeder = Feeder.open("auto")
    feeder.feed(b"\r\n".join(lines) + b"\r\n", at=1.0)
    assert feeder.rows[0].shape.names == ("Time [s]", "Temp [\u00b0C]", "Pressure, abs [hPa]")
    assert feeder.records == lines[2:]
    assert sorted(reason for reason, _ in feeder.reasons) == [
        Reason.HEADER,
        Reason.PARTIAL_FIRST_LINE,
    ]


def test_an_arduino_plotter_stream_under_auto():
    lines = [b"temp:%d.5 humidity:4%d" % (20 + n % 3, n % 10) for n in range(10)]
    lines[6] = b"humidity:46 temp:20.5"  # the same names in another order
    feeder = Feeder.open("auto", fragment=b"t")
    feeder.feed(b"\n".join(lines)[1:] + b"\n", at=1.0)
    assert feeder.rows[0].shape == Shape("keyvalue", ("temp", "humidity"))
    assert feeder.records[6] == b"20.5,46"
    assert len(feeder.records) == 10
