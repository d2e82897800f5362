"""The device as an action stream: gap-free counters, reproducible bytes, and faults that do
exactly what their log entries say (checked with the independent reference receiver)."""

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim.cli import build_device
from firmware_sim.device import Burst, Pause, Send, Unplug
from firmware_sim.options import parse_options

from reference_receiver import Rejected, parse_line, receive

DATA_FIRST = b"0123456789-${"


def device_for(*args: str, seed: int = 1, replay: bytes | None = None):
    options = parse_options(["--link", "/tmp/unused", *args])
    return build_device(options, seed, io.BytesIO(replay) if replay is not None else None)


def drain(device):
    """All actions, the bytes on the wire in order, and the fault-log entries."""
    actions, stream, entries = [], bytearray(), []
    while (action := device.next_action()) is not None:
        actions.append(action)
        if isinstance(action, Send):
            stream += action.data
        if action.fault is not None:
            entries.append(action.fault)
    return actions, bytes(stream), entries


@pytest.mark.parametrize("fmt", ["csv", "csv-seq", "json", "nmea"])
def test_without_faults_every_line_is_valid_and_the_counter_is_gap_free(fmt):
    _, stream, entries = drain(
        device_for("--format", fmt, "--samples", "3000", "--rate", "1000", "--channels", "3")
    )
    received = receive(stream, fmt, 3)
    assert received.rejected == [] and received.tail == b"" and entries == []
    assert len(received.rows) == 3000
    assert [row.t for row in received.rows] == [f"{n / 1000:.6f}" for n in range(3000)]
    if fmt != "csv":
        assert received.counters() == list(range(3000))


def test_nmea_uses_the_sentence_name():
    _, stream, _ = drain(device_for("--format", "nmea", "--sentence", "ECG2", "--samples", "3"))
    assert stream.startswith(b"$ECG2,0,0.000000,")
    assert receive(stream, "nmea", 2, "ECG2").counters() == [0, 1, 2]


def test_crlf_terminates_every_line_with_cr_lf():
    _, stream, _ = drain(device_for("--terminator", "crlf", "--samples", "50"))
    assert stream.count(b"\r\n") == stream.count(b"\n") == 50


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes():
    args = ("--waveform", "noise", "--noise", "0.1", "--samples", "500", "--faults", "garbage=0.05")
    a = drain(device_for(*args, seed=7))[1]
    assert a == drain(device_for(*args, seed=7))[1]
    assert a != drain(device_for(*args, seed=8))[1]


def test_enabling_faults_does_not_change_the_clean_lines():
    base = ("--waveform", "noise", "--noise", "0.5", "--samples", "2000", "--rate", "500")
    clean = {row.n: row for row in receive(drain(device_for(*base))[1], "csv-seq", 2).rows}
    faults = "garbage=0.02,truncated=0.02,utf8=0.02,burst=0.01,pause@5:0.1,unplug@900:0.1"
    faulty = receive(drain(device_for(*base, "--faults", faults))[1], "csv-seq", 2)
    assert len(faulty.rows) < 2000
    for row in faulty.rows:
        assert row == clean[row.n]


def test_a_garbage_line_never_looks_like_data_and_holds_no_terminator():
    actions, _, entries = drain(device_for("--samples", "2000", "--faults", "garbage=0.2:40"))
    garbage = [a.data for a in actions if isinstance(a, Send) and a.fault is not None]
    assert len(garbage) == len(entries) > 300
    for data in garbage:
        assert len(data) == 41 and data.endswith(b"\n")
        assert data[0] not in DATA_FIRST and b"\n" not in data[:-1] and b"\r" not in data


def test_each_replacing_fault_changes_only_its_line_in_the_documented_way():
    _, stream, entries = drain(
        device_for(
            "--format",
            "nmea",
            "--samples",
            "6",
            "--faults",
            "truncated@1,overlong@2:70001,utf8@3",
        )  # fmt: skip
    )
    lines = stream.split(b"\n")[:-1]
    clean = drain(device_for("--format", "nmea", "--samples", "6"))[1].split(b"\n")[:-1]
    assert lines[0] == clean[0] and lines[4:] == clean[4:]
    assert lines[1] == clean[1][: clean[1].rfind(b",")]
    assert len(lines[2]) == 70001
    assert lines[2].startswith(clean[2][: clean[2].rfind(b"*") - 1])
    with pytest.raises(Rejected, match="line of 70001 bytes"):
        parse_line(lines[2], "nmea", 2)
    parse_line(lines[2], "nmea", 2, max_line=70001)  # valid but for its length
    bad = lines[3][entries[2]["offset"]]
    assert bad == entries[2]["byte"] and bad in b"\xc0\xc1" + bytes(range(0xF5, 0x100))
    repaired = lines[3][: entries[2]["offset"]] + lines[3][entries[2]["offset"] + 1 :]
    assert repaired[:-2] == clean[3][:-2]  # the checksum differs: it covers the invalid byte
    with pytest.raises(Rejected, match="invalid UTF-8"):
        parse_line(lines[3], "nmea", 2)
    assert [e["fault"] for e in entries] == ["truncated", "overlong", "utf8"]
    assert [e["bytes"] for e in entries] == [len(lines[1]), 70001, len(lines[3])]


@pytest.mark.parametrize("fmt", ["csv", "csv-seq", "json", "nmea"])
def test_overlong_pads_the_last_number_so_only_the_length_is_wrong(fmt):
    args = ("--format", fmt, "--samples", "1", "--decimals", "0")
    clean = parse_line(drain(device_for(*args))[1][:-1], fmt, 2)
    line = drain(device_for(*args, "--faults", "overlong@0:65537"))[1][:-1]
    assert len(line) == 65537
    with pytest.raises(Rejected, match="line of 65537 bytes"):
        parse_line(line, fmt, 2)
    padded = parse_line(line, fmt, 2, max_line=10**9)
    assert (padded.n, padded.t, padded.channels[0]) == (clean.n, clean.t, clean.channels[0])
    assert float(padded.channels[1]) == float(clean.channels[1])


