import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.batchfile import (
    check_batch,
    column_names,
    device_field,
    format_block,
    format_rows,
    header_columns,
    header_row,
    received_at_text,
)
from gateway.core.csvfields import join_fields


def make_batch(first, records, at=b"1700000000.000001", names=("f0", "f1")):
    return header_row(names) + b"".join(format_rows(first, at, records))


def test_rows_are_seq_time_then_the_device_fields():
    assert format_rows(5, b"1.500000", [b"a,b", b"c,d"]) == [
        b"5,1.500000,a,b\n",
        b"6,1.500000,c,d\n",
    ]
    assert header_row(column_names(2)) == b"seq,received_at,f0,f1\n"
    assert header_row(column_names(2, ["hr", "spo2"])) == b"seq,received_at,hr,spo2\n"


def test_configured_names_must_match_the_field_count():
    with pytest.raises(ValueError, match="3 field names configured but lines have 2 fields"):
        column_names(2, ["a", "b", "c"])
    with pytest.raises(ValueError, match="field name 'seq' is not usable"):
        column_names(1, ["seq"])


def test_check_reads_range_rows_and_times():
    data = make_batch(10, [b"1,2"] * 3, at=b"1700000000.500000")
    check = check_batch(data, expected_first_seq=10)
    assert check.ok
    assert (check.rows, check.first_seq, check.last_seq) == (3, 10, 12)
    assert check.good_bytes == len(data)
    assert check.earliest == check.latest == 1700000000.5


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        (b"13,1.0,1\n14,1.0,1,2\n", "row 4 has 3 fields, header has 4"),
        (b"13,1.0,1,2", "row 4 is incomplete (10 bytes, no newline)"),
        (b"14,1.0,1,2\n", "row 4 has seq 14, expected 13"),
        (b"x,1.0,1,2\n13,1.0,1,2\n", "row 4 has no valid seq and received_at"),
        (b"13,1.0,\xff,2\n", "row 4 is not valid UTF-8"),
    ],
)
def test_check_stops_at_the_first_bad_row(tail, problem):
    good = make_batch(10, [b"1,2"] * 3)
    check = check_batch(good + tail, expected_first_seq=10)
    assert check.problem == problem
    assert check.good_bytes == len(good)
    assert check.rows == 3


def test_check_needs_the_header():
    assert check_batch(b"").problem == "no header row"
    assert check_batch(b"a,b,c\n").problem == "header row does not start with seq,received_at"


@given(
    st.integers(0, 10**9),
    st.lists(st.from_regex(rb"-?\d{1,5},\d{1,3}", fullmatch=True), min_size=1, max_size=50),
    st.data(),
)
def test_any_cut_keeps_exactly_the_complete_rows(first, records, data):
    whole = make_batch(first, records)
    cut = data.draw(st.integers(0, len(whole)))
    check = check_batch(whole[:cut], expected_first_seq=first)
    complete = whole[:cut].count(b"\n") - 1 if cut else 0
    assert check.rows == max(0, complete)
    if check.rows:
        assert check.last_seq == first + check.rows - 1
        assert whole[: check.good_bytes].endswith(b"\n")


# -- quoted fields (text formats) -------------------------------------------------------------

NMEA_RECORDS = [
    b'GPGGA,"123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"',
    b"GPTXT,",
    b'PXYZ,"say ""hi"",1"',
]


def test_quoted_rows_are_checked_like_plain_ones():
    data = make_batch(7, NMEA_RECORDS, names=("record_type", "fields"))
    check = check_batch(data, expected_first_seq=7)
    assert check.ok, check.problem
    assert (check.rows, check.first_seq, check.last_seq) == (3, 7, 9)
    assert check.columns == ("seq", "received_at", "record_type", "fields")


def test_device_field_removes_quotes():
    rows = format_rows(7, b"1.5", NMEA_RECORDS)
    assert device_field(rows[0], 0) == b"GPGGA"
    assert device_field(rows[0], 1) == b"123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"
    assert device_field(rows[1], 1) == b""
    assert device_field(rows[2], 1) == b'say "hi",1'
    assert device_field(b"5,1.5,17,0.5\n", 0) == b"17"  # the plain fast path


def test_header_names_from_the_wire_are_quoted_where_they_must_be():
    header = header_row(["Temp, C", 'say "x"', "plain"])
    assert header == b'seq,received_at,"Temp, C","say ""x""",plain\n'
    assert header_columns(header[:-1]) == ("seq", "received_at", "Temp, C", 'say "x"', "plain")
    assert check_batch(header + b"0,1.5,1,2,3\n").columns[2] == "Temp, C"


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        (b'3,1.0,GPGGA,"1,2\n', "row 2 has a malformed quoted field at byte 12"),
        (b'3,1.0,GPGGA,"1,2"x\n', "row 2 has a malformed quoted field at byte 12"),
        (b'3,1.0,GPGGA,"1,2",3\n', "row 2 has 5 fields, header has 4"),
        (b'"3",1.0,GPGGA,x\n', "row 2 has no valid seq and received_at"),
        (b"3" * 21 + b",1.0,GPGGA,x\n", "row 2 has no valid seq and received_at"),
    ],
)
def test_misquoted_rows_stop_the_check(tail, problem):
    good = make_batch(2, [b'GPGGA,"1,2"'], names=("record_type", "fields"))
    check = check_batch(good + tail, expected_first_seq=2)
    assert check.problem == problem
    assert check.good_bytes == len(good)


TEXT_FIELD = st.binary(max_size=10).filter(lambda b: b"\n" not in b)


@given(st.integers(0, 10**6), st.lists(st.lists(TEXT_FIELD, min_size=2, max_size=2), max_size=30))
def test_any_text_records_round_trip_through_a_batch(first, rows):
    records = [join_fields(fields) for fields in rows]
    data = make_batch(first, records)
    check = check_batch(data, expected_first_seq=first)
    if any(b"\xff" in r or not _utf8(r) for r in records):
        return  # a batch holds UTF-8 only; the codecs refuse anything else
    assert check.ok, check.problem
    assert check.rows == len(rows)
    written = format_rows(first, b"1700000000.000001", records)
    assert [[device_field(row, 0), device_field(row, 1)] for row in written] == rows


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@given(
    st.integers(min_value=0, max_value=2**64),
    st.floats(min_value=0, max_value=4e9),
    st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=30),
)
def test_a_block_of_rows_is_the_rows_joined(first_seq, at, records):
    stamp = received_at_text(at)
    assert format_block(first_seq, stamp, records) == b"".join(
        format_rows(first_seq, stamp, records)
    )
