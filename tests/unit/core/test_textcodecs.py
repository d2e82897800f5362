"""delimited, keyvalue and raw: text kept verbatim, quoted in rows only where it must be."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.codec import Layout
from gateway.core.records import Reason, make_codec
from gateway.core.textcodecs import DelimitedCodec, KeyValueCodec, RawCodec

LF_DETAIL = (
    "line holds a line feed at byte 3; a row is one line: for a device that ends "
    "lines with LF or CR LF, set GATEWAY_LINE_TERMINATOR=lf"
)


def reasons(decoded):
    return [(r.reason, r.detail) for r in decoded.rejections]


def delimited(separator: bytes, count: int) -> DelimitedCodec:
    return DelimitedCodec().with_layout(Layout(count, separator))


# -- delimited ------------------------------------------------------------------------------


def test_european_semicolon_lines_keep_their_decimal_commas():
    codec = delimited(b";", 3)
    decoded = codec.decode([b"12:00:01;21,5;OK", b"12:00:02;-0,25;NOK"])
    assert decoded.records == [b'12:00:01,"21,5",OK', b'12:00:02,"-0,25",NOK']
    assert decoded.counters is None


@pytest.mark.parametrize(
    ("separator", "line", "record"),
    [
        (b",", b"2024-05-01T12:00:00Z, 21.5 ,OK", b"2024-05-01T12:00:00Z, 21.5 ,OK"),
        (b"\t", b"1.5\t21,5\tcaf\xc3\xa9", b'1.5,"21,5",caf\xc3\xa9'),
        (b" ", b"   1.5   21.5  OK ", b"1.5,21.5,OK"),  # runs of spaces; padding is no field
        (b";", b'a;say "hi";c', b'a,"say ""hi""",c'),
        (b";", b"a;b\rc;", b'a,"b\rc",'),
    ],
)
def test_fields_are_verbatim_text(separator, line, record):
    codec = delimited(separator, 3)
    assert codec.decode([line]).records == [record]
    assert codec.decode([line, line]).records == [record, record]


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        (b"", Reason.EMPTY, "empty line"),
        (b"a;b", Reason.FIELD_COUNT, "expected 3 fields separated by semicolons, got 2"),
        (b"a;b;c;d", Reason.FIELD_COUNT, "expected 3 fields separated by semicolons, got 4"),
        (b"a;\xff;c", Reason.INVALID_UTF8, "invalid UTF-8 at byte 2 of 5"),
        (b"a;b\nc;d", Reason.LINE_FEED, LF_DETAIL),
    ],
)
def test_delimited_rejections_say_why(line, reason, detail):
    codec = delimited(b";", 3)
    decoded = codec.decode([b"1;2;3", line, b"4;5;6"])
    assert decoded.records == [b"1,2,3", b"4,5,6"]
    assert reasons(decoded) == [(reason, detail)]


def test_a_line_fits_every_separator_that_splits_it_in_the_preferred_order():
    codec = DelimitedCodec()
    assert codec.layouts(b"12:00:01;21,5;OK") == (Layout(3, b";"), Layout(2, b","))
    assert codec.layouts(b"a\tb c") == (Layout(2, b"\t"), Layout(2, b" "))
    with pytest.raises(Exception, match="no field separator"):
        codec.layouts(b"single")


def test_a_configured_separator_and_count_need_no_learning():
    codec = make_codec("delimited", 2, delimiter="tab")
    assert not codec.learns
    assert codec.decode([b"a\tb"]).records == [b"a,b"]
    assert codec.shape().names == ("f0", "f1")
    named = make_codec("delimited", names=("when", "what"), delimiter="semicolon")
    assert named.shape().names == ("when", "what")


