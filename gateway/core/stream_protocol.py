"""The stream protocol (docs/stream-protocol.md): its version, close codes and the checks of
gateway messages, shared by the reader (which speaks it) and the site (which checks it). No I/O,
no Django.

``parse_message(text)`` returns the message as a dict or raises :class:`ProtocolError` whose
text says what was wrong, with the numbers; the consumer closes the socket with it.
``check_binary_frame(data)`` does the same for a frame sent as a binary message
(``encode_binary_frame``; ``decode_binary_frame`` reads one back as the JSON frame's dict).
"""

from __future__ import annotations

import json
import math
import re
import struct
from array import array

PROTOCOL_VERSION = 1
MAX_CHANNELS = 64
MAX_BUCKETS = 20_000  # per frame: 40 s of 500 buckets/s, far above one frame's worth
# Security limit: arrays and objects nested deeper are refused before json.loads sees them
# (a frame needs 3 levels, a status about 6; `[` x 100000 would raise RecursionError inside it).
MAX_DEPTH = 32

# Close codes (4000-4999 is the range RFC 6455 leaves to applications).
CLOSE_MALFORMED = 4400
CLOSE_NO_TOKEN = 4401
CLOSE_WRONG_TOKEN = 4403
CLOSE_UNKNOWN_GATEWAY = 4404
CLOSE_REVOKED = 4410
CLOSE_TOO_LARGE = 4413
# Too many refused handshakes from this client address lately: refused before any token check.
CLOSE_TOO_MANY_FAILURES = 4429
# Viewer sockets (browsers): no session. Its own code, so a page can tell "log in" apart
# from a gateway's missing token in logs and captures.
CLOSE_NOT_LOGGED_IN = 4402
CLOSE_CODES = {
    CLOSE_MALFORMED: "malformed message",
    CLOSE_NO_TOKEN: "missing token",
    CLOSE_WRONG_TOKEN: "wrong token",
    CLOSE_UNKNOWN_GATEWAY: "unknown gateway",
    CLOSE_REVOKED: "token revoked",
    CLOSE_TOO_LARGE: "message too large",
    CLOSE_TOO_MANY_FAILURES: "too many failed attempts",
}
# A gateway should not retry soon after these: an operator has to act.
CLOSE_CODES_NEEDING_AN_OPERATOR = frozenset(
    {
        CLOSE_NO_TOKEN,
        CLOSE_WRONG_TOKEN,
        CLOSE_UNKNOWN_GATEWAY,
        CLOSE_REVOKED,
        CLOSE_TOO_MANY_FAILURES,
    }
)


class ProtocolError(ValueError):
    """A message that breaks the protocol; ``str()`` is the close reason."""


def _reject_constant(name: str):
    raise ProtocolError(f"not JSON: {name} is not a number the protocol allows")


def _int(message: dict, key: str, kind: str) -> int:
    value = message.get(key)
    if type(value) is not int or value < 0:
        raise ProtocolError(f"{kind}: {key!r} must be a whole number >= 0, got {value!r:.40}")
    return value


