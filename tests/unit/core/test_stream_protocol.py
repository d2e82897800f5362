"""The ingest protocol's checks (gateway/core/stream_protocol.py is pure: no Django, no I/O)."""

import json
import math
import re
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core import stream_protocol as protocol
from gateway.core.codec import Shape
from gateway.core.decimate import Decimator, Drawing
from gateway.core.stream_protocol import ProtocolError, parse_message


def good_frame() -> dict:
    decimator = Decimator(1, points_per_second=100)
    decimator.add(7, [b"%d,%.6f,%d,-1.5" % (n, n / 1000, n) for n in range(7, 40)], 12.0)
    (frame,) = decimator.take_frames()
    return frame.as_message(sent_at=12.5)


def test_what_the_decimator_sends_is_what_the_site_accepts():
    message = good_frame()
    assert parse_message(json.dumps(message)) == message
    assert message["seq"] == [7, 39] and len(message["t"]) == 4


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"seq": [3]}, "frame: 'seq' must be [first, last] with 0 <= first <= last, got [3]"),
        ({"seq": [-1, 3]}, "frame: 'seq' must be [first, last]"),
        ({"samples": 40}, "frame: 40 samples in a seq range of 33"),
        ({"samples": 2}, "frame: 4 buckets but only 2 samples"),
        ({"sent_at": "now"}, "frame: 'sent_at' must be a finite number, got 'now'"),
        ({"extra": 1}, "frame: unknown extra"),
        ({"max": [[1, 2, 3, 4]]}, "frame: 'min' has 2 channels, 'max' has 1"),
        ({"min": [[1, 2, 3, "x"], [1, 2, 3, 4]]}, "frame: min[0] values must be a finite number"),
        ({"t": [], "samples": 0}, "frame: no buckets in 't' but values in 'min' or 'max'"),
        ({"gap": 750}, "frame: 'gap' must be an object, got int"),
        ({"gap": {"outage_seconds": 1.5}}, "frame: gap: missing device_lines"),
        ({"gap": {"device_lines": -1}}, "frame: gap: 'device_lines' must be a whole number >= 0"),
        ({"gap": {"device_lines": 0, "lost": 1}}, "frame: gap: unknown lost"),
        ({"gap": {"device_lines": 0, "outage_seconds": -2}}, "frame: gap 'outage_seconds' must"),
    ],
)
def test_a_bad_frame_is_refused_with_the_numbers(change, error):
    message = {**good_frame(), **change}
    with pytest.raises(ProtocolError) as raised:
        parse_message(json.dumps(message))
    assert str(raised.value).startswith(error)


def test_a_frame_after_a_device_gap_and_an_outage_says_so_and_is_accepted():
    decimator = Decimator(1, points_per_second=100)
    decimator.port_outage(1.5004)
    decimator.add(
        7, [b"%d,%.6f,%d,-1.5" % (n, n / 1000, n) for n in range(757, 760)], 12.0, [(0, 750)]
    )
    (frame,) = decimator.take_frames()
    message = frame.as_message(sent_at=12.5)
    assert message["gap"] == {"device_lines": 750, "outage_seconds": 1.5}
    assert parse_message(json.dumps(message)) == message


def typed_frame() -> dict:
    from gateway.core.codec import Shape
    from gateway.core.decimate import Drawing

    nmea = Shape("nmea0183", ("record_type", "fields"), record_type=True)
    decimator = Decimator(Drawing.of(nmea), points_per_second=1)
    decimator.add(0, [b'GPGSV,"3,1,10,23"', b'GPGSV,"3,2,10,"'], received_at=1.0)
    decimator.add(2, [b'GPGSV,"3,3,10,"'], received_at=2.0)
    (frame,) = decimator.take_frames()
    return frame.as_message(sent_at=3.0)


def test_a_frame_of_record_types_is_accepted_nulls_included():
    message = typed_frame()
    assert message["types"]["GPGSV"]["min"][3] == [23.0, None]
    assert parse_message(json.dumps(message)) == message


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"t": [1.0]}, "frame: buckets in both 't' and 'types'"),
        ({"types": []}, "frame: 'types' must be an object of at most 32 types"),
        ({"types": {"GPGSV": {"t": [1.0]}}}, "frame: types['GPGSV']: missing fields, max, min"),
        ({"samples": 1}, "frame: 2 buckets in 'types' for 1 samples"),
    ],
)
def test_a_bad_frame_of_record_types_is_refused_with_the_reason(change, error):
    with pytest.raises(ProtocolError) as raised:
        parse_message(json.dumps({**typed_frame(), **change}))
    assert str(raised.value).startswith(error)


def test_non_finite_numbers_are_not_json_here():
    with pytest.raises(ProtocolError, match="Infinity is not a number the protocol allows"):
        parse_message('{"type": "status", "at": Infinity, "status": {}}')


def test_hello_checks_the_protocol_version():
    with pytest.raises(ProtocolError, match=r"hello: protocol 2 is not supported \(this site"):
        parse_message('{"type": "hello", "protocol": 2, "gateway": "gw"}')
    assert parse_message('{"type": "hello", "protocol": 1, "gateway": "gw"}')["gateway"] == "gw"


def test_status_needs_an_object():
    with pytest.raises(ProtocolError, match="status: 'status' must be an object"):
        parse_message('{"type": "status", "at": 1, "status": []}')
    with pytest.raises(ProtocolError, match="status: missing at"):
        parse_message('{"type": "status", "status": {}}')


