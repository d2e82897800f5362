"""Line encoding: every format round-trips through the independent reference parser."""

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.line_formats import (
    FORMATS,
    LineEncoder,
    format_number,
    format_numbers,
    format_time,
    nmea_checksum,
)

from reference_receiver import DOC_EXAMPLES, NUMBER, parse_line

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
decimals = st.integers(min_value=0, max_value=9)
rates = st.floats(min_value=0.1, max_value=1e6)
sentences = st.from_regex(r"[A-Z0-9]{1,10}", fullmatch=True)


@given(value=finite, places=decimals)
def test_numbers_are_plain_decimal_text_that_rounds_to_the_value(value, places):
    text = format_number(value, places)
    assert re.fullmatch(NUMBER, text)
    assert text.count(".") == (1 if places else 0)
    assert abs(Decimal(text) - Decimal(value)) <= Decimal(5) * Decimal(10) ** (-places - 1)


@pytest.mark.parametrize(
    "value, places, text",
    [(-0.00001, 4, "0.0000"), (-0.0, 2, "0.00"), (-0.4, 0, "0"), (2.5, 0, "2"), (-1.5, 1, "-1.5")],
)
def test_values_that_round_to_zero_are_written_without_a_sign(value, places, text):
    assert format_number(value, places) == text


@given(values=st.lists(finite, max_size=8), places=decimals)
def test_the_fast_path_for_many_values_writes_what_format_number_writes(values, places):
    assert format_numbers(values, places) == tuple(
        format_number(v, places).encode() for v in values
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(value):
    message = f"cannot write {value!r} on the wire: numbers must be finite"
    with pytest.raises(ValueError) as error:
        format_number(value, 4)
    assert str(error.value) == message
    with pytest.raises(ValueError) as error:
        format_numbers([1.0, value], 4)
    assert str(error.value) == message


@given(n=st.integers(min_value=0, max_value=10**12), rate=rates)
def test_time_is_n_over_rate_with_six_decimals(n, rate):
    text = format_time(n, rate)
    assert re.fullmatch(r"\d+\.\d{6}", text)
    assert abs(Decimal(text) - Decimal(n / rate)) <= Decimal("0.0000005")


def test_the_examples_of_the_docs_are_encoded_byte_for_byte():
    channels = [b"0.1234", b"-0.5000"]
    for fmt, line in DOC_EXAMPLES.items():
        t = b"0.001000" if fmt == "csv" else b"0.017000"
        assert LineEncoder(fmt).encode(17, t, channels) == line


@given(
    fmt=st.sampled_from(FORMATS),
    n=st.integers(min_value=0, max_value=10**15),
    rate=rates,
    values=st.lists(finite, min_size=1, max_size=8),
    places=decimals,
    sentence=sentences,
)
def test_every_format_round_trips_through_the_reference_parser(
    fmt, n, rate, values, places, sentence
):
    t = format_time(n, rate)
    texts = [format_number(v, places) for v in values]
    line = LineEncoder(fmt, sentence).encode(n, t.encode(), [x.encode() for x in texts])
    row = parse_line(line, fmt, len(values), sentence)
    assert row.n == (None if fmt == "csv" else n)
    assert row.t == t
    assert list(row.channels) == texts


@given(body=st.binary(max_size=200))
def test_nmea_checksum_is_the_xor_of_the_body_in_two_upper_case_hex_digits(body):
    expected = 0
    for byte in body:
        expected ^= byte
    assert nmea_checksum(body) == f"{expected:02X}".encode()


def test_nmea_checksum_of_the_docs_example():
    assert nmea_checksum(b"FGDAT,17,0.017000,0.1234,-0.5000") == b"62"


def test_an_unknown_format_is_refused_with_the_list_of_formats():
    with pytest.raises(ValueError) as error:
        LineEncoder("xml")
    assert str(error.value) == "unknown line format 'xml' (formats: csv, csv-seq, json, nmea)"
