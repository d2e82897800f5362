"""The serial relay process (gateway/reader/relay.py) over a real PTY pair: it copies in
order, stops between two reads leaving the rest in the kernel, reports a vanished device, and
never outlives the reader."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import serial

from gateway.reader.port import RelayedReader, open_port
from gateway.supervise import wait_for


def proc_io(pid: int, field: str = "rchar") -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(field)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def pty():
    """(device side fd, the gateway end opened as the reader opens it)."""
    master, slave = os.openpty()
    port = open_port(os.ttyname(slave))
    os.close(slave)
    opened = {"master": master}
    try:
        yield opened, port
    finally:
        port.close()
        if opened["master"] is not None:
            os.close(opened["master"])


def read_exactly(reader, size: int, timeout: float = 20) -> bytes:
    got, deadline = bytearray(), time.monotonic() + timeout
    while len(got) < size:
        assert time.monotonic() < deadline, f"{len(got)} of {size} bytes"
        got += reader(0.2)
    return bytes(got)


def test_a_flood_and_a_trickle_arrive_whole_and_in_order(pty):
    opened, port = pty
    reader = RelayedReader(port.fd)
    try:
        flood = bytes(range(256)) * 8192  # 2 MiB: more than the pipe and the tty buffer hold
        writer = threading.Thread(target=os.write, args=(opened["master"], flood))
        writer.start()
        assert read_exactly(reader, len(flood)) == flood
        writer.join()
        # A trickle after the flood is gathered and arrives within the live view's budget.
        start = time.monotonic()
        os.write(opened["master"], b"17,0.017,1.5\n")
        assert read_exactly(reader, 13) == b"17,0.017,1.5\n"
        assert time.monotonic() - start < 0.1
    finally:
        assert reader.close() == b""


@pytest.mark.parametrize("gather_seconds, most_reads", [(0.02, None), (0.2, 9)])
def test_a_trickle_gathers_for_the_configured_time(pty, gather_seconds, most_reads):
    """GATEWAY_GATHER_SECONDS reaches the relay: a line every 5 ms for 1.2 s comes in one read
    per gather (about 60 at 20 ms, about 6 at 200 ms), whole and in order."""
    opened, port = pty
    reader = RelayedReader(port.fd, gather_seconds)
    lines = [b"%d,%.3f,1.5\n" % (n, n / 200) for n in range(240)]
    expected = b"".join(lines)

    def trickle():
        for line in lines:
            os.write(opened["master"], line)
            time.sleep(0.005)

    writer = threading.Thread(target=trickle)
    try:
        writer.start()
        got, reads, deadline = bytearray(), 0, time.monotonic() + 20
        while len(got) < len(expected) and time.monotonic() < deadline:
            piece = reader(0.5)
            reads += bool(piece)
            got += piece
        writer.join()
        assert bytes(got) == expected
        if most_reads is None:
            assert reads >= 20, f"{reads} reads: the 20 ms gather waited longer"
        else:
            assert reads <= most_reads, f"{reads} reads: the 200 ms gather was not applied"
    finally:
        assert reader.close() == b""


def test_a_flood_that_starts_during_a_long_gather_is_read_at_once(pty):
    """Gathering 0.5 s (nobody watching) when a flood begins: the gather that sees it is the
    short first one (50 ms), and the rate it saw keeps the next ones short: 2 MiB through the
    18 KiB of a PTY take about 70 ms here, not the 0.5 s gather and more."""
    opened, port = pty
    reader = RelayedReader(port.fd, 0.5)
    try:
        os.write(opened["master"], b"1,2\n")  # a trickle first: the relay is gathering
        assert read_exactly(reader, 4) == b"1,2\n"
        flood = bytes(range(256)) * 8192
        writer = threading.Thread(target=os.write, args=(opened["master"], flood))
        start = time.monotonic()
        writer.start()
        assert read_exactly(reader, len(flood)) == flood
        took = time.monotonic() - start
        writer.join()
    finally:
        assert reader.close() == b""
    assert took < 0.4, f"2 MiB took {took:.2f} s: a long gather held the flood back"


def test_the_reader_changes_the_relays_gather_as_it_runs(pty):
    """Longer while nobody watches, shorter again when a view opens: the relay takes the new
    gather between two reads, nothing lost or reordered, and still stops at the pipe's end."""
    opened, port = pty
    reader = RelayedReader(port.fd, 0.02)
    counter = iter(range(10_000))

    def reads_in(seconds: float) -> tuple[int, bytes]:
        """A line every 5 ms for ``seconds``: how many reads brought them, and what came."""
        sent = b""
        got, reads = bytearray(), 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            line = b"%d,1.5\n" % next(counter)
            os.write(opened["master"], line)
            sent += line
            piece = reader(0.005)
            reads += bool(piece)
            got += piece
        while len(got) < len(sent):
            piece = reader(0.5)
            assert piece, f"{len(got)} of {len(sent)} bytes"
            reads += 1
            got += piece
        assert bytes(got) == sent
        return reads, bytes(got)

    try:
        fast, _ = reads_in(1.0)
        reader.gather(0.3)
        reads_in(0.35)  # the gather under way when the word came may still be a short one
        slow, _ = reads_in(1.2)
        reader.gather(0.02)
        reads_in(0.35)
        fast_again, _ = reads_in(1.0)
    finally:
        assert reader.close() == b""
    assert fast >= 20 and fast_again >= 20, (fast, fast_again)
    assert slow <= 7, f"{slow} reads in 1.2 s: the 300 ms gather was not applied"
    assert not pid_alive(reader.pid)


