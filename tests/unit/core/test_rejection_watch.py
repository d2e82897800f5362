"""When the reader refuses much of a stream, it says so, with the reasons and a hint."""

from gateway.core.codec import Reason, Rejection
from gateway.core.rejection_watch import Alert, Cleared, RejectionWatch, hint_for, suggest_format


def rejections(reason: Reason, lines: list[bytes]) -> list[Rejection]:
    return [Rejection(reason, "detail", line, len(line)) for line in lines]


T_VALUE = [b"%.3f,%.4f" % (n / 100, n * 0.5) for n in range(40)]


def test_a_refused_stream_alerts_once_then_again_after_the_repeat_interval():
    watch = RejectionWatch("csv-seq", repeat_seconds=300)
    for second in range(30):
        watch.observe(float(second), 0, rejections(Reason.BAD_COUNTER, T_VALUE[:2]))
    alert = watch.check(30.0)
    assert isinstance(alert, Alert)
    assert (alert.share, alert.rejected, alert.lines) == (1.0, 60, 60)
    assert alert.top_reasons == (("bad_counter", 60),)
    assert (
        alert.hint == "these lines look like csv, not csv-seq; set GATEWAY_LINE_FORMAT=csv or auto"
    )
    assert watch.check(31.0) is None  # said already
    for second in range(31, 340):
        watch.observe(float(second), 0, rejections(Reason.BAD_COUNTER, T_VALUE[:1]))
    again = watch.check(340.0)
    assert isinstance(again, Alert) and again.since == 30.0
    assert watch.active is again


def test_a_few_percent_of_noise_is_no_alert_and_a_recovery_clears_one():
    watch = RejectionWatch("csv-seq")
    for second in range(60):
        watch.observe(float(second), 99, rejections(Reason.INVALID_UTF8, [b"\xff\xfe"]))
    assert watch.check(60.0) is None  # 1 %
    for second in range(60, 70):
        watch.observe(float(second), 0, rejections(Reason.INVALID_UTF8, [b"\xff"] * 100))
    assert isinstance(watch.check(70.0), Alert)
    for second in range(70, 200):
        watch.observe(float(second), 100, [])
    cleared = watch.check(200.0)
    assert isinstance(cleared, Cleared) and cleared.share == 0.0
    assert cleared.lasted_seconds == 130.0 and watch.active is None


def test_too_few_lines_are_no_stream_to_judge():
    watch = RejectionWatch("csv-seq", min_lines=20)
    watch.observe(0.0, 0, rejections(Reason.EMPTY, [b""] * 19))
    assert watch.check(1.0) is None


def test_hints_name_the_likely_cause():
    assert suggest_format(T_VALUE[:8], "csv-seq") == "csv"
    assert suggest_format(T_VALUE[:8], "csv") is None
    garbled = {Reason.INVALID_UTF8: 5}
    assert "GATEWAY_BAUD" in hint_for("csv-seq", garbled, [b"\xff\x00"] * 8)
    assert "GATEWAY_MAX_LINE_BYTES" in hint_for("nmea0183", {Reason.TOO_LONG: 3}, [])
    assert "restart the reader to detect" in hint_for("auto", {Reason.MALFORMED: 9}, [b"x"])
