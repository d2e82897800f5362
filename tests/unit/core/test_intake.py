import itertools

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.framing import LineFramer
from gateway.core.intake import CounterReset, CounterTracker, DeviceGap, LineIntake
from gateway.core.records import CsvSeqCodec, Reason


def make_intake(max_line_bytes=4096):
    return LineIntake(LineFramer(b"\n", max_line_bytes), CsvSeqCodec(3))


def test_counter_jumps_are_gaps_with_place_and_size():
    tracker = CounterTracker()
    assert tracker.observe([0, 1, 2]) == []
    assert tracker.observe([3, 7, 8, 10]) == [DeviceGap(1, 3, 3), DeviceGap(3, 8, 1)]
    assert tracker.observe([11]) == []
    assert tracker.observe([13]) == [DeviceGap(0, 11, 1)]


def test_counter_going_back_is_a_reset_not_a_gap():
    tracker = CounterTracker(last=500)
    assert tracker.observe([0, 1]) == [CounterReset(0, 500, 0)]
    assert tracker.last == 1


@given(st.lists(st.integers(0, 50), max_size=60))
def test_gaps_account_for_every_missing_counter(counters):
    tracker = CounterTracker()
    events = []
    for start in range(0, len(counters), 7):
        events += tracker.observe(counters[start : start + 7])
    missing = sum(e.missing for e in events if isinstance(e, DeviceGap))
    expected = sum(b - a - 1 for a, b in itertools.pairwise(counters) if b > a + 1)
    assert missing == expected
    assert sum(isinstance(e, CounterReset) for e in events) == sum(
        b <= a for a, b in itertools.pairwise(counters)
    )


def test_partial_first_line_after_open_is_counted_as_such():
    intake = make_intake()
    intake.port_opened()
    result = intake.feed(b"0.5000,1.0\n7,0.007000,1.0\n8,0.008000,2.0\n")
    assert result.records == [b"7,0.007000,1.0", b"8,0.008000,2.0"]
    assert [(r.reason, r.detail) for r in result.rejections] == [
        (
            Reason.PARTIAL_FIRST_LINE,
            "first line after opening the port is incomplete (expected 3 fields, got 2)",
        )
    ]


def test_a_complete_first_line_is_kept():
    intake = make_intake()
    intake.port_opened()
    assert intake.feed(b"7,0.007000,1.0\n").records == [b"7,0.007000,1.0"]


def test_only_the_first_line_gets_the_benefit_of_the_doubt():
    intake = make_intake()
    intake.port_opened()
    intake.feed(b"1,0.001000,1.0\n")
    result = intake.feed(b"0.5000,1.0\n")
    assert [r.reason for r in result.rejections] == [Reason.FIELD_COUNT]


def test_a_clean_stop_fragment_completes_the_first_line():
    intake = make_intake()
    intake.port_opened(fragment=b"7,0.00")
    result = intake.feed(b"7000,1.0\n")
    assert result.records == [b"7,0.007000,1.0"]
    assert result.rejections == []


def test_port_loss_drops_the_unfinished_line():
    intake = make_intake()
    intake.port_opened()
    intake.feed(b"1,0.001000,1.0\n2,0.00")
    assert intake.port_lost() == len(b"2,0.00")
    intake.port_opened()
    result = intake.feed(b"3,0.003000,1.0\n")
    assert result.records == [b"3,0.003000,1.0"]
    assert result.events == [DeviceGap(0, 1, 1)]


def test_overlong_lines_are_rejections_with_numbers():
    intake = make_intake(max_line_bytes=20)
    intake.port_opened(fragment=b"0,0.0000")  # a clean stop left this: aligned
    result = intake.feed(b"00,1.0\n1," + b"9" * 30 + b"\n2,0.002000,1.0\n")
    assert result.records == [b"0,0.000000,1.0", b"2,0.002000,1.0"]
    assert [(r.reason, r.detail, r.length) for r in result.rejections] == [
        (Reason.TOO_LONG, "line exceeds 20 bytes (32 read); skipped to next terminator", 32)
    ]
    assert result.events == [DeviceGap(1, 0, 1)]


def test_a_tail_cut_inside_the_counter_is_caught_by_the_counter():
    """After a crash the buffer may start mid-counter: '21,...' is what is left of '421,...'."""
    intake = LineIntake(LineFramer(b"\n"), CsvSeqCodec(3), CounterTracker(last=420))
    intake.port_opened()
    result = intake.feed(b"21,0.421000,1.0\n422,0.422000,1.0\n")
    assert result.records == [b"422,0.422000,1.0"]
    assert [(r.reason, r.detail) for r in result.rejections] == [
        (
            Reason.PARTIAL_FIRST_LINE,
            "first line after opening the port is incomplete (counter 21 does not follow 420)",
        )
    ]
    assert result.events == [DeviceGap(0, 420, 1)]
