"""What ``auto`` picks from complete lines, and the evidence it gives for the log."""

import pytest

from gateway.core.codec import Layout
from gateway.core.detect import DETECT_LINES, counts_up, detect, learn_layout
from gateway.core.records import make_codec


def nmea(body: bytes) -> bytes:
    value = 0
    for byte in body:
        value ^= byte
    return b"$" + body + b"*%02X" % value


def run_detect(lines, final=False, **options):
    auto = make_codec("auto", **options)
    detection = detect(lines, [auto.classify(line) for line in lines], auto, final=final)
    return detection


GPS = [
    nmea(b"GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
    nmea(b"GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1"),
    nmea(b"GPGSV,2,1,08,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45"),
    nmea(b"GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"),
]

CASES = [
    (
        "t,value",
        [b"%.3f,%.1f" % (n / 1000, 20 + n % 3) for n in range(1, 9)],
        "csv",
        Layout(2),
        "8 of 8 lines are comma-separated numbers with 2 fields; no counter: the first field "
        "0.001, 0.002, 0.003, ... is not a whole number",
    ),
    (
        "constant first field",
        [b"5,%d" % n for n in range(8)],
        "csv",
        Layout(2),
        "8 of 8 lines are comma-separated numbers with 2 fields; no counter: the first field "
        "5, 5, 5, ... does not count up by one",
    ),
    (
        "one number per line",
        [b"%d.5" % n for n in range(8)],
        "csv",
        Layout(1),
        "8 of 8 lines are comma-separated numbers with 1 field; one number per line",
    ),
    (
        "csv-seq",
        [b"%d,%.6f,0.5" % (n, n / 1000) for n in range(17, 25)],
        "csv-seq",
        Layout(3),
        "8 of 8 lines are comma-separated numbers with 3 fields; the first field "
        "(17, 18, 19, ...) counts up by one: a device counter",
    ),
    (
        "the simulator's nmea",
        [nmea(b"FGDAT,%d,0.5,1" % n) for n in range(8)],
        "nmea",
        Layout(3),
        "8 of 8 lines are $FGDAT sentences with valid checksums and 3 fields of numbers; "
        "the first (0, 1, 2, ...) counts up by one: a device counter",
    ),
    (
        "a GPS",
        GPS * 2,
        "nmea0183",
        Layout(2),
        "8 of 8 lines are NMEA 0183 sentences (GPGGA, GPGSA, GPGSV, GPRMC) with valid checksums",
    ),
    (
        "json",
        [b'{"n": %d, "t": 0.5, "ch": [1, 2]}' % n for n in range(8)],
        "json",
        Layout(4),
        '8 of 8 lines are JSON objects with "n", "t" and "ch" (4 fields)',
    ),
    (
        "Arduino plotter",
        [b"temp:%d.5,humidity:40" % n for n in range(8)],
        "keyvalue",
        Layout(2, b"", (b"temp", b"humidity")),
        "8 of 8 lines are name:value pairs with the names temp, humidity",
    ),
    (
        "European ;",
        [b"12:00:%02d;21,%d;OK" % (n, n) for n in range(8)],
        "delimited",
        Layout(3, b";"),
        "8 of 8 lines have 3 fields separated by semicolons",
    ),
    (
        "space-aligned columns",
        [b"  %3d   %6.2f" % (n, n / 3) for n in range(8)],
        "delimited",
        Layout(2, b" "),
        "8 of 8 lines have 2 fields separated by runs of spaces",
    ),
]


@pytest.mark.parametrize(("name", "lines", "format", "layout", "evidence"), CASES)
def test_auto_picks_the_format_and_says_why(name, lines, format, layout, evidence):
    detection = run_detect(lines)
    assert (detection.codec.name, detection.codec.layout) == (format, layout)
    assert detection.evidence == evidence
    assert detection.lines_examined == DETECT_LINES


def test_auto_waits_for_enough_lines_unless_it_must_decide():
    lines = [b"1.5,2", b"2.5,3"]
    assert run_detect(lines) is None
    assert run_detect(lines, final=True).evidence == (
        "2 of 2 lines are comma-separated numbers with 2 fields; no counter: the first field "
        "1.5, 2.5 is not a whole number"
    )


def test_a_boot_banner_does_not_push_a_stream_into_raw():
    lines = [b"ESP-ROM:esp32s3-20210327", b"Sensor v2 ready", *[b"%d.0,1.5" % n for n in range(6)]]
    detection = run_detect(lines)
    assert detection.codec.name == "csv"
    assert detection.evidence.startswith("6 of 8 lines are comma-separated numbers")


def test_nothing_fits_means_wait_then_raw():
    lines = [b"Hello there", b"x", b"a;b", b"1,2,3", b"{}", b"k:v", b"$", b"..."]
    assert run_detect(lines) is None
    detection = run_detect(lines, final=True)
    assert detection.codec.name == "raw"
    assert detection.evidence == (
        "no format reads 6 of 8 lines (the closest, keyvalue, reads 1); "
        "each line is kept whole as one text field"
    )


def test_text_between_spaces_is_not_taken_for_columns():
    lines = [b"INFO pump %s now" % word for word in (b"on", b"off") * 4]
    assert run_detect(lines) is None  # space-separated words without a value column


def test_a_fixed_field_count_rules_out_other_counts():
    lines = [b"%d,%.6f,0.5" % (n, n / 1000) for n in range(8)]
    assert run_detect(lines, field_count=3).codec.name == "csv-seq"
    assert run_detect(lines, field_count=4) is None


def test_learning_a_layout_needs_agreeing_lines():
    three, four = (Layout(3),), (Layout(4),)
    assert learn_layout([four, three, (), three], confirm=3, final=False) is None
    assert learn_layout([four, three, (), three, three], confirm=3, final=False) == (Layout(3), 3)
    assert learn_layout([four, three], confirm=3, final=True) == (Layout(4), 1)
    assert learn_layout([(), ()], confirm=3, final=True) is None


@pytest.mark.parametrize(
    ("counters", "expected"),
    [([1, 2, 3], True), ([1, 2, 4, 5], True), ([1, 3, 5], False), ([3, 2, 1], False), ([7], False)],
)
def test_a_counter_counts_up_by_one_mostly(counters, expected):
    assert counts_up(counters) is expected
