"""A GNSS receiver's NMEA 0183 output, epoch by epoch (pure).

Written from the public descriptions of NMEA 0183 sentences (the receiver manuals of u-blox,
Garmin and SiRF document the same standard sentences), never from the reader's code.

A sentence is ``$`` (``!`` for encapsulation, see ``ais``), an address (talker + type, such
as ``GPGGA``, or a proprietary ``P...`` address), comma-separated fields (empty when there
is nothing to say), ``*`` and the checksum: two upper-case hex digits, the XOR of every byte
between ``$``/``!`` and ``*``. At most 82 bytes from ``$`` to CR LF.

Every epoch, the receiver sends in this order (as u-blox receivers do by default)::

    RMC  VTG  GGA  GSA (one per constellation)  GSV (one per 4 satellites in view, per
    constellation)  GLL  [proprietary: PGRME or PUBX,00]  [AIS now and then: !AIVDM]

The receiver moves (a vessel at 0.5 .. 30 knots, slowly turning), its satellites drift across
the sky, and it has no fix for its first epochs (a cold start: status ``V``, empty position
fields). Everything comes from the ``random.Random`` passed in, drawn epoch by epoch.
"""

import datetime
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from firmware_sim.ais import PositionReport, StaticData, aivdm_fields, armour
from firmware_sim.line_formats import nmea_checksum

TALKERS = ("GP", "GL", "GA", "GB", "BD", "GN")
DEFAULT_TALKER = "GP"
PROPRIETARY = ("pgrme", "pubx", "none")
DEFAULT_PROPRIETARY = "pgrme"
MAX_SENTENCE_BYTES = 82  # NMEA 0183: from '$' to CR LF inclusive
COLD_START_EPOCHS = 2  # epochs without a fix at the start
# The receiver's clock at sample 0: a fixed date plus a seed-drawn offset of up to a year.
CLOCK_ORIGIN = datetime.datetime(2024, 1, 1)
AIS_PROBABILITY = 0.2  # per epoch, with --ais
STATIC_DATA_SHARE = 1 / 6  # of AIS messages: type 5 (two sentences); the rest position reports
LAT_DECIMALS = 5  # minutes, as u-blox receivers send them (ddmm.mmmmm)
PUBX_LAT_DECIMALS = 6  # PUBX,00 has one more
KNOTS_TO_KMH = 1.852
# Boot banner (--boot-header): $xxTXT sentences as receivers print them at power-on.
BOOT_TEXTS = (
    "firmware-sim GNSS receiver (simulated)",
    "HW FGSIM-1 00070000, FW 1.00 (build 0)",
    "PROTVER 14.00, NMEA 0183 V4.0",
    "ANTSTATUS=OK",
)


@dataclass(frozen=True)
class Constellation:
    talker: bytes  # of its GSV (and, with the GN talker, which GSA it is)
    satellite_ids: range  # as NMEA numbers them
    in_view: range  # how many are in view (drawn once per run): always the same GSV count


GPS = Constellation(b"GP", range(1, 33), range(9, 13))  # 9..12 in view: 3 GSV
GLONASS = Constellation(b"GL", range(65, 97), range(5, 9))  # 5..8: 2 GSV
GALILEO = Constellation(b"GA", range(1, 37), range(5, 9))
BEIDOU_GB = Constellation(b"GB", range(1, 64), range(5, 9))
BEIDOU_BD = Constellation(b"BD", range(1, 64), range(5, 9))
# A GN ("any GNSS") receiver combines GPS and GLONASS, as a u-blox M8 does by default.
CONSTELLATIONS = {
    "GP": (GPS,),
    "GL": (GLONASS,),
    "GA": (GALILEO,),
    "GB": (BEIDOU_GB,),
    "BD": (BEIDOU_BD,),
    "GN": (GPS, GLONASS),
}


def sentences_per_epoch(talker: str, proprietary: str) -> int:
    """Sentences of one epoch, AIS aside: RMC, VTG, GGA, GLL, one GSA and the GSVs per
    constellation, and the proprietary sentence."""
    count = 4 + (proprietary != "none")
    for constellation in CONSTELLATIONS[talker]:
        count += 1 + math.ceil(constellation.in_view[-1] / 4)
    return count


@dataclass(frozen=True, slots=True)
class Sentence:
    start: bytes  # b"$", or b"!" for an encapsulation sentence (AIS)
    address: bytes  # b"GPGGA", b"PGRME", b"AIVDM", ...
    fields: tuple[bytes, ...]

    def encode(self) -> bytes:
        return encode_sentence(self.start, self.address, self.fields)


