"""firmware-sim over a real socat PTY, read with pyserial as a gateway would.

Received lines are checked with the independent reference parser; the simulator is started
with the ``firmware_sim`` fixture (firmware_sim/pytest_plugin.py), which stops it by PID at
teardown, pass or fail.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from firmware_sim.launcher import simulator_command

from pty_reading import READ_TIMEOUT, assert_same_bytes, read_lines, read_until_exit
from reference_receiver import receive


def socat_processes(port: str) -> list[int]:
    """PIDs of processes whose command line mentions ``port`` (our socat)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"socat") and any(port.encode() in a for a in argv):
            pids.append(int(entry.name))
    return pids


def test_5000_lines_at_1_khz_arrive_complete_and_well_formed(firmware_sim, record_property):
    sim = firmware_sim("--rate", "1000", "--samples", "5000", "--seed", "3")
    with serial.Serial(sim.port, timeout=2) as port:
        data, arrivals = read_lines(port, 5000)
    assert sim.wait(10) == 0
    received = receive(data, "csv-seq", 2)
    assert received.rejected == [] and received.tail == b""
    assert received.counters() == list(range(5000))
    elapsed = arrivals[-1] - arrivals[0]
    record_property("elapsed_s", round(elapsed, 3))
    print(f"5000 lines at 1 kHz: first to last line {elapsed:.3f} s")
    assert 4.5 < elapsed < 15


def test_a_replay_of_100000_lines_arrives_byte_identical(firmware_sim, tmp_path):
    rng = random.Random(11)
    anything_but_lf = bytes(b for b in range(256) if b != 0x0A)
    lines = [b"n,t,ch0,ch1\n"]  # a header: auto skips it
    for n in range(100_000):
        if n % 10 == 0:  # every byte value but LF, any length
            body = bytes(rng.choices(anything_but_lf, k=rng.randint(0, 120)))
        else:
            body = b"%d,%.6f,%.4f,%.4f" % (n, n / 50000, rng.gauss(0, 1), rng.gauss(0, 1))
        lines.append(body + (b"\r\n" if n % 7 == 0 else b"\n"))
    lines[-1] = lines[-1].rstrip(b"\r\n")  # a last line without terminator gets LF
    recording = tmp_path / "recording.csv"
    recording.write_bytes(b"".join(lines))
    expected = b"".join(lines[1:]) + b"\n"

    sim = firmware_sim("--replay", str(recording), "--rate", "50000")
    with serial.Serial(sim.port, timeout=2) as port:
        data = bytearray()
        deadline = time.monotonic() + READ_TIMEOUT
        while len(data) < len(expected) and time.monotonic() < deadline:
            data += port.read(max(1, port.in_waiting))
    assert sim.wait(10) == 0
    assert_same_bytes(bytes(data), expected)


def test_unplug_removes_the_port_and_it_comes_back_at_the_same_path(firmware_sim):
    sim = firmware_sim("--rate", "200", "--samples", "400", "--faults", "unplug@100:0.5")
    old = serial.Serial(sim.port, timeout=2)
    before, _ = read_lines(old, 100)
    with pytest.raises(serial.SerialException):  # a read on the old handle fails
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            before += old.read(max(1, old.in_waiting))
    old.close()
    deadline = time.monotonic() + 5
    while os.path.exists(sim.port) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert not os.path.exists(sim.port)
    gone = time.monotonic()
    while not os.path.exists(sim.port) and time.monotonic() < deadline + 5:
        time.sleep(0.002)
    assert os.path.exists(sim.port)
    assert time.monotonic() - gone > 0.4  # away for about the 0.5 s of the fault
    with serial.Serial(sim.port, timeout=2) as new:  # a new open works
        after, _ = read_lines(new, 200)
    assert sim.wait(10) == 0
    assert receive(before, "csv-seq", 2).counters() == list(range(100))
    assert receive(after, "csv-seq", 2).counters() == list(range(200, 400))
    (entry,) = sim.fault_entries()
    assert {k: entry[k] for k in ("fault", "n", "lines_lost", "first_lost", "last_lost")} == {
        "fault": "unplug",
        "n": 100,
        "lines_lost": 100,
        "first_lost": 100,
        "last_lost": 199,
    }
    assert entry["unread_bytes"] == 0


@pytest.mark.parametrize("fmt", ["csv-seq", "json", "nmea"])
def test_injected_faults_match_the_fault_log(firmware_sim, fmt):
    total = 3000
    spec = (
        "garbage=0.01,truncated=0.01,overlong=0.002,utf8=0.01,burst=0.005:20,"
        "garbage@0:30,pause@1000:0.2,unplug@2000:0.1"
    )
    sim = firmware_sim(
        "--format", fmt, "--rate", "3000", "--samples", str(total), "--seed", "5",
        "--terminator", "crlf", "--faults", spec,
    )  # fmt: skip
    data, connections = read_until_exit(sim)
    assert sim.wait(10) == 0
    assert connections == 2  # reconnected once, after the unplug
    entries = sim.fault_entries()
    received = receive(data, fmt, 2)
    assert received.tail == b""
    rejecting = [e for e in entries if e["rejected"]]
    assert len(received.rejected) == len(rejecting) > 50
    for (line, _), entry in zip(received.rejected, rejecting, strict=True):
        assert len(line) == entry["bytes"]
    lost = sorted(
        n for e in entries if e["lines_lost"] for n in range(e["first_lost"], e["last_lost"] + 1)
    )
    assert received.missing(total) == lost
    kinds = {e["fault"] for e in entries}
    assert kinds == {"garbage", "truncated", "overlong", "utf8", "burst", "pause", "unplug"}
    assert all(e.get("unread_bytes", 0) == 0 for e in entries)


