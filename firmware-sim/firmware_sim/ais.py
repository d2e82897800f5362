"""AIS messages as an AIS receiver puts them on an NMEA 0183 line: ``!AIVDM`` sentences (pure).

Written from the public description of the AIVDM encapsulation (ITU-R M.1371 message layouts,
IEC 61162-1 ``!`` sentences, as the GPSD project documents them): a message is a string of
bits, cut into 6-bit groups, each sent as one printable character ("armouring"); a message
too long for one sentence is split into fragments that share a sequential message id.

    !AIVDM,<fragments>,<fragment number>,<sequential id>,<radio channel>,<payload>,<fill bits>*hh

Only what the simulator sends is here: position reports (types 1, 2, 3; one sentence) and
static and voyage data (type 5; two sentences).
"""

from dataclasses import dataclass

# At most this many payload characters per sentence, so that a sentence stays within NMEA's
# 82 bytes: "!AIVDM,2,1,3,B," + 60 characters + ",0*hh" + CR LF is exactly 82.
MAX_PAYLOAD_CHARS = 60
POSITION_REPORT_BITS = 168
STATIC_DATA_BITS = 424


class BitString:
    """Fields appended most significant bit first, as AIS messages lay them out."""

    def __init__(self) -> None:
        self.value = 0
        self.length = 0

    def add(self, value: int, width: int) -> "BitString":
        """Append ``value`` in ``width`` bits (a negative value in two's complement)."""
        if not -(1 << (width - 1)) <= value < (1 << width):
            raise ValueError(f"{value} does not fit in {width} bits")
        self.value = (self.value << width) | (value & ((1 << width) - 1))
        self.length += width
        return self

    def add_text(self, text: str, characters: int) -> "BitString":
        """``text`` in AIS six-bit ASCII, padded with ``@`` to ``characters``."""
        if len(text) > characters:
            raise ValueError(f"{text!r} is longer than {characters} characters")
        for char in text.ljust(characters, "@"):
            self.add(sixbit_code(char), 6)
        return self


def sixbit_code(char: str) -> int:
    """AIS six-bit ASCII: ``@A..Z[\\]^_`` are 0..31, space to ``?`` are 32..63."""
    code = ord(char)
    if 64 <= code <= 95:
        return code - 64
    if 32 <= code <= 63:
        return code
    raise ValueError(f"{char!r} has no AIS six-bit code")


def armour(bits: BitString) -> tuple[bytes, int]:
    """The payload characters of ``bits``, and the fill bits (zeros) added to end on a
    6-bit boundary."""
    fill = -bits.length % 6
    value, groups = bits.value << fill, (bits.length + fill) // 6
    chars = bytearray()
    for shift in range((groups - 1) * 6, -1, -6):
        six = (value >> shift) & 0x3F
        chars.append(six + 48 if six < 40 else six + 56)
    return bytes(chars), fill


def aivdm_fields(
    payload: bytes, fill: int, channel: bytes, sequence_id: int
) -> list[tuple[bytes, ...]]:
    """The fields of each ``!AIVDM`` sentence carrying ``payload`` (one per fragment);
    ``sequence_id`` (0..9) is only written when there is more than one fragment."""
    pieces = [payload[i : i + MAX_PAYLOAD_CHARS] for i in range(0, len(payload), MAX_PAYLOAD_CHARS)]
    count = len(pieces)
    sequence = b"%d" % sequence_id if count > 1 else b""
    return [
        (
            b"%d" % count,
            b"%d" % number,
            sequence,
            channel,
            piece,
            b"%d" % (fill if number == count else 0),
        )
        for number, piece in enumerate(pieces, start=1)
    ]


@dataclass(frozen=True)
class PositionReport:
    """Message types 1, 2 and 3: a class A vessel's position, speed and course."""

    mmsi: int
    latitude: float  # degrees, north positive
    longitude: float  # degrees, east positive
    speed_knots: float
    course: float  # degrees true
    heading: int  # degrees true
    second: int  # UTC second of the report
    message_type: int = 1
    nav_status: int = 0  # 0: under way using engine

    def bits(self) -> BitString:
        bits = BitString()
        bits.add(self.message_type, 6).add(0, 2).add(self.mmsi, 30).add(self.nav_status, 4)
        bits.add(-128, 8)  # rate of turn: not available
        bits.add(min(round(self.speed_knots * 10), 1022), 10)
        bits.add(1, 1)  # position accuracy: high (DGPS-quality)
        bits.add(round(self.longitude * 600_000), 28)  # 1/10000 minute
        bits.add(round(self.latitude * 600_000), 27)
        bits.add(round(self.course * 10) % 3600, 12)
        bits.add(self.heading % 360, 9)
        bits.add(self.second, 6)
        bits.add(0, 2).add(0, 3).add(0, 1)  # manoeuvre, spare, RAIM
        bits.add(0, 19)  # radio status
        assert bits.length == POSITION_REPORT_BITS
        return bits


@dataclass(frozen=True)
class StaticData:
    """Message type 5: a vessel's name, call sign, dimensions and voyage."""

    mmsi: int
    imo: int
    call_sign: str
    name: str
    ship_type: int
    to_bow: int  # metres from the GNSS antenna
    to_stern: int
    to_port: int
    to_starboard: int
    eta: tuple[int, int, int, int]  # month, day, hour, minute (UTC)
    draught: float  # metres
    destination: str

    def bits(self) -> BitString:
        bits = BitString()
        bits.add(5, 6).add(0, 2).add(self.mmsi, 30).add(0, 2).add(self.imo, 30)
        bits.add_text(self.call_sign, 7).add_text(self.name, 20).add(self.ship_type, 8)
        bits.add(self.to_bow, 9).add(self.to_stern, 9)
        bits.add(self.to_port, 6).add(self.to_starboard, 6)
        bits.add(1, 4)  # position fix type: GPS
        month, day, hour, minute = self.eta
        bits.add(month, 4).add(day, 5).add(hour, 5).add(minute, 6)
        bits.add(round(self.draught * 10), 8)
        bits.add_text(self.destination, 20)
        bits.add(0, 1).add(0, 1)  # DTE available, spare
        assert bits.length == STATIC_DATA_BITS
        return bits
