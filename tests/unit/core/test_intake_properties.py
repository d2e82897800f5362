"""Properties of the intake for every format, cuts of real streams, and the issue's cases."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.codec import Reason
from gateway.core.intake import FormatDetected
from gateway.core.records import CODECS
from tests.unit.core.feeding import Feeder


def xor(body: bytes) -> int:
    value = 0
    for byte in body:
        value ^= byte
    return value


def nmea(body: bytes, start: bytes = b"$") -> bytes:
    return start + body + b"*%02X" % xor(body)


# -- realistic streams, each with an oracle for its records (written here, not by the codecs) --


def csv_seq_stream(count=30):
    lines = [
        b"%d,%.6f,%.4f,%.4f" % (n, n / 250, (n % 17) / 7, -n / 3) for n in range(4000, 4000 + count)
    ]
    return lines, lambda line: line


def t_value_stream(count=30):
    lines = [b"%.3f,%.2f" % (n / 1000, 20 + (n % 9) / 4) for n in range(1, count + 1)]
    return lines, lambda line: line


GPS_BODIES = [
    b"GPGGA,%06d,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
    b"GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1",
    b"GPGSV,2,1,08,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45",
    b"GPRMC,%06d,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W",
    b"GPVTG,054.7,T,034.4,M,005.5,N,010.2,K",
    b"PGRME,15.0,M,45.0,M,25.0,M",
]


def gps_stream(count=30):
    lines = []
    for n in range(count):
        body = GPS_BODIES[n % len(GPS_BODIES)]
        lines.append(nmea(body % (123500 + n) if b"%" in body else body))

    def record(line):
        address, _, fields = line[1:-3].partition(b",")
        return address + b"," + (b'"' + fields + b'"' if b"," in fields else fields)

    return lines, record


def keyvalue_stream(count=30):
    lines = [
        b"temp:%.1f,humidity:%.1f,pm2_5:%d" % (20 + n / 10, 40 + n / 7, n % 13)
        for n in range(count)
    ]
    return lines, lambda line: b",".join(pair.split(b":", 1)[1] for pair in line.split(b","))


def semicolon_stream(count=30):
    header = b"Zeit;Temperatur;Status"
    lines = [header] + [b"12:%02d:%02d;21,%d;OK" % (n // 60, n % 60, n % 10) for n in range(count)]

    def record(line):
        return b",".join(b'"' + f + b'"' if b"," in f else f for f in line.split(b";"))

    return lines, record


STREAMS = {
    "csv-seq": csv_seq_stream,
    "csv": t_value_stream,
    "nmea0183": gps_stream,
    "keyvalue": keyvalue_stream,
    "delimited": semicolon_stream,
}


@pytest.mark.parametrize("line_format", list(STREAMS))
@pytest.mark.parametrize("configured", ["itself", "auto"])
def test_a_cut_anywhere_loses_no_complete_line(line_format, configured):
    lines, record = STREAMS[line_format]()
    stream = b"".join(line + b"\r\n" for line in lines)
    reach = sum(len(line) + 2 for line in lines[:3])
    ends = [len(b"".join(line + b"\r\n" for line in lines[: index + 1])) for index in range(3)]
    for cut in range(reach):
        data = stream[cut:]
        feeder = Feeder.open(line_format if configured == "itself" else "auto")
        step = 1 + cut % 23
        for start in range(0, len(data), step):
            feeder.feed(data[start : start + step], at=float(start))
        feeder.flush(at=float(len(data)))
        first_index = next(index for index, end in enumerate(ends) if cut < end)
        first = data.split(b"\r\n", 1)[0]
        expected = [record(line) for line in lines[first_index + 1 :]]
        where = f"{line_format} ({configured}) cut at {cut}: first line {first!r}"
        assert feeder.records[len(feeder.records) - len(expected) :] == expected, where
        assert len(feeder.records) - len(expected) in (0, 1), where
        assert {reason for reason, _ in feeder.reasons} <= {
            Reason.PARTIAL_FIRST_LINE,
            Reason.HEADER,
        }, (where, feeder.reasons)
        assert len(feeder.rejections) <= 1 + (line_format == "delimited"), (where, feeder.reasons)
        assert feeder.intake.held_lines == 0


# -- any bytes, any chunks, every format ----------------------------------------------------

REAL_LINES = (
    [line for make in STREAMS.values() for line in make(6)[0]]
    + [nmea(b"FGDAT,%d,0.5,1" % n) for n in range(3)]
    + [b'{"n": %d, "t": 0.5, "ch": [1, -2.5]}' % n for n in range(3)]
    + [b"Booting...", b""]
)
PIECE = st.one_of(
    st.sampled_from(REAL_LINES).map(lambda line: line + b"\n"),
    st.sampled_from(REAL_LINES).map(lambda line: line + b"\r\n"),
    st.binary(max_size=40),
    st.sampled_from([b"\n", b"\r", b"\r\n", b"9" * 300 + b"\n", b"x" * 500]),
)
ACTION = st.one_of(
    st.binary(max_size=1).map(lambda _: ("lost", b"")),
    st.binary(max_size=1).map(lambda _: ("opened", b"")),
    st.integers(1, 64).map(lambda size: ("chunk", size)),
)


@pytest.mark.parametrize("line_format", list(CODECS))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    pieces=st.lists(PIECE, max_size=60), actions=st.lists(ACTION, max_size=40), small=st.booleans()
)
def test_any_bytes_in_any_chunks_are_accounted_for(line_format, pieces, actions, small):
    data = b"".join(pieces)
    limits = {"hold_lines": 12, "hold_bytes": 600, "max_line_bytes": 256} if small else {}
    feeder = Feeder.open(line_format, **limits)
    intake = feeder.intake
    position, complete, at = 0, 0, 0.0
    for action, argument in [*actions, ("chunk", len(data) or 1)] * 2:
        if action == "lost":
            intake.port_lost()
            continue
        if action == "opened":
            intake.port_opened()
            continue
        chunk = data[position : position + argument]
        position += len(chunk)
        complete += chunk.count(b"\n")
        at += 0.5
        feeder.feed(chunk, at=at)
        assert intake.held_lines <= intake.hold_lines
        assert intake.held_bytes <= intake.hold_bytes + 4096
        assert len(feeder.rows) + len(feeder.rejections) + intake.held_lines == complete
        assert all(b"\n" not in row.record for row in feeder.rows)
        assert all(len(row.shape.names) >= 1 for row in feeder.rows)
    feeder.flush(at=at + 1)
    assert intake.held_lines == 0
    assert len(feeder.rows) + len(feeder.rejections) == complete


# -- the cases in the issue -----------------------------------------------------------------


def test_a_t_value_monitor_under_auto_keeps_all_108000_lines():
    data = b"".join(b"%.3f,%.4f\n" % (n / 1000, (n % 97) / 13) for n in range(1, 108_001))
    feeder = Feeder.open("auto")
    for start in range(0, len(data), 4096):
        feeder.feed(data[start : start + 4096], at=start / 1e6)
    feeder.flush()
    assert len(feeder.rows) == 108_000
    assert feeder.rejections == []
    (detected,) = feeder.of(FormatDetected)
    assert detected.format == "csv"
    assert detected.evidence == (
        "8 of 8 lines are comma-separated numbers with 2 fields; no counter: the first field "
        "0.002, 0.003, 0.004, ... is not a whole number"
    )


def test_a_mixed_nmea_stream_keeps_every_sentence_with_a_valid_checksum():
    rng = random.Random(14)
    lines, record = gps_stream(600)
    lines.append(nmea(b"AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0", b"!"))
    lines.append(b"$GPZDA,201530.00,04,07,2002,00,00")  # no checksum
    corrupted = set(rng.sample(range(len(lines)), 20))
    sent = [
        line[:-1] + (b"0" if line[-1:] != b"0" else b"1") if index in corrupted else line
        for index, line in enumerate(lines)
    ]
    for configured in ("nmea0183", "auto"):
        feeder = Feeder.open(configured, fragment=b"$")
        stream = b"".join(line + b"\r\n" for line in sent)[1:]
        for start in range(0, len(stream), 100):
            feeder.feed(stream[start : start + 100], at=float(start))
        feeder.flush()
        valid = [line for index, line in enumerate(sent) if index not in corrupted]
        assert [row.record.split(b",", 1)[0] for row in feeder.rows] == [
            line[1:].split(b",", 1)[0] for line in valid
        ]
        assert feeder.records[:-2] == [record(line) for line in valid[:-2]]
        assert [reason for reason, _ in feeder.reasons] == [Reason.BAD_CHECKSUM] * 20
        assert {row.shape.names for row in feeder.rows} == {("record_type", "fields")}