@pytest.mark.parametrize("reading", [False, True], ids=["waiting-for-reader", "streaming"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_removes_the_links_and_socat(firmware_sim, signum, reading):
    sim = firmware_sim("--rate", "100")
    port = None
    if reading:
        port = serial.Serial(sim.port, timeout=2)
        assert read_lines(port, 3)[1]
    (socat_pid,) = socat_processes(sim.port)
    device_dir = next(
        Path(a.decode().split("link=")[1]).parent
        for a in Path(f"/proc/{socat_pid}/cmdline").read_bytes().split(b"\0")
        if b"device-" in a
    )
    assert device_dir.is_dir()
    sim.send_signal(signum)
    assert sim.wait(10) == 128 + signum
    if port is not None:
        port.close()
    assert not os.path.lexists(sim.port)
    assert not device_dir.exists()
    assert socat_processes(sim.port) == []
    assert f"stopped by {signal.Signals(signum).name}" in sim.stderr()


def test_bad_options_exit_2_with_a_clear_message(tmp_path):
    link = tmp_path / "tty"
    console_script = Path(sys.executable).parent / "firmware-sim"
    for command in (simulator_command(), [str(console_script)]):
        result = subprocess.run(
            [*command, "--link", str(link), "--faults", "garbage=0.1,junk@3"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2
        assert result.stderr.splitlines()[-1] == (
            "firmware-sim: error: argument --faults: unknown fault kind 'junk' in 'junk@3' "
            "(kinds: garbage, truncated, overlong, utf8, badsum, burst, pause, unplug)"
        )
        assert not os.path.lexists(link)


def test_a_socat_that_fails_to_start_is_reported(tmp_path):
    fake = tmp_path / "bin" / "socat"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'E cannot do ptys here' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    link = tmp_path / "tty"
    result = subprocess.run(
        simulator_command("--link", str(link), "--seed", "1"),
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"firmware-sim: socat exited with status 1 before creating {link}: E cannot do ptys here"
    )
    assert not os.path.lexists(link)


@pytest.mark.parametrize("rate", [10, 2000])
def test_the_mean_rate_is_within_1_percent(firmware_sim, rate, record_property):
    seconds = 3
    sim = firmware_sim("--rate", str(rate), "--samples", str(rate * seconds), "--seed", "1")
    with serial.Serial(sim.port, timeout=2) as port:
        data, arrivals = read_lines(port, rate * seconds)
    assert sim.wait(10) == 0
    assert len(receive(data, "csv-seq", 2).rows) == rate * seconds
    measured = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    record_property("measured_rate", measured)
    print(f"--rate {rate}: {measured:.3f} lines/s ({(measured / rate - 1) * 100:+.3f} %)")
    assert measured == pytest.approx(rate, rel=0.01)


def test_the_simulator_exits_only_after_the_reader_read_the_last_line(firmware_sim):
    sim = firmware_sim("--rate", "10000", "--samples", "200")
    with serial.Serial(sim.port, timeout=2) as port:
        with pytest.raises(subprocess.TimeoutExpired):  # 20 ms of lines, but nobody reads
            sim.wait(0.5)
        data, _ = read_lines(port, 200)
        assert sim.wait(10) == 0
    assert receive(data, "csv-seq", 2).counters() == list(range(200))


def test_a_tail_nobody_reads_is_counted_after_the_drain_timeout(firmware_sim):
    rate, samples = 100000, 500
    sim = firmware_sim(
        "--no-wait-reader", "--rate", str(rate), "--samples", str(samples),
        "--waveform", "counter", "--channels", "1", "--decimals", "0", "--drain-timeout", "0.3",
    )  # fmt: skip
    assert sim.wait(10) == 3
    expected = sum(len(f"{n},{n / rate:.6f},{n}\n") for n in range(samples))
    assert sim.stderr().splitlines()[-1] == (
        f"firmware-sim: {expected} of {expected} bytes were never read "
        "(gave up after --drain-timeout 0.3 s)"
    )
    assert not os.path.lexists(sim.port)


def test_a_port_nobody_reads_ends_the_run_after_the_drain_timeout(firmware_sim):
    sim = firmware_sim("--rate", "100000", "--samples", "1000000", "--drain-timeout", "0.3")
    with serial.Serial(sim.port, timeout=2):  # opened, never read
        assert sim.wait(10) == 3
    last = sim.stderr().splitlines()[-1]
    assert last.startswith(f"firmware-sim: nobody read {sim.port} for --drain-timeout 0.3 s;")
    sent = int(last.split(" of ")[1].split()[0])
    assert last.endswith(f": {sent} of {sent} bytes sent were never read")


def test_the_same_seed_sends_the_same_bytes(firmware_sim):
    args = ("--waveform", "noise", "--noise", "0.1", "--samples", "3000", "--rate", "20000")
    faults = ("--faults", "garbage=0.01,utf8=0.01")
    runs = []
    for seed in ("42", "42", "43"):
        sim = firmware_sim(*args, *faults, "--seed", seed)
        data, _ = read_until_exit(sim)
        assert sim.wait(10) == 0
        runs.append(data)
    assert len(runs[0]) > 50_000
    assert_same_bytes(runs[1], runs[0])
    assert runs[2] != runs[0]