def test_unplug_loses_round_seconds_times_rate_samples_and_resumes_after_them():
    actions, stream, entries = drain(
        device_for("--rate", "100", "--samples", "500", "--faults", "unplug@40:0.255")
    )
    (unplug,) = [a for a in actions if isinstance(a, Unplug)]
    assert (unplug.n, unplug.resume_n, unplug.last) == (40, 66, False)
    assert entries == [
        {
            "fault": "unplug",
            "n": 40,
            "seconds": 0.255,
            "lines_lost": 26,
            "first_lost": 40,
            "last_lost": 65,
            "rejected": 0,
        }
    ]
    assert receive(stream, "csv-seq", 2).missing(500) == list(range(40, 66))


def test_an_unplug_that_loses_the_rest_of_the_run_is_the_last_action():
    actions, _, entries = drain(
        device_for("--rate", "10", "--samples", "50", "--faults", "unplug@45:3,garbage@47")
    )
    assert isinstance(actions[-1], Unplug) and actions[-1].last
    assert entries[0]["lines_lost"] == 5 and entries[0]["last_lost"] == 49
    assert len(entries) == 1  # the garbage scheduled at a lost sample never fires


def test_an_unplug_shorter_than_half_a_sample_loses_nothing():
    actions, stream, entries = drain(
        device_for("--rate", "10", "--samples", "5", "--faults", "unplug@2:0.01")
    )
    assert [type(a) for a in actions] == [Send, Send, Unplug, Send, Send, Send]
    assert entries[0]["lines_lost"] == 0 and entries[0]["first_lost"] is None
    assert receive(stream, "csv-seq", 2).counters() == [0, 1, 2, 3, 4]


def test_faults_at_one_sample_come_in_the_documented_order_and_extra_replacements_drop():
    actions, _, entries = drain(
        device_for(
            "--samples",
            "3",
            "--faults",
            "utf8@1,burst@1:2,garbage@1,pause@1:0.5,truncated@1,burst@1:9",
        )  # fmt: skip
    )
    kinds = [type(a).__name__ for a in actions]
    assert kinds == ["Send", "Pause", "Send", "Burst", "Send", "Send"]
    assert [e["fault"] for e in entries] == ["pause", "garbage", "burst", "utf8"]
    assert [a.lines for a in actions if isinstance(a, Burst)] == [2]
    assert [a.seconds for a in actions if isinstance(a, Pause)] == [0.5]


def test_a_lost_sample_drops_every_other_fault_at_it():
    _, _, entries = drain(
        device_for("--rate", "10", "--samples", "20", "--faults", "garbage@3,unplug@3,pause@3")
    )
    assert [e["fault"] for e in entries] == ["unplug"]


def test_replay_faults_change_the_recorded_lines():
    recording = b"time,a,b\r\n0,1.5,2\r\n1,1.5,2\r\n2,1.5,2\r\n3,1.5,2"
    actions, stream, entries = drain(
        device_for(
            "--replay", "x", "--faults", "truncated@0,utf8@1,overlong@2:65537", replay=recording
        )
    )
    lines = stream.split(b"\n")
    assert lines[0] == b"0,1.5\r"
    assert lines[1][entries[1]["offset"]] == entries[1]["byte"] and len(lines[1]) == 8 + 1
    assert lines[2] == b"2,1.5,2" + b"0" * (65537 - 7) + b"\r"
    assert lines[3:] == [b"3,1.5,2", b""]  # the configured terminator (lf) ends the last line
    assert [e["n"] for e in entries] == [0, 1, 2]


kinds = st.sampled_from(["garbage", "truncated", "overlong", "utf8", "burst", "pause", "unplug"])


@st.composite
def fault_specs(draw):
    items = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(kinds)
        if draw(st.booleans()):
            p = draw(st.sampled_from([0.001, 0.01, 0.05, 0.2]))
            items.append(f"{kind}={p}" + (":0.02" if kind in ("pause", "unplug") else ""))
        else:
            items.append(f"{kind}@{draw(st.integers(0, 400))}")
    return ",".join(items)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=fault_specs(),
    seed=st.integers(0, 2**32),
    fmt=st.sampled_from(["csv-seq", "json", "nmea"]),
)
def test_a_receiver_sees_exactly_what_the_fault_log_says(spec, seed, fmt):
    total = 400
    args = ("--format", fmt, "--samples", str(total), "--rate", "100", "--faults", spec)
    _, stream, entries = drain(device_for(*args, seed=seed))
    received = receive(stream, fmt, 2)
    assert received.tail == b""
    # Rejected lines: one per entry with "rejected": 1, in order, for the documented reason.
    rejecting = [e for e in entries if e["rejected"]]
    assert len(received.rejected) == len(rejecting)
    for (line, reason), entry in zip(received.rejected, rejecting, strict=True):
        assert len(line) == entry["bytes"]
        if entry["fault"] == "overlong":
            assert reason == f"line of {entry['bytes']} bytes"
        elif entry["fault"] == "utf8":
            assert reason == "invalid UTF-8"
        elif entry["fault"] == "garbage":
            assert line[0] not in DATA_FIRST
    # Missing counters: exactly the union of the logged lost ranges.
    lost = sorted(
        n for e in entries if e["lines_lost"] for n in range(e["first_lost"], e["last_lost"] + 1)
    )
    assert received.missing(total) == lost
    assert sum(e["lines_lost"] for e in entries) == len(lost)
    json.dumps(entries)  # every entry is JSON as it stands
