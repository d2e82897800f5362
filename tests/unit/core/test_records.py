import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.records import (
    CsvCodec,
    CsvSeqCodec,
    JsonCodec,
    NmeaCodec,
    Reason,
    leading_counter,
    make_codec,
)


def nmea(body: bytes) -> bytes:
    checksum = 0
    for byte in body:
        checksum ^= byte
    return b"$" + body + b"*%02X" % checksum


def reasons(decoded):
    return [(r.reason, r.detail) for r in decoded.rejections]


def test_csv_accepts_numbers_and_keeps_the_text_exactly():
    decoded = CsvCodec().decode([b"0.001000,-0.5000,12", b"0.002000,1.0,-3"])
    assert decoded.records == [b"0.001000,-0.5000,12", b"0.002000,1.0,-3"]
    assert decoded.counters is None
    assert decoded.rejections == []


def test_csv_learns_the_field_count_from_the_first_valid_line():
    codec = CsvCodec()
    decoded = codec.decode([b"x,1", b"1,2,3", b"4,5"])
    assert codec.field_count == 3
    assert decoded.records == [b"1,2,3"]
    assert reasons(decoded) == [
        (Reason.NOT_NUMERIC, "field 0 'x' is not a number"),
        (Reason.FIELD_COUNT, "expected 3 fields, got 2"),
    ]


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        (b"", Reason.EMPTY, "empty line"),
        (b"1,\xff,3", Reason.INVALID_UTF8, "invalid UTF-8 at byte 2 of 5"),
        (b"1,2", Reason.FIELD_COUNT, "expected 3 fields, got 2"),
        (b"1,2,3,4", Reason.FIELD_COUNT, "expected 3 fields, got 4"),
        (b"1,2e3,3", Reason.NOT_NUMERIC, "field 1 '2e3' is not a number"),
        (b"1, 2,3", Reason.NOT_NUMERIC, "field 1 ' 2' is not a number"),
        (b"1,+2,3", Reason.NOT_NUMERIC, "field 1 '+2' is not a number"),
        (b"1,2.,3", Reason.NOT_NUMERIC, "field 1 '2.' is not a number"),
    ],
)
def test_csv_rejections_say_why(line, reason, detail):
    decoded = CsvCodec(3).decode([b"1,2,3", line, b"4,5,6"])
    assert decoded.records == [b"1,2,3", b"4,5,6"]
    assert reasons(decoded) == [(reason, detail)]
    assert decoded.rejections[0].line == line


def test_csv_seq_reads_the_counter():
    decoded = CsvSeqCodec().decode([b"7,0.007000,1.5", b"8,0.008000,-1.5"])
    assert list(decoded.counters) == [7, 8]
    assert reasons(CsvSeqCodec(3).decode([b"07,1,2", b"-1,1,2", b"1.5,1,2"])) == [
        (Reason.BAD_COUNTER, "counter '07' is not a whole number"),
        (Reason.BAD_COUNTER, "counter '-1' is not a whole number"),
        (Reason.BAD_COUNTER, "counter '1.5' is not a whole number"),
    ]


def test_text_fields_when_numbers_are_not_required():
    codec = CsvCodec(3, numeric=False)
    decoded = codec.decode([b"OK,caf\xc3\xa9,1", b'a,"b",c', b"a,b\x07,c"])
    assert decoded.records == [b"OK,caf\xc3\xa9,1"]
    assert reasons(decoded) == [
        (Reason.TEXT_FIELD, "field 1 holds a quote or control character"),
        (Reason.TEXT_FIELD, "field 1 holds a quote or control character"),
    ]


def test_json_keeps_each_number_as_the_device_wrote_it():
    line = b'{"n": 17, "t": 0.017000, "ch": [0.1234, -0.5000]}'
    decoded = JsonCodec().decode([line])
    assert decoded.records == [b"17,0.017000,0.1234,-0.5000"]
    assert list(decoded.counters) == [17]


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        (b'{"n": 1, "t": 0.1', Reason.MALFORMED, "not JSON: Expecting ',' delimiter at column 18"),
        (
            b'{"t": 0.1, "n": 1, "ch": [1]}',
            Reason.MALFORMED,
            'expected an object with keys "n", "t", "ch"',
        ),
        (b'{"n": 1, "t": 0.1, "ch": 1}', Reason.MALFORMED, '"ch" is not an array'),
        (b'{"n": 1, "t": "0.1", "ch": [1]}', Reason.NOT_NUMERIC, "field 1 is not a number"),
        (b'{"n": 1, "t": 1e3, "ch": [1]}', Reason.NOT_NUMERIC, "field 1 '1e3' is not a number"),
        (
            b'{"n": 1.5, "t": 0.1, "ch": [1]}',
            Reason.BAD_COUNTER,
            "counter '1.5' is not a whole number",
        ),
        (b'{"n": 1, "t": 0.1, "ch": [1, 2]}', Reason.FIELD_COUNT, "expected 3 fields, got 4"),
    ],
)
def test_json_rejections_say_why(line, reason, detail):
    assert reasons(JsonCodec(3).decode([line])) == [(reason, detail)]


