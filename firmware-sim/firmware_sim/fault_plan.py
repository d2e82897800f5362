"""Which faults fire at which sample, and the bytes they put on the wire (pure).

All randomness comes from the fault ``random.Random`` the caller passes in; it is separate
from the stream that makes the channel values, so enabling faults never changes a clean line.
"""

import random
import re
from collections.abc import Sequence

from firmware_sim.fault_spec import FaultRule

TERMINATOR_BYTES = b"\r\n"
# A garbage line starts with a byte no line of any format starts with (csv and csv-seq start
# with a digit or '-', json with '{', nmea with '$'), so it can never be taken for data.
DATA_FIRST_BYTES = b"0123456789-${"
GARBAGE_FIRST_BYTES = bytes(b for b in range(256) if b not in DATA_FIRST_BYTES + TERMINATOR_BYTES)
GARBAGE_BYTES = bytes(b for b in range(256) if b not in TERMINATOR_BYTES)
# Bytes that are invalid UTF-8 wherever they stand (C0, C1 and F5..FF never occur in UTF-8).
INVALID_UTF8_BYTES = b"\xc0\xc1" + bytes(range(0xF5, 0x100))
# Lines of the text dialects (keyvalue names, delimited headers, raw text) may start with almost
# any character, so their garbage starts with a byte that is invalid UTF-8: no receiver of a text
# format can take it for a line.
TEXT_GARBAGE_FIRST_BYTES = INVALID_UTF8_BYTES
NUMBER_RE = re.compile(rb"-?\d+(\.\d+)?")
CHECKSUM_RE = re.compile(rb"\*[0-9A-F]{2}")


class FaultPlanner:
    """Decides which rules fire at each sample.

    Call ``fired(n)`` once for every sample that is about to be sent, in order: each
    probability rule draws one number from ``rng`` per call, so the draws (and the run) are
    fixed by the seed.
    """

    def __init__(self, rules: Sequence[FaultRule], rng: random.Random):
        self.rules = tuple(rules)
        self._rng = rng

    def fired(self, n: int) -> list[FaultRule]:
        """The rules that fire at sample ``n``, in the order of the spec."""
        fired = []
        for rule in self.rules:
            if rule.probability is not None:
                if self._rng.random() < rule.probability:
                    fired.append(rule)
            elif rule.at == n:
                fired.append(rule)
        return fired


def garbage_bytes(
    count: int, rng: random.Random, first_bytes: bytes = GARBAGE_FIRST_BYTES
) -> bytes:
    """``count`` random bytes, no terminator byte among them, the first one of
    ``first_bytes`` (chosen so that the line is never valid in the format being sent)."""
    first = rng.choice(first_bytes)
    return bytes([first, *rng.choices(GARBAGE_BYTES, k=count - 1)])


def cut_before_last(line: bytes, separator: bytes) -> bytes:
    """``line`` up to its last ``separator``; a line without one keeps its first half."""
    cut = line.rfind(separator)
    return line[:cut] if cut >= 0 else line[: len(line) // 2]


def truncate_line(line: bytes) -> bytes:
    """``line`` cut before its last field separator (``,``; ``", "`` in json ends the same
    way); a line without one keeps its first half."""
    return cut_before_last(line, b",")


def paddable_field(fields: Sequence[bytes]) -> int | None:
    """Index of the field ``overlong`` pads: the last decimal number with a point (zeros after
    it change nothing), else the last integer; None if no field is a number."""
    integer = None
    for k in range(len(fields) - 1, -1, -1):
        match = NUMBER_RE.fullmatch(fields[k])
        if match is not None:
            if match.group(1) is not None:
                return k
            if integer is None:
                integer = k
    return integer


def has_checksum(line: bytes) -> bool:
    """True if ``line`` ends with an NMEA checksum field (``*`` and two upper-case hex digits)."""
    return len(line) >= 3 and CHECKSUM_RE.fullmatch(line, len(line) - 3) is not None


def wrong_checksum(line: bytes, rng: random.Random) -> tuple[bytes, bytes]:
    """``line`` (which ``has_checksum``) with another checksum, and the correct one."""
    correct = line[-2:]
    wrong = b"%02X" % (int(correct, 16) ^ rng.randint(1, 255))
    return line[:-2] + wrong, correct


def pad_number(text: bytes, extra: int) -> bytes:
    """``text`` (a plain decimal number) made ``extra`` bytes longer without changing its
    value: trailing zeros after the decimal point (``.0`` is added first if it has none)."""
    if extra <= 0:
        return text
    if b"." in text:
        return text + b"0" * extra
    if extra == 1:  # no room for ".0": a leading zero keeps the value
        sign = b"-" if text.startswith(b"-") else b""
        return sign + b"0" + text[len(sign) :]
    return text + b"." + b"0" * (extra - 1)


def insert_byte(text: bytes, offset: int, byte: int) -> bytes:
    return text[:offset] + bytes([byte]) + text[offset:]