def _number(value, where: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ProtocolError(f"{where} must be a finite number, got {value!r:.40}")
    return value


def _keys(message: dict, kind: str, required: set[str], optional: frozenset = frozenset()):
    missing = required - message.keys()
    if missing:
        raise ProtocolError(f"{kind}: missing {', '.join(sorted(missing))}")
    extra = message.keys() - required - optional
    if extra:
        raise ProtocolError(f"{kind}: unknown {', '.join(sorted(extra))}"[:100])


def _channels(message: dict, key: str, buckets: int) -> int:
    rows = message[key]
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_CHANNELS:
        raise ProtocolError(f"frame: {key!r} must be a list of 1 to {MAX_CHANNELS} channels")
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != buckets:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise ProtocolError(
                f"frame: {key}[{index}] has {got} values, 't' has {buckets} buckets"
            )
        for value in row:
            _number(value, f"frame: {key}[{index}] values")
    return len(rows)


_FRAME_KEYS = {"type", "seq", "received_at", "sent_at", "samples", "t", "min", "max"}
# What is missing just before the frame's first sample, as the reader counted it (device gaps
# from the device's counter, port outages); core/decimate.py's Break.
_GAP_KEYS = frozenset({"device_lines", "outage_seconds"})


def _check_gap(gap) -> None:
    if not isinstance(gap, dict):
        raise ProtocolError(f"frame: 'gap' must be an object, got {type(gap).__name__}")
    _keys(gap, "frame: gap", {"device_lines"}, _GAP_KEYS - {"device_lines"})
    _int(gap, "device_lines", "frame: gap")
    if (
        "outage_seconds" in gap
        and _number(gap["outage_seconds"], "frame: gap 'outage_seconds'") < 0
    ):
        raise ProtocolError("frame: gap 'outage_seconds' must be >= 0")


MAX_TYPES = 32  # record types per frame (core/decimate.py draws at most this many)


def _check_types(types, samples: int) -> None:
    """Rows with record types: ``{"GPGGA": {"fields": [0, 1], "t": [...], "min": [[...]],
    "max": [[...]]}}``; a value may be null (not a number in that record)."""
    if not isinstance(types, dict) or len(types) > MAX_TYPES:
        raise ProtocolError(f"frame: 'types' must be an object of at most {MAX_TYPES} types")
    buckets = 0
    for name, series in types.items():
        where = f"frame: types[{name!r:.20}]"
        if len(name) > 16 or not isinstance(series, dict):
            raise ProtocolError(f"{where} must be a type of at most 16 characters with an object")
        _keys(series, where, {"fields", "t", "min", "max"})
        fields, times = series["fields"], series["t"]
        if (
            not isinstance(fields, list)
            or not 1 <= len(fields) <= MAX_CHANNELS
            or any(type(f) is not int or f < 0 for f in fields)
        ):
            raise ProtocolError(f"{where}: 'fields' must be 1 to {MAX_CHANNELS} positions")
        if not isinstance(times, list) or not times:
            raise ProtocolError(f"{where}: 't' must be a list of bucket times")
        buckets += len(times)
        for value in times:
            _number(value, f"{where} 't' values")
        for key in ("min", "max"):
            rows = series[key]
            if not isinstance(rows, list) or len(rows) != len(fields):
                raise ProtocolError(f"{where}: {key!r} must have one list per field")
            for row in rows:
                if not isinstance(row, list) or len(row) != len(times):
                    raise ProtocolError(f"{where}: {key} rows must have one value per bucket")
                for value in row:
                    if value is not None:
                        _number(value, f"{where} {key} values")
    if buckets > MAX_BUCKETS or buckets > samples:
        raise ProtocolError(f"frame: {buckets} buckets in 'types' for {samples} samples")


def check_frame(message: dict) -> None:
    _keys(message, "frame", _FRAME_KEYS, frozenset({"gap", "types"}))
    if "types" in message:
        if message["t"]:
            raise ProtocolError("frame: buckets in both 't' and 'types'")
        _check_types(message["types"], _int(message, "samples", "frame"))
    samples = _check_frame_range(message)
    times = message["t"]
    if not isinstance(times, list) or len(times) > MAX_BUCKETS:
        raise ProtocolError(f"frame: 't' must be a list of at most {MAX_BUCKETS} bucket times")
    if len(times) > samples:
        raise ProtocolError(f"frame: {len(times)} buckets but only {samples} samples")
    for value in times:
        _number(value, "frame: 't' values")
    if times:
        low = _channels(message, "min", len(times))
        high = _channels(message, "max", len(times))
        if low != high:
            raise ProtocolError(f"frame: 'min' has {low} channels, 'max' has {high}")
    elif message["min"] != [] or message["max"] != []:
        raise ProtocolError("frame: no buckets in 't' but values in 'min' or 'max'")


def _check_frame_range(message: dict) -> int:
    """A frame's seq range, clocks, samples and gap, in either encoding; its samples."""
    if "gap" in message:
        _check_gap(message["gap"])
    seq = message["seq"]
    if (
        not isinstance(seq, list)
        or len(seq) != 2
        or any(type(s) is not int or s < 0 for s in seq)
        or seq[1] < seq[0]
    ):
        raise ProtocolError(
            f"frame: 'seq' must be [first, last] with 0 <= first <= last, got {seq!r:.40}"
        )
    _number(message["received_at"], "frame: 'received_at'")
    _number(message["sent_at"], "frame: 'sent_at'")
    samples = _int(message, "samples", "frame")
    if samples > seq[1] - seq[0] + 1:
        raise ProtocolError(f"frame: {samples} samples in a seq range of {seq[1] - seq[0] + 1}")
    return samples


def check_hello(message: dict) -> None:
    _keys(
        message,
        "hello",
        {"type", "protocol", "gateway"},
        frozenset({"channels", "format", "frame_rate", "points_per_second"}),
    )
    if message["protocol"] != PROTOCOL_VERSION:
        raise ProtocolError(
            f"hello: protocol {message['protocol']!r:.20} is not supported (this site speaks "
            f"{PROTOCOL_VERSION})"
        )
    names = message.get("channels", [])
    if not isinstance(names, list) or len(names) > MAX_CHANNELS + 2:
        raise ProtocolError(f"hello: 'channels' must be a list of at most {MAX_CHANNELS} names")
    if not all(isinstance(name, str) and len(name) <= 64 for name in names):
        raise ProtocolError("hello: channel names must be strings of at most 64 characters")


def check_status(message: dict) -> None:
    _keys(message, "status", {"type", "at", "status"})
    _number(message["at"], "status: 'at'")
    if not isinstance(message["status"], dict):
        raise ProtocolError("status: 'status' must be an object")


# -- frames as binary messages ---------------------------------------------------------------
#
# A frame's numbers as JSON cost the reader more than its decimation (about 115 us of ~425
# floats a frame at 8 channels x 1 kHz, most of it float-to-text) and the site a check of
# every number; as float64 they cost a copy. Offered by the site (its welcome's
# "frame_encodings"), used by the reader for frames without record types:
#
#   b"FGF1" | header length H (uint32, little-endian) | header: the frame's JSON without
#   t/min/max, with "buckets" B and "channels" C, padded with spaces to a multiple of 8 |
#   t: B float64 | min: C x B float64, channel by channel | max: the same (little-endian)
#
# so the numbers start 8-byte aligned and a browser can read them in place.
FRAME_ENCODINGS = ("json", "binary")
BINARY_FRAME_MAGIC = b"FGF1"
MAX_BINARY_HEADER_BYTES = 1024
_HEADER = struct.Struct("<4sI")
_BINARY_HEAD_KEYS = (_FRAME_KEYS - {"t", "min", "max"}) | {"buckets", "channels"}
# array("d") holds this machine's doubles: the wire's are little-endian
_BIG_ENDIAN = array("d", [1.0]).tobytes() != struct.pack("<d", 1.0)


def _doubles(values: array) -> bytes:
    if _BIG_ENDIAN:
        values.byteswap()
    return values.tobytes()


def encode_binary_frame(head: dict, times: list[float], mins: list, maxs: list) -> bytes:
    """A frame as a binary message: ``head`` is its JSON message without t/min/max."""
    values = array("d", times)
    for row in mins:
        values.extend(row)
    for row in maxs:
        values.extend(row)
    text = json.dumps(
        {**head, "buckets": len(times), "channels": len(mins)},
        separators=(",", ":"),
        allow_nan=False,
    ).encode()
    text += b" " * (-len(text) % 8)
    return _HEADER.pack(BINARY_FRAME_MAGIC, len(text)) + text + _doubles(values)


def _binary_parts(data: bytes) -> tuple[dict, memoryview]:
    """The checked header and the numbers' bytes of a binary frame."""
    if len(data) < _HEADER.size:
        raise ProtocolError(f"binary frame: {len(data)} bytes is too short")
    magic, size = _HEADER.unpack_from(data)
    if magic != BINARY_FRAME_MAGIC:
        raise ProtocolError(f"binary frame: starts with {magic!r}, not {BINARY_FRAME_MAGIC!r}")
    if size > MAX_BINARY_HEADER_BYTES or size % 8 or _HEADER.size + size > len(data):
        raise ProtocolError(
            f"binary frame: a header of {size} bytes (a multiple of 8, at most "
            f"{MAX_BINARY_HEADER_BYTES}, within the message's {len(data)})"
        )
    start = _HEADER.size + size
    try:
        head = json.loads(bytes(data[_HEADER.size : start]), parse_constant=_reject_constant)
    except ValueError as error:
        if isinstance(error, ProtocolError):
            raise
        raise ProtocolError(f"binary frame: header is not JSON: {error}"[:100]) from None
    if not isinstance(head, dict) or head.get("type") != "frame":
        raise ProtocolError("binary frame: the header must be a frame's JSON object")
    _keys(head, "binary frame", _BINARY_HEAD_KEYS, frozenset({"gap"}))
    samples = _check_frame_range(head)
    buckets = _int(head, "buckets", "binary frame")
    channels = _int(head, "channels", "binary frame")
    if not 1 <= buckets <= min(samples, MAX_BUCKETS):
        raise ProtocolError(
            f"binary frame: {buckets} buckets for {samples} samples (1 to {MAX_BUCKETS})"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise ProtocolError(f"binary frame: {channels} channels (1 to {MAX_CHANNELS})")
    expected = start + 8 * buckets * (1 + 2 * channels)
    if len(data) != expected:
        raise ProtocolError(
            f"binary frame: {len(data)} bytes, {buckets} buckets x {channels} channels make "
            f"{expected}"
        )
    return head, memoryview(data)[start:]


def _numbers(payload: memoryview) -> array:
    values = array("d")
    values.frombytes(payload)
    if _BIG_ENDIAN:
        values.byteswap()
    # A sum that is not finite holds an inf or a NaN, or overflowed: then look closer.
    if not (math.isfinite(sum(values)) or all(map(math.isfinite, values))):
        raise ProtocolError("binary frame: values must be finite numbers")
    return values


def check_binary_frame(data: bytes) -> dict:
    """Check a binary frame at the cost of one pass over its numbers; its header."""
    head, payload = _binary_parts(data)
    _numbers(payload)
    return head


def decode_binary_frame(data: bytes) -> dict:
    """A binary frame as the JSON frame's dict (for viewers written in Python)."""
    head, payload = _binary_parts(data)
    values = _numbers(payload).tolist()
    buckets, channels = head.pop("buckets"), head.pop("channels")
    rows = [values[i : i + buckets] for i in range(buckets, len(values), buckets)]
    return {**head, "t": values[:buckets], "min": rows[:channels], "max": rows[channels:]}


def viewer_message(data: str | bytes) -> dict:
    """A message a viewer received, in either encoding, as a dict (the site checked it)."""
    return decode_binary_frame(data) if isinstance(data, bytes) else json.loads(data)


CHECKS = {"frame": check_frame, "hello": check_hello, "status": check_status}


# What changes the nesting depth of JSON text: brackets, and quotes and backslashes (a bracket
# inside a string does not count).
_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def nesting_depth_exceeds(text: str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in JSON ``text`` nest deeper than ``max_depth``, found
    without parsing it: one pass over its brackets and quotes, stopping at the first level too
    deep (``[`` x 100000 costs 33 steps)."""
    if text.count("[") + text.count("{") <= max_depth:
        return False  # the common case, at the speed of str.count
    depth = 0
    in_string = escaped = False
    last = -2
    for match in _STRUCTURE.finditer(text):
        char, position = match.group(), match.start()
        if in_string:
            if escaped and position == last + 1:
                escaped = False  # this character is the one escaped
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            last = position
            continue
        if char == '"':
            in_string, escaped = True, False
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif char in "]}":
            depth -= 1
        last = position
    return False


def parse_message(text: str) -> dict:
    if nesting_depth_exceeds(text):
        raise ProtocolError(f"arrays or objects nested deeper than {MAX_DEPTH} levels")
    try:
        message = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        if isinstance(error, ProtocolError):
            raise
        raise ProtocolError(f"not JSON: {error}"[:100]) from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a message must be a JSON object, got {type(message).__name__}")
    kind = message.get("type")
    check = CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise ProtocolError(f"unknown message type {kind!r:.40}")
    check(message)
    return message
