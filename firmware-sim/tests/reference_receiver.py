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


# --- the real-device dialects (docs/formats.md, "Real-device dialects: the wire side") -------

_SENTENCE_RE = re.compile(r"([$!])([A-Z][A-Z0-9]{1,9})((?:,[^,*]*)*)\*([0-9A-F]{2})")
NMEA_MAX_BYTES = 82  # from '$' or '!' to CR LF inclusive


@dataclass(frozen=True)
class NmeaSentence:
    start: str  # "$" or "!"
    address: str  # "GPGGA", "PGRME", "AIVDM", ...
    fields: tuple[str, ...]

    @property
    def kind(self) -> str:
        """The sentence type without its talker: GGA, RMC, ...; a proprietary address whole."""
        return self.address if self.address.startswith("P") else self.address[2:]


def xor_checksum(text: str) -> str:
    value = 0
    for char in text.encode("ascii"):
        value ^= char
    return f"{value:02X}"


def parse_sentence(line: bytes, max_line: int = MAX_LINE) -> NmeaSentence:
    """One NMEA 0183 sentence (terminator stripped): syntax and checksum; raises ``Rejected``.
    Like the gateway must, it keeps sentences longer than NMEA's 82 bytes (some receivers send
    them) and rejects only what cannot be a sentence."""
    if len(line) > max_line:
        raise Rejected(f"line of {len(line)} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected("invalid UTF-8") from error
    m = _SENTENCE_RE.fullmatch(text)
    if not m:
        raise Rejected("not a sentence")
    if xor_checksum(text[1 : text.rindex("*")]) != m.group(4):
        raise Rejected("bad checksum")
    fields = tuple(m.group(3)[1:].split(",")) if m.group(3) else ()
    return NmeaSentence(m.group(1), m.group(2), fields)


def parse_pairs(line: bytes, separator: str, assign: str, max_line: int = MAX_LINE):
    """A keyvalue line: ``[(name, value), ...]``; a labels-only line gives values of None."""
    if len(line) > max_line:
        raise Rejected(f"line of {len(line)} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected("invalid UTF-8") from error
    pairs = []
    for part in text.split(separator):
        name, found, value = part.partition(assign)
        if not found or not name:
            raise Rejected(f"not a pair: {part!r}")
        if value and not _NUMBER_RE.fullmatch(value):
            raise Rejected(f"not a number: {value!r}")
        pairs.append((name, value or None))
    if len({value is None for _, value in pairs}) > 1:
        raise Rejected("labels and values mixed")
    return pairs


def split_columns(line: bytes, delimiter: str, max_line: int = MAX_LINE) -> list[str]:
    """A delimited line's fields (with delimiter " ": runs of spaces, leading ones ignored)."""
    if len(line) > max_line:
        raise Rejected(f"line of {len(line)} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected("invalid UTF-8") from error
    return text.split() if delimiter == " " else text.split(delimiter)


def parse_row(line: bytes, delimiter: str, columns: int, max_line: int = MAX_LINE) -> list[str]:
    fields = split_columns(line, delimiter, max_line)
    if len(fields) != columns:
        raise Rejected(f"{len(fields)} fields, expected {columns}")
    for f in fields:
        if not _NUMBER_RE.fullmatch(f):
            raise Rejected(f"not a number: {f!r}")
    return fields


def parse_text(line: bytes, max_line: int = MAX_LINE) -> str:
    """A raw text line: any valid UTF-8 of at most ``max_line`` bytes."""
    if len(line) > max_line:
        raise Rejected(f"line of {len(line)} bytes")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected("invalid UTF-8") from error


@dataclass
class Lines:
    """A stream as a line receiver sees it: what it kept and what it rejected, in order."""

    kept: list = field(default_factory=list)
    rejected: list[tuple[bytes, str]] = field(default_factory=list)
    tail: bytes = b""


def receive_lines(stream: bytes, parse) -> Lines:
    """Split on LF (one CR before it stripped), ``parse`` each line (raising ``Rejected``)."""
    lines, tail = split_lines(stream)
    received = Lines(tail=tail)
    for line in lines:
        try:
            received.kept.append(parse(line))
        except Rejected as error:
            received.rejected.append((line, str(error)))
    return received


# --- AIS (the public AIVDM description: six-bit armouring, M.1371 layouts) ------------------


def dearmour(payload: str, fill: int) -> str:
    """The message's bits as a string of '0' and '1'."""
    bits = ""
    for char in payload:
        value = ord(char) - 48
        if value > 40:
            value -= 8
        if not 0 <= value < 64:
            raise Rejected(f"not a payload character: {char!r}")
        bits += f"{value:06b}"
    return bits[: len(bits) - fill] if fill else bits


def unsigned(bits: str, start: int, width: int) -> int:
    return int(bits[start : start + width], 2)


def signed(bits: str, start: int, width: int) -> int:
    value = unsigned(bits, start, width)
    return value - (1 << width) if bits[start] == "1" else value


def sixbit_text(bits: str, start: int, chars: int) -> str:
    alphabet = "@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_ !\"#$%&'()*+,-./0123456789:;<=>?"
    text = "".join(alphabet[unsigned(bits, start + 6 * i, 6)] for i in range(chars))
    return text.rstrip("@").rstrip()
