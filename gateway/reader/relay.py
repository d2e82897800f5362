"""The serial relay: a small process that copies a serial device into a pipe.

    python -I -S relay.py DEVICE_FD PIPE_FD STOP_FD [GATHER_SECONDS]

Why a process: the reader's port thread and its writer share one interpreter lock. While the
writer validates and stores a large read (milliseconds of Python), the port thread gets the lock
back only every switch interval, so it cannot empty the kernel's tty buffer (4 KiB per read) and
the device side stalls: reading and storing take turns instead of overlapping. This process has
no other thread. It drains the device into a pipe of up to 1 MiB, which the port thread then
reads in big pieces. Measured on a PTY flood: 1.4x the throughput of the threaded reader alone.

STOP_FD also carries the reader's word on how long to gather: a line with the seconds
(``b"0.2\n"``) applies from the next gather on (the reader gathers longer while nobody watches
its live view). It stops when STOP_FD ends (the reader closed the other end to stop it, or the
reader died: the kernel closes it then), always between two reads, so no byte taken from the
device is left unwritten; what the reader has not read yet stays in the pipe for it to drain.
When the device goes away it writes the reason to stderr and exits with status 3.

Only the standard library: it runs with ``-I -S``, starting in a few milliseconds.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

READ_SIZE = 65536
# A trickle (a device at 1 kHz) is gathered: after a small read, sleep a gather (the reader
# passes GATEWAY_GATHER_SECONDS, 70 ms, while a view is open, and 0.2 s while none is) and
# take what came, so a 1 kHz device costs 14 wake-ups a second here and in the reader, not
# 1000. In full mode at 8 channels x 1 kHz (bench/gateway, the reader with this relay, runs
# alternating, 2026-11-30) 30 ms cost 2.93, 2.58 % of a core, 50 ms 2.25, 2.0 % and 80 ms
# 1.68, 1.81 %, the stream's frames following the gathers. Serial to viewer (bench/web, from
# the write to the PTY) p99 68.3 ms at 30 ms (frames then waited for the frame rate too),
# 51.9 ms at 50 ms, 71.8 ms at 70 ms, 82 ms at 80 ms; the live view's budget is 100 ms.
GATHER_BELOW_BYTES = 1024
GATHER_SECONDS = 0.05
GATHER_RANGE = (0.001, 1.0)  # GATEWAY_GATHER_SECONDS' bounds; a gather asked for is kept in them
# A gather longer than 50 ms (the reader's: 70 ms while a view is open, 0.2 s while none is)
# starts at 50 ms and doubles from gather to gather, and lasts only as long as the device
# takes to send GATHER_MOST_BYTES at the rate it sent last: what waits in the kernel stays
# well within a tty's buffers (a PTY holds 18 KiB; a UART's tty 4 KiB of line discipline and
# 64 KiB of flip buffers), and a flood that begins costs one short gather, not a long one.
GATHER_MOST_BYTES = 12 * 1024
# A flood is not gathered: waiting would let the kernel's buffer fill and stall the device. A
# gather that brings more than FLOOD_BYTES_PER_SECOND would (136 KB/s), or more than
# FLOOD_GATHER_BYTES (what only a full PTY or a flood brings), starts a flood; it ends when a
# FLOOD_WINDOW_SECONDS window brings less than that rate. So at most that rate times the
# gather (6.8 KB at 50 ms) or FLOOD_GATHER_BYTES waits in the kernel's buffers.
FLOOD_GATHER_BYTES = 16 * 1024
FLOOD_BYTES_PER_SECOND = 136_000
FLOOD_WINDOW_SECONDS = 0.1
DEVICE_GONE = 3


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, READ_SIZE)
    except (BlockingIOError, InterruptedError):
        return b""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _gather_asked(words: bytes, current: float) -> float:
    """The last gather in the reader's ``words`` (lines of seconds), within GATHER_RANGE."""
    for line in reversed(words.split()):
        try:
            return min(max(float(line), GATHER_RANGE[0]), GATHER_RANGE[1])
        except ValueError:
            continue
    return current


def relay(device: int, out: int, stop: int, gather_seconds: float = GATHER_SECONDS) -> int:
    flooding = False  # read as fast as the device sends
    gathering = False  # a trickle: sleep GATHER_SECONDS, then take what came (one wake-up)
    window_start, window_bytes = 0.0, 0
    wait = gather_seconds  # this gather's length
    rate = 0.0  # bytes per second the device sent before the last read
    last_read = time.monotonic()
    poller = select.poll()
    poller.register(stop, select.POLLIN)
    poller.register(device, select.POLLIN)
    while True:
        # While gathering, the device wakes this loop only when it hangs up (an unplug: poll
        # always reports POLLHUP and POLLERR), so an outage is timed from when it began, not
        # from the end of a gather; its data waits in the kernel for the gather's end.
        poller.modify(device, 0 if gathering else select.POLLIN)
        ready = [fd for fd, _ in poller.poll(wait * 1000 if gathering else None)]
        if stop in ready:
            words = os.read(stop, 256)
            if not words:
                return 0  # between two reads: what the device sent since stays in the kernel
            gather_seconds = _gather_asked(words, gather_seconds)
            wait = min(wait, gather_seconds)  # shorter at once; longer a doubling at a time
            continue  # a gather in progress starts again
        data = b""
        try:
            data = _read(device)
            if gathering:  # take all that came meanwhile (a tty read returns 4 KiB at most)
                while data and len(data) < READ_SIZE and (more := _read(device)):
                    data += more
        except OSError as error:  # EIO and the like: the device is gone
            if data:  # what it sent before it went is the reader's
                try:
                    _write_all(out, data)
                except BrokenPipeError:
                    pass
            sys.stderr.write(f"{error}\n")
            return DEVICE_GONE
        now = time.monotonic()
        rate, last_read = len(data) / max(now - last_read, 0.001), now
        if not data:
            if gathering:  # nothing came (VMIN=0): wait on the device again
                gathering = False
                continue
            # A vanished device (unplugged USB adapter, closed PTY) reads ready but empty.
            sys.stderr.write(
                "device reports readiness to read but returned no data (device disconnected?)\n"
            )
            return DEVICE_GONE
        if flooding:
            window_bytes += len(data)
            elapsed = time.monotonic() - window_start
            if elapsed >= FLOOD_WINDOW_SECONDS:
                flooding = window_bytes >= FLOOD_BYTES_PER_SECOND * elapsed
                gathering = not flooding
                wait = min(GATHER_SECONDS, gather_seconds)
                window_start, window_bytes = time.monotonic(), 0
        elif gathering and len(data) >= min(FLOOD_BYTES_PER_SECOND * wait, FLOOD_GATHER_BYTES):
            flooding, gathering = True, False
            window_start, window_bytes = time.monotonic(), 0
        else:
            starts = not gathering
            gathering = len(data) < GATHER_BELOW_BYTES or gathering
            if gathering:
                wait = min(GATHER_SECONDS, gather_seconds) if starts else wait * 2
                wait = min(wait, gather_seconds, GATHER_MOST_BYTES / max(rate, 1.0))
        try:
            _write_all(out, data)
        except BrokenPipeError:  # the reader is gone
            return 0


def main(argv: list[str]) -> int:
    # The reader decides when this ends (STOP_FD), also when a terminal's Ctrl-C or systemd's
    # stop signals the whole group: dying at a signal could drop a read not yet written.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    device, out, stop = (int(arg) for arg in argv[1:4])
    gather = float(argv[4]) if len(argv) > 4 else GATHER_SECONDS
    return relay(device, out, stop, gather)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