def test_close_returns_what_was_relayed_and_leaves_the_rest_in_the_kernel(pty):
    opened, port = pty
    reader = RelayedReader(port.fd)
    os.write(opened["master"], b"first\n")
    assert read_exactly(reader, 6) == b"first\n"  # the relay runs its loop now
    before = proc_io(reader.pid)  # (its start-up read its own modules too)
    taken = b"".join(b"%d,1.0\n" % n for n in range(500))
    os.write(opened["master"], taken)
    wait_for(lambda: proc_io(reader.pid) - before >= len(taken), 5, message="the relay to read")
    assert reader.close() == taken  # relayed, not read yet: handed back, not lost
    assert not pid_alive(reader.pid)
    later = b"500,1.0\n501,1.0\n"
    os.write(opened["master"], later)
    time.sleep(0.05)
    assert os.read(port.fd, 4096) == later  # nobody took these: the next reader will


def test_a_vanished_device_ends_the_relay_with_its_reason(pty):
    opened, port = pty
    reader = RelayedReader(port.fd)
    os.write(opened["master"], b"1,2\n")
    assert read_exactly(reader, 4) == b"1,2\n"
    os.close(opened["master"])
    opened["master"] = None
    with pytest.raises(serial.SerialException, match=r"disconnected|Input/output error"):
        read_exactly(reader, 1, timeout=5)
    assert reader.close() == b""
    assert not pid_alive(reader.pid)


def test_the_relay_dies_with_the_reader_and_lets_go_of_the_port(tmp_path):
    master, slave = os.openpty()
    try:
        script = (
            "import os, sys, time\n"
            "from gateway.reader.port import RelayedReader, open_port\n"
            "port = open_port(sys.argv[1])\n"
            "print(RelayedReader(port.fd).pid, flush=True)\n"
            "time.sleep(60)\n"
        )
        owner = subprocess.Popen(
            [sys.executable, "-c", script, os.ttyname(slave)], stdout=subprocess.PIPE, text=True
        )
        try:
            relay_pid = int(owner.stdout.readline())
            assert pid_alive(relay_pid)
            owner.send_signal(signal.SIGKILL)
            owner.wait(10)
            wait_for(lambda: not pid_alive(relay_pid), 2, message="the relay to exit")
        finally:
            owner.kill()
            owner.wait(10)
            owner.stdout.close()
        # The port is free again: an exclusive open succeeds.
        open_port(os.ttyname(slave)).close()
    finally:
        os.close(master)
        os.close(slave)


def test_the_reader_passes_its_gather_setting_to_the_relay(processes, reader_env):
    """In local mode nothing draws the rows at once: the relay gathers the unwatched time."""
    master, slave = os.openpty()
    env = reader_env(gather_seconds=0.03, gather_unwatched_seconds=0.3)
    try:
        reader = processes.gateway(
            "reader", "--port", os.ttyname(slave), "--mode", "local", env=env
        )

        def relay_args() -> list[str] | None:
            tasks = Path(f"/proc/{reader.pid}/task").iterdir()  # the port thread starts it
            for child in (c for task in tasks for c in (task / "children").read_text().split()):
                args = Path(f"/proc/{child}/cmdline").read_bytes().decode().rstrip("\0").split("\0")
                if any(arg.endswith("relay.py") for arg in args):
                    return args
            return None

        wait_for(relay_args, 20, message="the reader to start its relay")
        assert relay_args()[-1] == "0.3"  # the gather, after DEVICE_FD PIPE_FD STOP_FD
        assert reader.stop() == 0
    finally:
        os.close(master)
        os.close(slave)
