"""The real-device dialects over a real socat PTY, read with pyserial (never with gateway code).

What arrives is compared byte for byte with the stream the same options and seed give in
process (``build_device``), and checked with the independent reference receiver.
"""

import pathlib

import serial

from firmware_sim.cli import build_device
from firmware_sim.device import Send
from firmware_sim.options import parse_options

from pty_reading import assert_same_bytes, read_connections, read_lines, read_until_exit
from reference_receiver import (
    NMEA_MAX_BYTES,
    parse_pairs,
    parse_row,
    parse_sentence,
    parse_text,
    receive_lines,
    split_lines,
)

CAPTURES = pathlib.Path(__file__).parents[1] / "captures"


def expected_bytes(*args: str, seed: int) -> bytes:
    """What the simulator writes for these options and seed, computed in process."""
    device = build_device(parse_options(["--link", "/tmp/unused", *args]), seed, None)
    stream = bytearray()
    while (action := device.next_action()) is not None:
        if isinstance(action, Send):
            stream += action.data
    return bytes(stream)


def test_nmea0183_sentences_arrive_as_generated_with_faults_as_logged(firmware_sim):
    total = 3000
    args = (
        "--format", "nmea0183", "--rate", "3000", "--samples", str(total), "--talker", "GN",
        "--ais", "--boot-header",
        "--faults", "badsum=0.01,garbage=0.005,truncated=0.005,utf8=0.005,unplug@1500:0.2",
    )  # fmt: skip
    sim = firmware_sim(*args, "--seed", "21")
    connections = read_connections(sim)
    assert sim.wait(10) == 0
    assert len(connections) == 2  # reconnected once, after the unplug
    data = b"".join(connections)
    assert_same_bytes(data, expected_bytes(*args, seed=21))
    lines, tail = split_lines(data)
    assert tail == b"" and data.count(b"\r\n") == data.count(b"\n")  # CR LF throughout
    received = receive_lines(data, parse_sentence)
    entries = sim.fault_entries()
    rejecting = [e for e in entries if e["rejected"]]
    assert [len(line) for line, _ in received.rejected] == [e["bytes"] for e in rejecting]
    assert {e["fault"] for e in rejecting} == {"badsum", "garbage", "truncated", "utf8"}
    banner = [s for s in received.kept if s.kind == "TXT"]
    assert received.kept[: len(banner)] == banner and banner  # once, at boot
    sentences = len(received.kept) - len(banner)
    assert sentences == total - sum(e["lines_lost"] for e in entries)
    assert all(len(line) + 2 <= NMEA_MAX_BYTES for line in lines)


def test_keyvalue_pairs_arrive_as_generated(firmware_sim):
    args = (
        "--format", "keyvalue", "--rate", "2000", "--samples", "2000", "--names", "temp,rh,p",
        "--kv-separator", "tab", "--boot-header", "--waveform", "noise",
    )  # fmt: skip
    sim = firmware_sim(*args, "--seed", "4")
    with serial.Serial(sim.port, timeout=2) as port:
        data, _ = read_lines(port, 2001)
    assert sim.wait(10) == 0
    assert_same_bytes(data, expected_bytes(*args, seed=4))
    received = receive_lines(data, lambda line: parse_pairs(line, "\t", ":"))
    assert received.rejected == [] and len(received.kept) == 2001
    assert received.kept[0] == [("temp", None), ("rh", None), ("p", None)]
    assert all([name for name, _ in pairs] == ["temp", "rh", "p"] for pairs in received.kept)


def test_delimited_header_is_sent_at_boot_and_again_after_a_replug(firmware_sim):
    args = (
        "--format", "delimited", "--delimiter", "space", "--time-column", "--rate", "1000",
        "--samples", "1500", "--reboot-on-replug", "--faults", "unplug@600:0.3",
    )  # fmt: skip
    sim = firmware_sim(*args, "--seed", "2")
    before, after = read_connections(sim)
    assert sim.wait(10) == 0
    assert_same_bytes(before + after, expected_bytes(*args, seed=2))
    (entry,) = sim.fault_entries()
    assert (entry["fault"], entry["lines_lost"], entry["unread_bytes"]) == ("unplug", 300, 0)
    for connection, rows in ((before, 600), (after, 1500 - 600 - 300)):
        header, *lines = connection.split(b"\n")[:-1]
        assert header.split() == [b"t", b"ch0", b"ch1"]  # the first line of each connection
        assert len(lines) == rows
        for line in lines:
            parse_row(line, " ", 3)  # raises if a row is not 3 numbers
    assert after.split(b"\n")[1].split()[0] == b"0.900000"  # the first sample after the gap


def test_raw_text_arrives_as_generated_and_valid_utf8(firmware_sim):
    args = ("--format", "raw", "--rate", "2000", "--samples", "3000", "--terminator", "crlf")
    sim = firmware_sim(*args, "--seed", "13")
    data, connections = read_until_exit(sim)
    assert sim.wait(10) == 0 and connections == 1
    assert_same_bytes(data, expected_bytes(*args, seed=13))
    received = receive_lines(data, parse_text)
    assert received.rejected == [] and len(received.kept) == 3000
    assert any(not text for text in received.kept) and any("°" in t for t in received.kept)


def test_a_crlf_nmea_capture_is_replayed_byte_for_byte(firmware_sim):
    capture = CAPTURES / "gps_ublox_crlf.nmea"
    sim = firmware_sim("--replay", str(capture), "--replay-header", "send", "--rate", "500")
    data, _ = read_until_exit(sim)
    assert sim.wait(10) == 0
    assert_same_bytes(data, capture.read_bytes())


def test_a_mixed_capture_is_replayed_with_one_terminator_when_asked(firmware_sim):
    capture = CAPTURES / "instrument_header_mixed.csv"
    sim = firmware_sim(
        "--replay", str(capture), "--replay-header", "send", "--terminator", "crlf",
        "--rate", "500",
    )  # fmt: skip
    data, _ = read_until_exit(sim)
    assert sim.wait(10) == 0
    assert_same_bytes(data, capture.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