# -- keyvalue -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"temp:21.5,humidity:40.2",
        b"temp=21.5 humidity=40.2",
        b"temp:21.5\thumidity:40.2",
        b"temp:21.5, humidity:40.2",
        b"humidity:40.2,temp:21.5",  # same names, other order: put in column order
        b"temp:21.5,humidity:40.2,",
    ],
)
def test_arduino_plotter_lines(line):
    codec = KeyValueCodec()
    (layout,) = codec.layouts(b"temp:1,humidity:2")
    codec = codec.with_layout(layout)
    assert codec.shape().names == ("temp", "humidity")
    assert codec.decode([line]).records == [b"21.5,40.2"]
    assert codec.decode([line, line]).records == [b"21.5,40.2"] * 2


def test_values_are_verbatim():
    codec = make_codec("keyvalue", names=("status", "t"))
    assert codec.decode([b'status:"ok",t=12:00:01']).records == [b'"""ok""",12:00:01']
    assert codec.decode([b"status:,t:1"]).records == [b",1"]


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        (b"", Reason.EMPTY, "empty line"),
        (
            b"temp:1,hum:2",
            Reason.KEYS,
            "names temp, hum are not the learned ones (missing humidity; unexpected hum)",
        ),
        (b"temp:1", Reason.KEYS, "names temp are not the learned ones (missing humidity)"),
        (b"temp:1,21.5", Reason.MALFORMED, "'21.5' is not a name:value pair"),
        (b"temp:1,1x:2", Reason.MALFORMED, "'1x' is not a name"),
        (b"temp:1,temp:2", Reason.MALFORMED, "name 'temp' appears twice"),
        (b"temp:1,humidity:\xff", Reason.INVALID_UTF8, "invalid UTF-8 at byte 16 of 17"),
    ],
)
def test_keyvalue_rejections_say_why(line, reason, detail):
    codec = make_codec("keyvalue", names=("temp", "humidity"))
    assert reasons(codec.decode([line])) == [(reason, detail)]


# -- raw ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "record"),
    [
        (b"Booting v1.2 ...", b"Booting v1.2 ..."),
        (b"a,b", b'"a,b"'),
        (b'say "hi"', b'"say ""hi"""'),
        (b"tab\there", b"tab\there"),
        (b"caf\xc3\xa9", b"caf\xc3\xa9"),
        (b"", b""),
    ],
)
def test_raw_keeps_every_utf8_line_whole(line, record):
    codec = RawCodec()
    assert codec.shape().names == ("line",)
    assert codec.decode([line]).records == [record]
    assert codec.decode([line, b"x"]).records == [record, b"x"]


def test_raw_refuses_only_bad_utf8_and_line_feeds():
    decoded = RawCodec().decode([b"ok", b"\xff\xfe", b"CR\nLF"])
    assert decoded.records == [b"ok"]
    assert reasons(decoded) == [
        (Reason.INVALID_UTF8, "invalid UTF-8 at byte 0 of 2"),
        (
            Reason.LINE_FEED,
            "line holds a line feed at byte 2; a row is one line: for a device that ends "
            "lines with LF or CR LF, set GATEWAY_LINE_TERMINATOR=lf",
        ),
    ]


# -- the whole-read paths agree with the line-by-line paths ---------------------------------

TEXT_LINE = st.one_of(
    st.from_regex(rb"[a-z0-9 ,;.\t:=\"]{0,20}", fullmatch=True),
    st.binary(max_size=20),
)
CODECS = [
    delimited(b",", 3),
    delimited(b";", 3),
    delimited(b"\t", 2),
    delimited(b" ", 2),
    make_codec("keyvalue", names=("a", "b")),
    RawCodec(),
]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: f"{c.name}-{c.layout}")
@given(lines=st.lists(TEXT_LINE, max_size=20))
def test_whole_read_and_line_paths_agree(codec, lines):
    whole = codec.decode(lines)
    records, rejected = [], []
    for line in lines:
        one = codec.decode([line])
        records += one.records
        rejected += reasons(one)
    assert whole.records == records
    assert reasons(whole) == rejected
    assert all(b"\n" not in record for record in whole.records)
