"""The capture fixtures (tests/captures) are what their README says, and ``--replay`` sends
them byte for byte: each line with its own terminator, or every line with an explicit
``--terminator``."""

import io
import pathlib

import pytest

from firmware_sim.cli import build_device
from firmware_sim.device import Send
from firmware_sim.options import parse_options

from reference_receiver import (
    NMEA_MAX_BYTES,
    Rejected,
    dearmour,
    parse_pairs,
    parse_sentence,
    unsigned,
)

CAPTURES = pathlib.Path(__file__).parents[1] / "captures"
GPS = CAPTURES / "gps_ublox_crlf.nmea"
ARDUINO = CAPTURES / "arduino_plotter_crlf.txt"
INSTRUMENT = CAPTURES / "instrument_header_mixed.csv"


def replayed(path: pathlib.Path, *args: str) -> tuple[bytes, list]:
    options = parse_options(["--link", "x", "--replay", str(path), *args])
    device = build_device(options, 1, io.BytesIO(path.read_bytes()))
    stream, entries = bytearray(), []
    while (action := device.next_action()) is not None:
        if isinstance(action, Send):
            stream += action.data
        if action.fault is not None:
            entries.append(action.fault)
    return bytes(stream), entries


def test_the_gps_capture_is_valid_nmea_but_for_its_deliberate_flaws():
    lines = GPS.read_bytes().split(b"\r\n")
    assert lines[-1] == b"" and b"\n" not in b"".join(lines)
    verdicts = []
    for line in lines[:-1]:
        try:
            parse_sentence(line)
            verdicts.append("ok" if len(line) + 2 <= NMEA_MAX_BYTES else "long")
        except Rejected as error:
            verdicts.append(str(error))
    assert verdicts[0] == "not a sentence"  # the capture starts mid-sentence
    assert verdicts.count("bad checksum") == 1 and verdicts.count("long") == 1
    assert verdicts.count("ok") == len(verdicts) - 3
    fragments = [parse_sentence(line) for line in lines if line.startswith(b"!AIVDM,2,")]
    bits = dearmour(fragments[0].fields[4] + fragments[1].fields[4], int(fragments[1].fields[5]))
    assert len(bits) == 424 and unsigned(bits, 0, 6) == 5


def test_the_arduino_capture_is_plotter_lines_after_a_banner():
    lines = ARDUINO.read_bytes().split(b"\r\n")
    assert lines[0] == b"BME280 ready" and lines[-1] == b"temp:21.6"  # cut off, no terminator
    assert all(value is None for _, value in parse_pairs(lines[1], ",", ":"))
    for line in lines[2:-1]:
        assert [name for name, _ in parse_pairs(line, ",", ":")] == ["temp", "humidity", "pressure"]


@pytest.mark.parametrize("path", [GPS, ARDUINO, INSTRUMENT], ids=lambda p: p.name)
def test_a_capture_is_replayed_byte_for_byte_with_its_own_terminators(path):
    data = path.read_bytes()
    stream, _ = replayed(path, "--replay-header", "send")
    assert stream == (data if data.endswith(b"\n") else data + b"\n")


def test_auto_drops_a_first_line_that_does_not_start_like_data():
    stream, _ = replayed(GPS)
    assert stream == GPS.read_bytes().split(b"\r\n", 1)[1]  # the partial sentence is dropped


def test_an_explicit_terminator_normalises_every_line():
    data = INSTRUMENT.read_bytes()
    lf, _ = replayed(INSTRUMENT, "--replay-header", "send", "--terminator", "lf")
    assert lf == data.replace(b"\r\n", b"\n")
    crlf, _ = replayed(INSTRUMENT, "--replay-header", "send", "--terminator", "crlf")
    assert crlf == data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    cut, _ = replayed(ARDUINO, "--replay-header", "send", "--terminator", "crlf")
    assert cut == ARDUINO.read_bytes() + b"\r\n"


def test_faults_on_a_replayed_capture_keep_its_terminators():
    stream, entries = replayed(
        GPS, "--replay-header", "send", "--faults", "badsum@2,truncated@3,utf8@4"
    )
    lines = stream.split(b"\r\n")
    original = GPS.read_bytes().split(b"\r\n")
    assert [e["fault"] for e in entries] == ["badsum", "truncated", "utf8"]
    assert lines[2][:-2] == original[2][:-2] and lines[2][-2:] != original[2][-2:]
    assert lines[3] == original[3][: original[3].rfind(b",")]
    assert lines[4][entries[2]["offset"]] == entries[2]["byte"]
    assert len(lines) == len(original)


def test_badsum_on_a_line_without_a_checksum_is_dropped_and_not_logged():
    stream, entries = replayed(ARDUINO, "--replay-header", "send", "--faults", "badsum@2")
    assert entries == [] and stream == ARDUINO.read_bytes() + b"\n"