def encode_sentence(start: bytes, address: bytes, fields: Sequence[bytes]) -> bytes:
    """``$ADDRESS,f1,f2,...*hh`` (without terminator)."""
    body = b",".join((address, *fields))
    return start + body + b"*" + nmea_checksum(body)


def format_angle(degrees: float, degree_digits: int, decimals: int) -> bytes:
    """``ddmm.mmmmm`` (``dddmm.mmmmm`` for longitude) of ``abs(degrees)``, rounded once in
    whole units of the last decimal so that minutes never read 60."""
    scale = 10**decimals
    units = round(abs(degrees) * 60 * scale)
    whole_degrees, minute_units = divmod(units, 60 * scale)
    minutes, fraction = divmod(minute_units, scale)
    return b"%0*d%02d.%0*d" % (degree_digits, whole_degrees, minutes, decimals, fraction)


def format_clock(moment: datetime.datetime) -> tuple[bytes, bytes]:
    """``hhmmss.ss`` and ``ddmmyy`` of ``moment``."""
    centis = moment.microsecond // 10_000
    hhmmss = b"%02d%02d%02d.%02d" % (moment.hour, moment.minute, moment.second, centis)
    ddmmyy = b"%02d%02d%02d" % (moment.day, moment.month, moment.year % 100)
    return hhmmss, ddmmyy


def _f(value: float, decimals: int) -> bytes:
    text = b"%.*f" % (decimals, value)
    return text[1:] if text.startswith(b"-") and not text.strip(b"-0.") else text


@dataclass
class Satellite:
    satellite_id: int  # as NMEA numbers it (GPS 1..32, GLONASS 65..96, ...)
    elevation0: float  # degrees at t = 0
    azimuth0: float
    elevation_rate: float  # degrees per second
    azimuth_rate: float
    snr_base: float  # dB-Hz
    tracked: bool  # an untracked satellite is in view (almanac) but has no SNR

    def elevation(self, t: float) -> int:
        """Elevation bounces between 3 and 88 degrees: a satellite never leaves the view, so
        the number in view (and of GSV sentences) stays the same during a run."""
        low, span = 3.0, 85.0
        x = (self.elevation0 - low + self.elevation_rate * t) % (2 * span)
        return round(low + (x if x <= span else 2 * span - x))

    def azimuth(self, t: float) -> int:
        return round(self.azimuth0 + self.azimuth_rate * t) % 360


@dataclass
class Vessel:
    """Another ship an AIS receiver hears (with --ais)."""

    mmsi: int
    imo: int
    name: str
    call_sign: str
    destination: str
    latitude: float
    longitude: float
    speed_knots: float
    course: float


SHIP_NAMES = ("NORDIC STAR", "MARIA K", "OCEAN PEARL", "SEA ROVER", "ATLANTIC DAWN", "HELGA")
DESTINATIONS = ("HAMBURG", "ROTTERDAM", "LE HAVRE", "FELIXSTOWE", "GDANSK", "BILBAO")
MARITIME_IDS = (211, 219, 227, 235, 244, 257, 261, 265, 366, 563)  # country codes of MMSIs