def test_deep_nesting_is_refused_before_parsing_with_the_limit():
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.parse_message("[" * 100_000)
    assert str(refused.value) == "arrays or objects nested deeper than 32 levels"
    assert protocol.nesting_depth_exceeds('{"a":' * 33 + "1" + "}" * 33)
    assert not protocol.nesting_depth_exceeds('{"a":' * 32 + "1" + "}" * 32)


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = '{"type": "status", "at": 1, "status": {"note": "' + "[{" * 100 + '\\\\"}}'
    assert not protocol.nesting_depth_exceeds(text)
    escaped_quote = '["\\"' + "[" * 40 + '"]'
    assert not protocol.nesting_depth_exceeds(escaped_quote)
    assert protocol.nesting_depth_exceeds('["\\\\"' + ", [" * 40)


# -- binary frames ---------------------------------------------------------------------------


def binary(head_change: dict | None = None, values: list[float] | None = None) -> bytes:
    """good_frame() as a binary message, its header or its numbers changed."""
    message = good_frame()
    head = {k: v for k, v in message.items() if k not in ("t", "min", "max")}
    head.update({"buckets": 4, "channels": 2, **(head_change or {})})
    numbers = values if values is not None else [*message["t"], *sum(message["min"], []),
                                                 *sum(message["max"], [])]  # fmt: skip
    text = json.dumps(head).encode()
    text += b" " * (-len(text) % 8)
    return (
        struct.pack("<4sI", b"FGF1", len(text)) + text + struct.pack(f"<{len(numbers)}d", *numbers)
    )


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.lists(st.floats(-1e300, 1e300), min_size=3, max_size=3)),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from([7, 500]),
)
def test_a_binary_frame_reads_back_as_its_json_message_and_is_accepted(rows, points_per_second):
    decimator = Decimator(1, points_per_second)
    t, records = 0, []
    for n, (step, values) in enumerate(rows):
        t += step
        records.append(b"%d,%.4f," % (n, t / 1000) + b",".join(b"%r" % v for v in values))
    decimator.add(0, records, received_at=5.0)
    (frame,) = decimator.take_frames()
    data = frame.as_binary(sent_at=6.0)
    assert data[:4] == b"FGF1" and (8 + struct.unpack_from("<I", data, 4)[0]) % 8 == 0
    assert protocol.decode_binary_frame(data) == frame.as_message(sent_at=6.0)
    head = protocol.check_binary_frame(data)
    assert (head["seq"], head["buckets"], head["channels"]) == (
        [0, len(rows) - 1],
        len(frame.times),
        3,
    )


def test_frames_without_buckets_of_their_own_have_no_binary_form():
    decimator = Decimator(
        Drawing.of(Shape("nmea0183", ("record_type", "fields"), record_type=True)), 1
    )
    decimator.add(0, [b'GPGGA,"123519,4807.038"'], received_at=1.0)
    (frame,) = decimator.take_frames()
    assert frame.as_binary(2.0) is None and frame.as_message(2.0)["types"]


def test_a_gap_travels_in_the_binary_header():
    decimator = Decimator(1, points_per_second=100)
    decimator.port_outage(2.25)
    decimator.add(3, [b"9,0.5,1.0"], 12.0, [(0, 6)])
    (frame,) = decimator.take_frames()
    decoded = protocol.decode_binary_frame(frame.as_binary(13.0))
    assert decoded["gap"] == {"device_lines": 6, "outage_seconds": 2.25}
    assert decoded == frame.as_message(13.0)


def test_finite_values_whose_sum_overflows_are_accepted():
    data = binary(values=[0.007, 0.008, 0.009, 0.010] + [1e308] * 16)
    assert protocol.decode_binary_frame(data)["max"][1] == [1e308] * 4


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"FGF1", "binary frame: 4 bytes is too short"),
        (b"FGF2" + binary()[4:], "binary frame: starts with b'FGF2', not b'FGF1'"),
        (binary()[:4] + struct.pack("<I", 12) + binary()[8:], "binary frame: a header of 12 bytes"),
        (binary()[:4] + struct.pack("<I", 4096) + binary()[8:], "binary frame: a header of 4096"),
        (b"FGF1" + struct.pack("<I", 8) + b"[1,2]   ", "binary frame: the header must be a frame"),
        (b"FGF1" + struct.pack("<I", 8) + b"{nope}  ", "binary frame: header is not JSON"),
        (
            b"FGF1" + struct.pack("<I", 8) + b"NaN     ",
            "not JSON: NaN is not a number the protocol allows",
        ),
        (binary({"types": {}}), "binary frame: unknown types"),
        (binary({"t": []}), "binary frame: unknown t"),
        (binary({"buckets": 0}), "binary frame: 0 buckets for 33 samples"),
        (binary({"buckets": 34}), "binary frame: 34 buckets for 33 samples"),
        (binary({"channels": 0}), "binary frame: 0 channels (1 to 64)"),
        (binary({"channels": 3}), r"binary frame: (\d+) bytes, 4 buckets x 3 channels make (?!\1)"),
        (binary()[:-8], r"binary frame: (\d+) bytes, 4 buckets x 2 channels make (?!\1)"),
        (binary({"samples": 40}), "frame: 40 samples in a seq range of 33"),
        (binary({"gap": {"lost": 1}}), "frame: gap: missing device_lines"),
        (binary(values=[0.0] * 19 + [math.inf]), "binary frame: values must be finite numbers"),
        (binary(values=[math.nan] + [0.0] * 19), "binary frame: values must be finite numbers"),
    ],
)
def test_a_bad_binary_frame_is_refused_with_the_numbers(data, error):
    with pytest.raises(ProtocolError) as raised:
        protocol.check_binary_frame(data)
    assert str(raised.value).startswith(error) or re.match(error, str(raised.value))
