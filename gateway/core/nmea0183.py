"""NMEA 0183 sentences from any talker, kept verbatim. No I/O.

``$GPGGA,123519,4807.038,N,...*47`` or ``!AIVDM,1,1,,A,...*5C``: a start character (``$``, or
``!`` for encapsulated data such as AIS), an address (talker + sentence formatter like
``GPGGA``, or a proprietary ``P...``), comma-separated fields that may be empty or text, and an
optional checksum: ``*`` and two hex digits (either case), the XOR of every byte between the
start character and ``*``. Sentences are printable ASCII. The standard's 82-byte limit is not
enforced (many receivers exceed it); the reader's line limit is.

A row's device fields are the record type (the address) and the fields: everything between the
address's comma and ``*``, as one CSV field (quoted when it holds a comma or a quote), so rows
of every sentence type fit one batch header: ``seq,received_at,record_type,fields``. No device
counter is assumed.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Sequence
from itertools import repeat

from gateway.core.codec import Codec, Invalid, Layout, Reason, show, utf8
from gateway.core.csvfields import quote_field

#: Longest address read: talker + formatter is 5 characters, proprietary ones run longer
#: (``PMTK220``, ``PUBX``); this leaves room and keeps a garbage line from naming a type.
MAX_ADDRESS_CHARS = 16
ADDRESS = rb"[A-Z][A-Z0-9]{0,%d}" % (MAX_ADDRESS_CHARS - 1)
NAMES = ("record_type", "fields")
# Bodies up to this long are checksummed together (see checksums); longer ones one by one.
_BLOCK_BYTES = 256

# Lines up to this long are checksummed together by checksums_hold; longer reads another way.
_LINE_BLOCK_BYTES = 128
# For checksums_hold: a '$' sentence's checksum digits H1 H2 (hex of value v1 v2) are right when
# the XOR of all its bytes ('$' ^ body ^ '*' ^ H1 ^ H2) is '$' ^ '*' ^ H1 ^ H2 ^ (v1 << 4 | v2):
# each digit's share of that is a table lookup, and the constant goes with the first.
_HEX_VALUES = {digit: int(chr(digit), 16) for digit in b"0123456789ABCDEFabcdef"}
_FIRST_DIGIT = bytes(
    byte ^ (_HEX_VALUES.get(byte, 0) << 4) ^ ord("$") ^ ord("*") for byte in range(256)
)
_SECOND_DIGIT = bytes(byte ^ _HEX_VALUES.get(byte, 0) for byte in range(256))

_ADDRESS_RE = re.compile(ADDRESS)
_COMMA, _QUOTED, _ONCE = repeat(b","), repeat(b',"'), repeat(1)
_RECORD = operator.itemgetter(slice(1, -2))  # $ADDRESS,"FIELDS"hh -> ADDRESS,"FIELDS"
_HEX2_RE = re.compile(rb"[0-9A-Fa-f]{2}")
_NOT_PRINTABLE_RE = re.compile(rb"[^\x20-\x7e]")
# A whole read of checksummed sentences whose fields need no quote doubling (no '"') but do
# need quotes: they hold a comma (so the record is ADDRESS,"FIELDS" for every line).
_FIELD = rb"[\x20\x21\x23-\x29\x2b\x2d-\x7e]*+"  # the first field: no comma either
_FIELDS = rb"[\x20\x21\x23-\x29\x2b-\x7e]*+"
_SENTENCE = rb"[$!]" + ADDRESS + rb"+," + _FIELD + rb"," + _FIELDS + rb"\*[0-9A-Fa-f]{2}"


def checksum(body: bytes) -> int:
    """The NMEA checksum of the bytes between the start character and ``*``."""
    return functools.reduce(operator.xor, body, 0)


def checksums(bodies: Sequence[bytes]) -> bytes:
    """The checksum of each body, one byte each, without a Python step per byte.

    Each body is padded with zero bytes to a block of ``width`` bytes (a power of two above the
    longest) and all blocks become one integer; folding it onto itself by half a block, then
    a quarter, ... XORs every block's bytes into its lowest byte (what a fold shifts in from
    the next block only lands in bytes that later folds ignore). About twice as fast as
    ``checksum`` line by line on 70-byte sentences.
    """
    if not bodies:
        return b""
    longest = max(map(len, bodies))
    if longest > _BLOCK_BYTES:
        return bytes(map(checksum, bodies))
    width = 1 << longest.bit_length()
    blocks = b"".join(map(bytes.ljust, bodies, repeat(width), repeat(b"\0")))
    folded = int.from_bytes(blocks, "little")
    shift = width * 4  # bits in half a block
    while shift >= 8:
        folded ^= folded >> shift
        shift >>= 1
    return folded.to_bytes(len(blocks), "little")[::width]


def checksums_hold(lines: Sequence[bytes], longest: int | None = None) -> bool:
    """True when every line, ``$`` + body + ``*`` + two hex digits, has the right checksum.

    The lines are right-aligned in blocks of ``width`` bytes (a multiple of 8, padded with
    zero bytes), so the digits sit at the same place in every block and are read with one
    slice each; each block's XOR comes from XOR-ing its 8-byte columns (``width / 8`` integers
    of 8 bytes per line) and folding the 8 bytes. No Python step per line beyond the padding.
    """
    count = len(lines)
    if longest is None:
        longest = max(map(len, lines))
    width = (longest + 7) & ~7
    blocks = b"".join(map(bytes.rjust, lines, repeat(width), repeat(b"\0")))
    columns = width // 8
    view = memoryview(blocks).cast("Q")
    folded = 0
    for column in range(columns):
        folded ^= int.from_bytes(view[column::columns], "little")
    folded ^= folded >> 32
    folded ^= folded >> 16
    folded ^= folded >> 8
    actual = int.from_bytes(folded.to_bytes(count * 8, "little")[::8], "little")
    first = blocks[width - 2 :: width].translate(_FIRST_DIGIT)
    second = blocks[width - 1 :: width].translate(_SECOND_DIGIT)
    return actual == int.from_bytes(first, "little") ^ int.from_bytes(second, "little")


class Nmea0183Codec(Codec):
    """Any NMEA 0183 sentence: record type (address) + fields verbatim; checksum checked."""

    name = "nmea0183"
    counter_field = None
    time_field = None
    record_type = True

    def __init__(self, *, sentence: str = "") -> None:
        if sentence and not _ADDRESS_RE.fullmatch(sentence.encode()):
            raise ValueError(
                f"NMEA sentence address {sentence!r} is not a letter then up to "
                f"{MAX_ADDRESS_CHARS - 1} of A-Z, 0-9"
            )
        self.sentence = sentence.encode()
        super().__init__(len(NAMES))

    def _names(self) -> tuple[str, ...]:
        return NAMES

    def _layouts(self, line: bytes) -> tuple[Layout, ...]:
        self._fields(line)
        return (self.layout,)

    def _fields(self, line: bytes) -> list[bytes]:
        if not line:
            raise Invalid(Reason.EMPTY, "empty line")
        if line[:1] not in (b"$", b"!"):
            raise Invalid(Reason.MALFORMED, f"{show(line[:8])} does not start with $ or !")
        bad = _NOT_PRINTABLE_RE.search(line)
        if bad is not None:
            utf8(line)
            raise Invalid(
                Reason.MALFORMED,
                f"byte {bad.start()} (0x{bad[0][0]:02X}) is not printable ASCII",
            )
        star = line.find(b"*")
        if star < 0:
            body = line[1:]
        else:
            body = line[1:star]
            given = line[star + 1 :]
            if not _HEX2_RE.fullmatch(given):
                raise Invalid(
                    Reason.MALFORMED, f"checksum {show(given)} is not two hex digits at the end"
                )
            actual = checksum(body)
            if int(given, 16) != actual:
                raise Invalid(
                    Reason.BAD_CHECKSUM,
                    f"checksum {given.decode()} does not match {actual:02X}",
                )
        address, _, fields = body.partition(b",")
        if not _ADDRESS_RE.fullmatch(address):
            raise Invalid(
                Reason.MALFORMED,
                f"address {show(address)} is not a letter then up to "
                f"{MAX_ADDRESS_CHARS - 1} of A-Z, 0-9",
            )
        if self.sentence and address != self.sentence:
            raise Invalid(
                Reason.MALFORMED, f"sentence {show(address)} is not {self.sentence.decode()}"
            )
        return [address, quote_field(fields)]

    def _compile(self, layout: Layout) -> None:
        sentence = _SENTENCE
        if self.sentence:
            sentence = sentence.replace(ADDRESS + b"+", re.escape(self.sentence), 1)
        self._chunk_re = re.compile(b"(?:" + sentence + b")(?:\n" + sentence + b")*+")

    def _fast_records(self, lines: list[bytes], joined: bytes) -> list[bytes] | None:
        # The read matched: each line is a start character, ADDRESS,FIELDS (holding a comma,
        # no '"' or '*') and '*' with 2 hex digits.
        longest = max(map(len, lines))
        if b"!" not in joined and longest <= _LINE_BLOCK_BYTES:
            if not checksums_hold(lines, longest):
                return None  # a bad checksum: the per-line path says which
        else:  # '!' sentences (or '!' in a field), or long lines
            bodies = [line[1:-3] for line in lines]
            given = bytes.fromhex(b"".join([line[-2:] for line in lines]).decode("ascii"))
            if checksums(bodies) != given:
                return None
        # $ADDRESS,FIELDS*hh -> ADDRESS,"FIELDS" (the fields hold no '"' to double)
        quoted = map(bytes.replace, joined.replace(b"*", b'"').split(b"\n"), _COMMA, _QUOTED, _ONCE)
        return list(map(_RECORD, quoted))