def test_nmea_checks_the_checksum_and_keeps_the_fields():
    good = nmea(b"FGDAT,17,0.017000,0.1234,-0.5000")
    assert good == b"$FGDAT,17,0.017000,0.1234,-0.5000*62"  # the example in docs/formats.md
    decoded = NmeaCodec().decode([good])
    assert decoded.records == [b"17,0.017000,0.1234,-0.5000"]
    assert list(decoded.counters) == [17]
    bad = good[:-2] + b"63"
    assert reasons(NmeaCodec().decode([bad])) == [
        (Reason.BAD_CHECKSUM, "checksum 63 does not match 62")
    ]


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        (b"FGDAT,1,2*00", "not a $NAME,...*HH sentence"),
        (b"$FGDAT,1,2", "not a $NAME,...*HH sentence"),
        (b"$FGDAT,1,2*5", "not a $NAME,...*HH sentence"),
        (b"$FGDAT,1,2*+5", "checksum '+5' is not hex"),
        (b"$FGDAT,1,2*g5", "checksum 'g5' is not hex"),
        (b"$FGDAT,1,2*5f", "checksum '5f' is not hex"),
    ],
)
def test_nmea_malformed_sentences(line, detail):
    assert reasons(NmeaCodec().decode([line])) == [(Reason.MALFORMED, detail)]


def test_nmea_sentence_filter():
    codec = NmeaCodec(sentence="FGDAT")
    assert reasons(codec.decode([nmea(b"OTHER,1,2")])) == [
        (Reason.MALFORMED, "sentence 'OTHER' is not FGDAT")
    ]
    with pytest.raises(ValueError, match="NMEA sentence name 'fg' is not 1-10 of A-Z, 0-9"):
        NmeaCodec(sentence="fg")


def test_unknown_format_is_refused_by_name():
    with pytest.raises(
        ValueError, match="unknown line format 'xml'; expected one of auto, csv, csv-seq, "
    ):
        make_codec("xml")


NUMBER = st.builds(
    lambda sign, whole, frac: f"{sign}{whole}{frac}",
    st.sampled_from(["", "-"]),
    st.integers(0, 10**6),
    st.sampled_from(["", ".5", ".000001", ".1234"]),
)
GOOD_ROW = st.builds(
    lambda n, values: ",".join([str(n), *values]).encode(),
    st.integers(0, 10**9),
    st.lists(NUMBER, min_size=3, max_size=3),
)
ANY_LINE = st.one_of(GOOD_ROW, GOOD_ROW, st.binary(max_size=30).filter(lambda b: b"\n" not in b))


@given(st.lists(ANY_LINE, max_size=40))
def test_fast_path_and_line_by_line_path_agree(lines):
    whole_read = CsvSeqCodec(4).decode(lines)
    one_by_one = CsvSeqCodec(4)
    records, counters, rejected = [], [], []
    for line in lines:
        decoded = one_by_one.decode([line])
        records += decoded.records
        counters += decoded.counters
        rejected += [(r.reason, r.detail, r.line) for r in decoded.rejections]
    assert whole_read.records == records
    assert list(whole_read.counters) == counters
    assert [(r.reason, r.detail, r.line) for r in whole_read.rejections] == rejected
    assert len(whole_read.records) + len(whole_read.rejections) == len(lines)


@given(st.integers(0, 10**12), st.lists(NUMBER, min_size=1, max_size=8))
def test_every_format_decodes_to_the_same_fields(n, values):
    t = "0.017000"
    fields = [str(n), t, *values]
    csv_seq = ",".join(fields).encode()
    as_json = f'{{"n": {n}, "t": {t}, "ch": [{", ".join(values)}]}}'.encode()
    assert json.loads(as_json)["n"] == n
    sentence = nmea(b"FGDAT," + csv_seq)
    expected = [csv_seq]
    assert CsvSeqCodec().decode([csv_seq]).records == expected
    assert JsonCodec().decode([as_json]).records == expected
    assert NmeaCodec().decode([sentence]).records == expected
    assert CsvCodec().decode([",".join([t, *values]).encode()]).records == [
        ",".join([t, *values]).encode()
    ]


@pytest.mark.parametrize(
    ("codec", "line"),
    [
        (CsvSeqCodec(3), b"9" * 5000 + b",0.1,1"),
        (JsonCodec(3), b'{"n": ' + b"9" * 5000 + b', "t": 0.1, "ch": [1]}'),
        (NmeaCodec(3), nmea(b"FGDAT," + b"9" * 5000 + b",0.1,1")),
    ],
)
def test_a_counter_of_any_length_is_a_counted_rejection_not_an_exception(codec, line):
    assert reasons(codec.decode([line])) == [
        (Reason.BAD_COUNTER, "counter has 5000 digits; at most 20 are read")
    ]


def test_a_counter_of_20_digits_is_read():
    top = b"18446744073709551615"  # 2**64 - 1
    assert list(CsvSeqCodec(3).decode([top + b",0.1,1"]).counters) == [2**64 - 1]
    assert list(CsvSeqCodec(3).decode([top + b",0.1,1"] * 2).counters) == [2**64 - 1] * 2


def test_leading_counters_of_any_length_are_no_exception():
    assert leading_counter("csv-seq", b"17,x") == 17
    assert leading_counter("csv-seq", b"9" * 5000 + b",x") is None
    assert leading_counter("json", b'{"n": 17, "t": 1}') == 17
    assert leading_counter("raw", b"17,x") is None
    assert leading_counter("xml", b"17,x") is None


def test_a_lone_number_cannot_teach_csv_seq_one_field():
    """``5000`` alone once taught the codec 1 field and crashed the whole-read path."""
    codec = CsvSeqCodec()
    decoded = codec.decode([b"5000", b"5001,0.1,1", b"5002,0.2,1"])
    assert reasons(decoded) == [(Reason.FIELD_COUNT, "expected at least 2 fields, got 1")]
    assert codec.decode([b"5003,0.3,1", b"5004,0.4,1"]).records == [
        b"5003,0.3,1",
        b"5004,0.4,1",
    ]