class GnssReceiver:
    """Epochs of NMEA 0183 sentences, one per ``epoch()`` call.

    Epochs are ``sentences_per_epoch / rate`` seconds apart (the time the line takes to carry
    one epoch at ``rate`` sentences a second): epoch ``k`` is stamped ``k`` times that after
    the receiver's clock origin, so the bytes depend on the options and seed, never on timing.
    At ``--rate 9`` with 9 sentences an epoch this is a 1 Hz receiver. AIS sentences share the
    line but not the GNSS clock, as on a multiplexed line.
    """

    def __init__(
        self,
        rng: random.Random,
        rate: float,
        talker: str = DEFAULT_TALKER,
        proprietary: str = DEFAULT_PROPRIETARY,
        ais: bool = False,
    ):
        if talker not in TALKERS:
            raise ValueError(f"unknown talker {talker!r} (talkers: {', '.join(TALKERS)})")
        if proprietary not in PROPRIETARY:
            raise ValueError(
                f"unknown proprietary sentence {proprietary!r} (one of {', '.join(PROPRIETARY)})"
            )
        self._rng = rng
        self.rate = rate
        self.talker = talker.encode()
        self.proprietary = proprietary
        self.ais = ais
        self.constellations = CONSTELLATIONS[talker]
        self.clock_origin = CLOCK_ORIGIN + datetime.timedelta(seconds=rng.randrange(366 * 86400))
        self.latitude = rng.uniform(-60.0, 60.0)
        self.longitude = rng.uniform(-180.0, 180.0)
        self.speed_knots = rng.uniform(0.5, 25.0)
        self.course = rng.uniform(0.0, 360.0)
        self.altitude = rng.uniform(0.0, 1500.0)  # metres above mean sea level
        self.geoid_separation = rng.uniform(-30.0, 60.0)
        self.skies = [self._sky(constellation) for constellation in self.constellations]
        self.sentences_per_epoch = 4 + (proprietary != "none")  # RMC VTG GGA GLL [P...]
        self.sentences_per_epoch += sum(1 + math.ceil(len(sky) / 4) for sky in self.skies)
        self.fleet = [self._vessel() for _ in range(4)]
        self._epochs = 0
        self._t = 0.0
        self._ais_sequence = 0

    def _sky(self, constellation: Constellation) -> list[Satellite]:
        rng = self._rng
        count = rng.choice(constellation.in_view)
        ids = sorted(rng.sample(constellation.satellite_ids, count))
        return [
            Satellite(
                satellite_id=sid,
                elevation0=rng.uniform(5.0, 85.0),
                azimuth0=rng.uniform(0.0, 360.0),
                elevation_rate=rng.uniform(-0.008, 0.008),
                azimuth_rate=rng.uniform(-0.01, 0.01),
                snr_base=rng.uniform(28.0, 40.0),
                tracked=rng.random() < 0.85,
            )
            for sid in ids
        ]

    def _vessel(self) -> Vessel:
        rng = self._rng
        return Vessel(
            mmsi=rng.choice(MARITIME_IDS) * 1_000_000 + rng.randrange(1_000_000),
            imo=rng.randrange(9_000_000, 9_999_999),
            name=rng.choice(SHIP_NAMES),
            call_sign="".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=5)),
            destination=rng.choice(DESTINATIONS),
            latitude=self.latitude + rng.uniform(-0.1, 0.1),
            longitude=self.longitude + rng.uniform(-0.1, 0.1),
            speed_knots=rng.uniform(0.0, 18.0),
            course=rng.uniform(0.0, 360.0),
        )

    def boot_sentences(self) -> list[Sentence]:
        """The power-on banner: one ``TXT`` sentence per line (1 of 1, severity 02: notice)."""
        address = self.talker + b"TXT"
        return [
            Sentence(b"$", address, (b"01", b"01", b"02", text.encode())) for text in BOOT_TEXTS
        ]

    def epoch(self) -> list[Sentence]:
        """The sentences of the next epoch."""
        k, lines = self._epochs, self.sentences_per_epoch
        self._epochs += 1
        t = k * lines / self.rate
        self._move(t - self._t)
        self._t = t
        fix = k >= COLD_START_EPOCHS
        # Hundredths of a second from integers: the quotient is exact when it is whole.
        centis = math.floor(k * lines * 100 / self.rate)
        moment = self.clock_origin + datetime.timedelta(milliseconds=centis * 10)
        utc_time, date = format_clock(moment)
        used = [self._used(sky, t) for sky in self.skies] if fix else [[] for _ in self.skies]
        used_count = sum(len(u) for u in used)
        hdop = round(max(0.5, 2.6 / math.sqrt(max(used_count, 1)) + self._rng.gauss(0, 0.03)), 2)
        vdop = round(hdop * 1.35, 2)
        pdop = round(math.hypot(hdop, vdop), 2)
        sentences = [
            self._rmc(utc_time, date, fix),
            self._vtg(fix),
            self._gga(utc_time, fix, used_count, hdop),
        ]
        sentences += [self._gsa(ids, fix, pdop, hdop, vdop) for ids in used]
        for constellation, sky in zip(self.constellations, self.skies, strict=True):
            sentences += self._gsv(constellation, sky, t)
        sentences.append(self._gll(utc_time, fix))
        if self.proprietary == "pgrme":
            sentences.append(self._pgrme(fix, hdop, vdop))
        elif self.proprietary == "pubx":
            sentences.append(self._pubx(utc_time, fix, used_count, hdop, vdop))
        if self.ais and self._rng.random() < AIS_PROBABILITY:
            sentences += self._aivdm(moment.second)
        return sentences

    # --- the state between epochs ------------------------------------------------------------

    def _move(self, dt: float) -> None:
        """Dead reckoning over ``dt`` seconds, course and speed wandering (random walks scaled by
        sqrt(dt), so the track looks the same at any rate)."""
        if dt <= 0:
            return
        rng, spread = self._rng, math.sqrt(dt)
        self.course = (self.course + rng.gauss(0.0, 2.0) * spread) % 360.0
        self.speed_knots = min(30.0, max(0.5, self.speed_knots + rng.gauss(0.0, 0.2) * spread))
        self.altitude += rng.gauss(0.0, 0.3) * spread
        self.latitude, self.longitude = _advance(
            self.latitude, self.longitude, self.speed_knots, self.course, dt
        )
        for vessel in self.fleet:
            vessel.latitude, vessel.longitude = _advance(
                vessel.latitude, vessel.longitude, vessel.speed_knots, vessel.course, dt
            )

    def _used(self, sky: list[Satellite], t: float) -> list[int]:
        """Satellites in the fix: tracked ones at least 10 degrees up (at most 12)."""
        return [s.satellite_id for s in sky if s.tracked and s.elevation(t) >= 10][:12]

    def _snr(self, satellite: Satellite, t: float) -> bytes:
        elevation = satellite.elevation(t)
        if not satellite.tracked or elevation < 10:
            return b""  # in view, not tracked: no SNR
        snr = satellite.snr_base + 0.15 * elevation + self._rng.gauss(0.0, 1.0)
        return b"%02d" % min(99, max(0, round(snr)))

    # --- sentences -------------------------------------------------------------------------

    def _position(self, decimals: int = LAT_DECIMALS) -> tuple[bytes, bytes, bytes, bytes]:
        return (
            format_angle(self.latitude, 2, decimals),
            b"N" if self.latitude >= 0 else b"S",
            format_angle(self.longitude, 3, decimals),
            b"E" if self.longitude >= 0 else b"W",
        )

    def _standard(self, kind: bytes, *fields: bytes) -> Sentence:
        return Sentence(b"$", self.talker + kind, fields)

    def _rmc(self, utc_time: bytes, date: bytes, fix: bool) -> Sentence:
        if not fix:
            return self._standard(b"RMC", utc_time, b"V", *(b"",) * 6, date, b"", b"", b"N")
        return self._standard(
            b"RMC",
            utc_time,
            b"A",
            *self._position(),
            _f(self.speed_knots, 3),
            _f(self.course, 2),
            date,
            b"",  # magnetic variation: not computed by the receiver
            b"",
            b"A",  # mode: autonomous
        )

    def _vtg(self, fix: bool) -> Sentence:
        if not fix:
            return self._standard(b"VTG", b"", b"T", b"", b"M", b"", b"N", b"", b"K", b"N")
        return self._standard(
            b"VTG",
            _f(self.course, 2),
            b"T",
            b"",
            b"M",
            _f(self.speed_knots, 3),
            b"N",
            _f(self.speed_knots * KNOTS_TO_KMH, 3),
            b"K",
            b"A",
        )

    def _gga(self, utc_time: bytes, fix: bool, used: int, hdop: float) -> Sentence:
        if not fix:
            return self._standard(b"GGA", utc_time, *(b"",) * 4, b"0", b"00", b"99.99", *(b"",) * 6)
        return self._standard(
            b"GGA",
            utc_time,
            *self._position(),
            b"1",  # quality: GPS fix
            b"%02d" % used,
            _f(hdop, 2),
            _f(self.altitude, 1),
            b"M",
            _f(self.geoid_separation, 1),
            b"M",
            b"",  # age of differential corrections: none
            b"",  # differential station: none
        )

    def _gsa(
        self,
        ids: list[int],
        fix: bool,
        pdop: float,
        hdop: float,
        vdop: float,
    ) -> Sentence:
        slots = [b"%02d" % sid for sid in ids] + [b""] * (12 - len(ids))
        dops = (_f(pdop, 2), _f(hdop, 2), _f(vdop, 2)) if fix else (b"99.99",) * 3
        return self._standard(b"GSA", b"A", b"3" if fix else b"1", *slots, *dops)

    def _gsv(self, constellation: Constellation, sky: list[Satellite], t: float) -> list[Sentence]:
        total = math.ceil(len(sky) / 4)
        sentences = []
        for number in range(1, total + 1):
            fields = [b"%d" % total, b"%d" % number, b"%02d" % len(sky)]
            for satellite in sky[(number - 1) * 4 : number * 4]:
                fields += [
                    b"%02d" % satellite.satellite_id,
                    b"%02d" % satellite.elevation(t),
                    b"%03d" % satellite.azimuth(t),
                    self._snr(satellite, t),
                ]
            sentences.append(Sentence(b"$", constellation.talker + b"GSV", tuple(fields)))
        return sentences

    def _gll(self, utc_time: bytes, fix: bool) -> Sentence:
        if not fix:
            return self._standard(b"GLL", b"", b"", b"", b"", utc_time, b"V", b"N")
        return self._standard(b"GLL", *self._position(), utc_time, b"A", b"A")

    def _pgrme(self, fix: bool, hdop: float, vdop: float) -> Sentence:
        """Garmin's estimated position errors: horizontal, vertical, spherical (metres)."""
        if not fix:
            return Sentence(b"$", b"PGRME", (b"", b"M", b"", b"M", b"", b"M"))
        horizontal, vertical = hdop * 3.5, vdop * 3.5
        spherical = math.hypot(horizontal, vertical)
        fields = (_f(horizontal, 1), b"M", _f(vertical, 1), b"M", _f(spherical, 1), b"M")
        return Sentence(b"$", b"PGRME", fields)

    def _pubx(self, utc_time: bytes, fix: bool, used: int, hdop: float, vdop: float) -> Sentence:
        """u-blox's PUBX,00 position sentence: longer than NMEA's 82 bytes, as u-blox sends it."""
        if fix:
            lat, ns, lon, ew = self._position(PUBX_LAT_DECIMALS)
            altitude, status = _f(self.altitude + self.geoid_separation, 3), b"G3"
            accuracy = (_f(hdop * 2.5, 1), _f(vdop * 2.5, 1))
        else:
            lat, ns, lon, ew = b"0000.000000", b"N", b"00000.000000", b"E"
            altitude, status, accuracy = b"0.000", b"NF", (b"9999.0", b"9999.0")
        fields = (
            b"00",
            utc_time,
            lat,
            ns,
            lon,
            ew,
            altitude,
            status,
            *accuracy,
            _f(self.speed_knots * KNOTS_TO_KMH if fix else 0.0, 3),
            _f(self.course if fix else 0.0, 2),
            b"0.000",  # vertical velocity
            b"",  # age of differential corrections
            _f(hdop, 2) if fix else b"99.99",
            _f(vdop, 2) if fix else b"99.99",
            _f(hdop * 0.8, 2) if fix else b"99.99",  # TDOP
            b"%d" % used,
            b"0",  # reserved
            b"0",  # dead reckoning: off
        )
        return Sentence(b"$", b"PUBX", fields)

    def _aivdm(self, second: int) -> list[Sentence]:
        rng = self._rng
        vessel = rng.choice(self.fleet)
        channel = rng.choice((b"A", b"B"))
        if rng.random() < STATIC_DATA_SHARE:
            message = StaticData(
                mmsi=vessel.mmsi,
                imo=vessel.imo,
                call_sign=vessel.call_sign,
                name=vessel.name,
                ship_type=70,  # cargo
                to_bow=rng.randrange(60, 200),
                to_stern=rng.randrange(10, 40),
                to_port=rng.randrange(5, 20),
                to_starboard=rng.randrange(5, 20),
                eta=(rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(24), 0),
                draught=round(rng.uniform(4.0, 12.0), 1),
                destination=vessel.destination,
            )
            bits = message.bits()
        else:
            bits = PositionReport(
                mmsi=vessel.mmsi,
                latitude=vessel.latitude,
                longitude=vessel.longitude,
                speed_knots=vessel.speed_knots,
                course=vessel.course,
                heading=round(vessel.course),
                second=second,
                message_type=rng.choice((1, 1, 1, 3)),
            ).bits()
        payload, fill = armour(bits)
        fragments = aivdm_fields(payload, fill, channel, self._ais_sequence)
        if len(fragments) > 1:
            self._ais_sequence = (self._ais_sequence + 1) % 10
        return [Sentence(b"!", b"AIVDM", fields) for fields in fragments]


def _advance(
    latitude: float, longitude: float, knots: float, course: float, dt: float
) -> tuple[float, float]:
    """Position after ``dt`` seconds at ``knots`` on ``course`` (a knot is one minute of
    latitude per hour); latitude stays within 85 degrees, longitude wraps."""
    minutes = knots * dt / 3600
    heading = math.radians(course)
    latitude = max(-85.0, min(85.0, latitude + minutes * math.cos(heading) / 60))
    longitude += minutes * math.sin(heading) / (60 * math.cos(math.radians(latitude)))
    longitude = (longitude + 180.0) % 360.0 - 180.0
    return latitude, longitude
