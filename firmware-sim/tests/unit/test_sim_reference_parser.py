"""The reference receiver (reference_receiver.py) against docs/formats.md: the other tests
trust it because it accepts the documented examples and rejects near misses."""

import pytest

from reference_receiver import DOC_EXAMPLES, MAX_LINE, Rejected, parse_line, receive


@pytest.mark.parametrize("fmt", sorted(DOC_EXAMPLES))
def test_reference_parser_accepts_the_examples_of_the_docs(fmt):
    row = parse_line(DOC_EXAMPLES[fmt], fmt, 2)
    assert row.channels == ("0.1234", "-0.5000")
    assert row.n == (None if fmt == "csv" else 17)


@pytest.mark.parametrize(
    "fmt, line, reason",
    [
        ("csv-seq", b"17,0.017000,0.1234", "3 fields, expected 4"),
        ("csv-seq", b"017,0.017000,0.1234,-0.5000", "bad counter '017'"),
        ("csv-seq", b"17,0.017000,+0.1234,-0.5000", "not a number: '+0.1234'"),
        ("csv-seq", b"17,0.017000,1e3,-0.5000", "not a number: '1e3'"),
        ("csv-seq", b"17,0.017000,0.1\xff234,-0.5000", "invalid UTF-8"),
        ("csv", b"0.0010,0.1234,-0.5000", "bad time '0.0010'"),
        ("json", b'{"n": 17, "t": 0.017000, "ch": [0.1234,-0.5000]}', "not a json line"),
        ("nmea", b"$FGDAT,17,0.017000,0.1234,-0.5000*63", "bad checksum"),
        ("nmea", b"$FGDAT,17,0.017000,0.1234,-0.5000", "not an nmea sentence"),
        ("csv-seq", b"1," + b"0" * MAX_LINE, f"line of {MAX_LINE + 2} bytes"),
    ],
)
def test_reference_parser_rejects_near_misses(fmt, line, reason):
    with pytest.raises(Rejected) as error:
        parse_line(line, fmt, 2)
    assert str(error.value) == reason


def test_receive_splits_on_lf_and_strips_one_cr():
    stream = b"0,0.000000,1.0,2.0\r\n1,0.001000,1.0,2.0\ngarbage\n2,0.0"
    received = receive(stream, "csv-seq", 2)
    assert received.counters() == [0, 1]
    assert received.rejected == [(b"garbage", "1 fields, expected 4")]
    assert received.tail == b"2,0.0"
    assert received.missing(4) == [2, 3]
