"""The ingest protocol's checks (gateway/core/stream_protocol.py is pure: no Django, no I/O)."""

import json

import pytest

from gateway.core import stream_protocol as protocol
from gateway.core.decimate import Decimator
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
