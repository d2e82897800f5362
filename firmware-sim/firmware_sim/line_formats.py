"""Encode one sample as one line, exactly as docs/formats.md says (pure).

The encoder works on the text of each field (bytes), so a fault can change one field (pad it,
put an invalid byte in it) and the line is still assembled, and its NMEA checksum computed,
the same way as a clean line.
"""

import math
from collections.abc import Iterable, Sequence

from firmware_sim.fault_plan import GARBAGE_FIRST_BYTES, truncate_line

FORMATS = ("csv", "csv-seq", "json", "nmea")
DEFAULT_FORMAT = "csv-seq"
TERMINATORS = {"lf": b"\n", "crlf": b"\r\n"}
DEFAULT_SENTENCE = "FGDAT"
SENTENCE_PATTERN = "[A-Z0-9]{1,10}"
TIME_DECIMALS = 6


def format_number(value: float, decimals: int) -> str:
    """Plain decimal text of ``value`` (``-?\\d+(\\.\\d+)?``): no exponent, no ``+``, no ``-0``."""
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value!r} on the wire: numbers must be finite")
    text = f"{value:.{decimals}f}"
    if text[0] == "-" and not text.strip("-0."):
        # "-0.0000": a value that rounds to zero is written as zero.
        text = text[1:]
    return text


def format_numbers(values: Iterable[float], decimals: int) -> tuple[bytes, ...]:
    """``format_number`` of each value, as ASCII bytes; the same rules, inlined because
    this runs for every value of every line."""
    spec = f".{decimals}f"
    texts = []
    for value in values:
        text = format(value, spec)
        if text[0] == "-" and not text.strip("-0."):
            text = text[1:]
        elif text[-1] in "fn":  # "inf", "-inf", "nan"
            raise ValueError(f"cannot write {value!r} on the wire: numbers must be finite")
        texts.append(text.encode())
    return tuple(texts)


def format_time(n: int, rate: float) -> str:
    """``t`` of sample ``n``: ``n / rate`` seconds with 6 decimals (never a clock reading)."""
    return format(n / rate, ".6f")  # never negative, never -0


def nmea_checksum(body: bytes) -> bytes:
    """Two upper-case hex digits: the XOR of every byte of ``body`` (between ``$`` and ``*``)."""
    checksum = 0
    for byte in body:
        checksum ^= byte
    return b"%02X" % checksum


class LineEncoder:
    """Assembles a line (without terminator) from the text of its fields."""

    garbage_first_bytes = GARBAGE_FIRST_BYTES

    def __init__(self, line_format: str = DEFAULT_FORMAT, sentence: str = DEFAULT_SENTENCE):
        if line_format not in FORMATS:
            raise ValueError(f"unknown line format {line_format!r} (formats: {', '.join(FORMATS)})")
        self.line_format = line_format
        self.sentence = sentence.encode("ascii")

    def encode(self, n: int, t: bytes, channels: Sequence[bytes]) -> bytes:
        if self.line_format == "csv":
            return b",".join((t, *channels))
        if self.line_format == "csv-seq":
            return b",".join((b"%d" % n, t, *channels))
        if self.line_format == "json":
            return b'{"n": %d, "t": %s, "ch": [%s]}' % (n, t, b", ".join(channels))
        body = b",".join((self.sentence, b"%d" % n, t, *channels))
        return b"$" + body + b"*" + nmea_checksum(body)

    def truncate(self, line: bytes) -> bytes:
        return truncate_line(line)
