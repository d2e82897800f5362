"""An independent reference receiver for the simulator's tests, written from docs/formats.md.

It imports nothing from firmware_sim (a shared codec would hide a shared bug);
unit/test_sim_reference_parser.py checks it against the examples of docs/formats.md, so the
other tests can trust it. Test modules import it as ``reference_receiver``: pytest puts this
directory on ``sys.path`` when it loads the conftest.py next to it.
"""

import re
from dataclasses import dataclass, field

MAX_LINE = 64 * 1024
NUMBER = r"-?\d+(?:\.\d+)?"
COUNTER = r"0|[1-9]\d*"
_NUMBER_RE = re.compile(NUMBER)
_COUNTER_RE = re.compile(COUNTER)
_TIME_RE = re.compile(r"\d+\.\d{6}")
_JSON_RE = re.compile(
    rf'\{{"n": ({COUNTER}), "t": ({NUMBER}), "ch": \[((?:{NUMBER})(?:, (?:{NUMBER}))*)\]\}}'
)
_NMEA_RE = re.compile(r"\$([A-Z0-9]{1,10}),([^*]*)\*([0-9A-F]{2})")


class Rejected(ValueError):
    pass


@dataclass(frozen=True)
class Row:
    n: int | None
    t: str
    channels: tuple[str, ...]


def split_lines(stream: bytes) -> tuple[list[bytes], bytes]:
    """Lines without terminator (one ``\\r`` before ``\\n`` stripped), and the unterminated tail."""
    *lines, tail = stream.split(b"\n")
    return [line[:-1] if line.endswith(b"\r") else line for line in lines], tail


def _fields(text: str, count: int | None) -> list[str]:
    fields = text.split(",")
    if count is not None and len(fields) != count:
        raise Rejected(f"{len(fields)} fields, expected {count}")
    for f in fields:
        if not _NUMBER_RE.fullmatch(f):
            raise Rejected(f"not a number: {f!r}")
    return fields


def _counter(text: str) -> int:
    if not _COUNTER_RE.fullmatch(text):
        raise Rejected(f"bad counter {text!r}")
    return int(text)


def _time(text: str) -> str:
    if not _TIME_RE.fullmatch(text):
        raise Rejected(f"bad time {text!r}")
    return text


def parse_line(
    line: bytes, fmt: str, channels: int, sentence: str = "FGDAT", max_line: int = MAX_LINE
) -> Row:
    """One line (terminator stripped) per docs/formats.md; raises ``Rejected``."""
    if len(line) > max_line:
        raise Rejected(f"line of {len(line)} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected("invalid UTF-8") from error
    if fmt == "csv":
        f = _fields(text, 1 + channels)
        return Row(None, _time(f[0]), tuple(f[1:]))
    if fmt == "csv-seq":
        f = _fields(text, 2 + channels)
        return Row(_counter(f[0]), _time(f[1]), tuple(f[2:]))
    if fmt == "json":
        m = _JSON_RE.fullmatch(text)
        if not m:
            raise Rejected("not a json line")
        values = tuple(m.group(3).split(", "))
        if len(values) != channels:
            raise Rejected(f"{len(values)} channels, expected {channels}")
        return Row(int(m.group(1)), _time(m.group(2)), values)
    if fmt == "nmea":
        m = _NMEA_RE.fullmatch(text)
        if not m or m.group(1) != sentence:
            raise Rejected("not an nmea sentence")
        body = text[1 : text.index("*")].encode()
        checksum = 0
        for b in body:
            checksum ^= b
        if f"{checksum:02X}" != m.group(3):
            raise Rejected("bad checksum")
        f = _fields(m.group(2), 2 + channels)
        return Row(_counter(f[0]), _time(f[1]), tuple(f[2:]))
    raise AssertionError(fmt)


@dataclass
class Received:
    rows: list[Row] = field(default_factory=list)
    rejected: list[tuple[bytes, str]] = field(default_factory=list)
    tail: bytes = b""

    def counters(self) -> list[int]:
        return [row.n for row in self.rows if row.n is not None]

    def missing(self, total: int) -> list[int]:
        """Counters in 0..total-1 that no accepted row carries."""
        seen = set(self.counters())
        return [n for n in range(total) if n not in seen]


def receive(stream: bytes, fmt: str, channels: int, sentence: str = "FGDAT") -> Received:
    received = Received()
    lines, received.tail = split_lines(stream)
    for line in lines:
        try:
            received.rows.append(parse_line(line, fmt, channels, sentence))
        except Rejected as error:
            received.rejected.append((line, str(error)))
    return received


# The examples of docs/formats.md, byte for byte.
DOC_EXAMPLES = {
    "csv": b"0.001000,0.1234,-0.5000",
    "csv-seq": b"17,0.017000,0.1234,-0.5000",
    "json": b'{"n": 17, "t": 0.017000, "ch": [0.1234, -0.5000]}',
    "nmea": b"$FGDAT,17,0.017000,0.1234,-0.5000*62",
}
