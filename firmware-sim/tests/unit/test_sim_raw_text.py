"""raw: free text lines, deterministic from the seed; every line valid UTF-8 with no terminator
inside; faults as documented (a cut line is still kept by a text receiver)."""

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim.cli import build_device
from firmware_sim.device import Send
from firmware_sim.options import parse_options

from reference_receiver import Rejected, parse_text, receive_lines


def run(*args: str, seed: int = 1):
    device = build_device(parse_options(["--link", "/tmp/unused", *args]), seed, None)
    stream, actions, entries = bytearray(), [], []
    while (action := device.next_action()) is not None:
        actions.append(action)
        if isinstance(action, Send):
            stream += action.data
        if action.fault is not None:
            entries.append(action.fault)
    return bytes(stream), actions, entries


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    channels=st.integers(1, 8),
    decimals=st.integers(0, 9),
    terminator=st.sampled_from(["lf", "crlf"]),
)
def test_every_line_is_valid_utf8_without_a_terminator_or_control_character_inside(
    seed, channels, decimals, terminator
):
    end = "\r\n" if terminator == "crlf" else "\n"
    stream, actions, _ = run(
        "--format", "raw", "--samples", "300", "--channels", str(channels),
        "--decimals", str(decimals), "--terminator", terminator, "--waveform", "noise",
        seed=seed,
    )  # fmt: skip
    assert len(actions) == 300
    for action in actions:
        text = action.data.decode("utf-8")  # raises if not valid UTF-8
        assert text.endswith(end)
        body = text[: -len(end)]
        assert "\r" not in body and "\n" not in body
        assert all(char == "\t" or unicodedata.category(char) != "Cc" for char in body)


def test_a_run_has_the_variety_a_real_instrument_log_has():
    stream, _, _ = run("--format", "raw", "--samples", "2000", "--channels", "3", seed=9)
    lines = stream.decode().split("\n")[:-1]
    assert len(lines) == 2000
    assert any(line == "" for line in lines)  # empty lines
    assert any(line != line.strip() and line.strip() for line in lines)  # leading/trailing space
    assert any("\t" in line for line in lines)
    assert any('"' in line and "," in line for line in lines)
    for needle in ("µ", "°C", "Ω"):
        assert any(needle in line for line in lines), needle
    assert any(any(ord(char) > 0xFFFF for char in line) for line in lines)  # emoji
    assert any(line == "OK" for line in lines)  # modem chatter
    assert 0.01 < sum(line == "" for line in lines) / len(lines) < 0.08


def test_the_same_seed_gives_the_same_text_and_another_seed_other_text():
    a = run("--format", "raw", "--samples", "300", seed=4)[0]
    assert a == run("--format", "raw", "--samples", "300", seed=4)[0]
    assert a != run("--format", "raw", "--samples", "300", seed=5)[0]


def test_the_readings_are_the_values_csv_sends_for_the_same_seed():
    csv = run("--format", "csv", "--waveform", "counter", "--decimals", "0", "--samples", "400")[0]
    raw = run("--format", "raw", "--waveform", "counter", "--decimals", "0", "--samples", "400")[0]
    for n, line in enumerate(raw.decode().split("\n")[:-1]):
        if line.startswith("# sample "):  # the line kind that lists every channel
            assert line == f"# sample {n}: {n},{n + 1}"
    assert csv.count(b"\n") == 400


def test_the_boot_banner_goes_before_the_first_line():
    stream, _, _ = run("--format", "raw", "--boot-header", "--samples", "2")
    lines = stream.decode().split("\n")
    assert lines[0] == "" and lines[1].startswith("=== firmware-sim lab logger")
    assert len(lines) == 4 + 2 + 1


def test_truncated_cuts_a_raw_line_in_the_middle_on_a_character_boundary():
    clean = run("--format", "raw", "--samples", "400", seed=2)[0].split(b"\n")
    stream, _, entries = run(
        "--format", "raw", "--samples", "400", "--faults", "truncated=0.5", seed=2
    )
    lines = stream.split(b"\n")
    assert len(entries) > 100
    for entry in entries:
        original, cut = clean[entry["n"]].decode(), lines[entry["n"]].decode()
        assert cut == original[: len(original) // 2] and len(cut.encode()) == entry["bytes"]
        assert entry["rejected"] == 0 and entry["lines_lost"] == 1  # kept, but not as sent
    # An empty line has nothing to cut: the fault is dropped, not logged.
    empties = {n for n, line in enumerate(clean[:-1]) if not line}
    assert empties and not empties & {e["n"] for e in entries}


def test_a_text_receiver_rejects_exactly_what_the_log_says():
    total = 3000
    stream, _, entries = run(
        "--format", "raw", "--samples", str(total), "--rate", "1000",
        "--faults", "garbage=0.01,truncated=0.01,utf8=0.01,overlong=0.002,unplug@1500:0.2",
        seed=6,
    )  # fmt: skip
    received = receive_lines(stream, parse_text)
    rejecting = [e for e in entries if e["rejected"]]
    assert [len(line) for line, _ in received.rejected] == [e["bytes"] for e in rejecting]
    lost_to_unplug = sum(e["lines_lost"] for e in entries if e["fault"] == "unplug")
    garbage = sum(e["fault"] == "garbage" for e in entries)
    sent = total - lost_to_unplug + garbage
    assert len(received.kept) + len(received.rejected) == sent
    assert len(received.rejected) == sum(e["rejected"] for e in entries)
    assert {e["fault"] for e in rejecting} == {"garbage", "utf8", "overlong"}


def test_badsum_is_refused_for_raw():
    with pytest.raises(SystemExit):
        parse_options(["--link", "x", "--format", "raw", "--faults", "badsum=0.1"])


def test_parse_text_rejects_invalid_utf8():
    with pytest.raises(Rejected, match="invalid UTF-8"):
        parse_text(b"abc\xff")
