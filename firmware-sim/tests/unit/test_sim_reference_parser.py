"""The reference receiver (reference_receiver.py) against docs/formats.md: the other tests
trust it because it accepts the documented examples and rejects near misses."""

import pathlib

import pytest

from reference_receiver import (
    DOC_EXAMPLES,
    MAX_LINE,
    Rejected,
    parse_line,
    parse_pairs,
    parse_row,
    parse_sentence,
    receive,
)


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


FORMATS_MD = pathlib.Path(__file__).parents[3] / "docs" / "formats.md"
# The examples of docs/formats.md's real-device dialects, as they appear there.
DIALECT_EXAMPLES = [
    ("nmea0183", "$GPGGA,101503.00,5232.41735,N,01323.07561,E,1,05,1.62,41.3,M,39.8,M,,*6A"),
    ("nmea0183", "$GPGSV,3,3,10,28,16,321,,30,55,247,26*73"),
    ("nmea0183", "!AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0*26"),
    ("keyvalue", "temp:21.53,humidity:40.12"),
    ("keyvalue", "ch0=0.1234 ch1=-0.5000"),
    ("keyvalue", "t:0.004000<TAB>ch0:0.1234<TAB>ch1:-0.5000"),
    ("delimited", "0.000000;0.9990;-0.0697"),
    ("delimited", "    0.004000      0.9432     -0.0362"),
]


@pytest.mark.parametrize("fmt, example", DIALECT_EXAMPLES)
def test_the_dialect_examples_of_the_docs_are_there_and_valid(fmt, example):
    assert example in FORMATS_MD.read_text()
    line = example.replace("<TAB>", "\t").encode()
    if fmt == "nmea0183":
        assert parse_sentence(line).fields
    elif fmt == "keyvalue":
        separator = "\t" if b"\t" in line else " " if b" " in line else ","
        assign = "=" if b"=" in line else ":"
        assert all(value is not None for _, value in parse_pairs(line, separator, assign))
    else:
        assert parse_row(line, ";" if b";" in line else " ", 3)
