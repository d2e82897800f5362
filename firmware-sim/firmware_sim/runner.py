"""The main loop: take the device's actions, wait until each is due, do it (I/O shell).

Lines due at the same wake-up go out in one write, so a late wake-up never slows the mean
rate; the schedule itself lives in ``pacing.Schedule``.
"""

import json
import time
from collections.abc import Callable
from typing import IO

from firmware_sim.device import Burst, Device, FaultEntry, Pause, Send, Unplug
from firmware_sim.pacing import Schedule
from firmware_sim.signal_wait import SignalWaiter
from firmware_sim.socat_link import SocatLink

MIN_SLEEP = 0.001  # at high rates, wake at most ~1000 times a second and write what is due
MAX_WRITE_BYTES = 65536  # re-read the clock (and check for signals) at least this often
# After a reader opens the port: pyserial flushes its input right after open(), and nothing
# tells us when it did, so give it this long before the first byte.
READER_GRACE = 0.05
DRAIN_SETTLE = 0.02  # "all read" must hold this long (socat moves data in steps)
DRAIN_POLL = 0.001
TAKE_UNREAD_LIMIT = 2.0  # to read out the tail nobody read, after the drain timeout
WRITE_STALL_CHECK = 0.5  # while the port is full, check this often that socat is alive


class NobodyReads(Exception):
    """The port stayed full for the whole ``--drain-timeout``: nobody reads it."""


class Runner:
    def __init__(
        self,
        device: Device,
        link: SocatLink,
        waiter: SignalWaiter,
        rate: float,
        drain_timeout: float,
        fault_log: IO[str] | None,
        note: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.device = device
        self.link = link
        self.waiter = waiter
        self.rate = rate
        self.drain_timeout = drain_timeout
        self.fault_log = fault_log
        self.note = note
        self.clock = clock
        self.start: float | None = None
        self.end: float | None = None
        self.lines_sent = 0
        self.bytes_sent = 0
        self.stalled = False  # True if the run ended because nobody read the port

    def run(self) -> int:
        """Send everything, wait for the reader to read it; return the bytes never read.

        If the port stays full for ``drain_timeout`` (nobody reads), the run ends early with
        ``stalled`` set, and the return value counts the bytes sent that were never read.
        """
        try:
            return self._send_all()
        except NobodyReads:
            self.stalled = True
            self.end = self.clock()
            return self.drain(timeout=0.0)

    def _send_all(self) -> int:
        link, waiter, clock = self.link, self.waiter, self.clock
        link.plug()
        waiter.wait(READER_GRACE)
        self.start = now = clock()
        schedule = Schedule(self.rate, self.start)
        chunks: list[bytes] = []
        pending = 0
        burst_end = 0
        action = self.device.next_action()
        while action is not None:
            waiter.check()
            n = action.n
            if n >= burst_end and schedule.due_time(n) > now:
                now = clock()
                if schedule.due_time(n) > now:
                    if chunks:
                        self._write(b"".join(chunks))
                        chunks, pending = [], 0
                    else:
                        waiter.wait(max(schedule.due_time(n) - now, MIN_SLEEP))
                    now = clock()
                    continue
            kind = type(action)
            if kind is Send:
                chunks.append(action.data)
                pending += len(action.data)
                self.lines_sent += 1
                if action.fault is not None:
                    self._log(action.fault, now)
                if pending >= MAX_WRITE_BYTES:
                    self._write(b"".join(chunks))
                    chunks, pending = [], 0
                    now = clock()
            elif kind is Burst:
                burst_end = n + action.lines
                self._log(action.fault, now)
            else:
                if chunks:
                    self._write(b"".join(chunks))
                    chunks, pending = [], 0
                burst_end = 0
                if kind is Pause:
                    schedule.delay(action.seconds)
                    self._log(action.fault, now)
                else:
                    self._unplug(action)
                    now = clock()
                    schedule.restart(action.resume_n, now)
            action = self.device.next_action()
        if chunks:
            self._write(b"".join(chunks))
        self.end = clock()
        return self.drain() if link.plugged else 0

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        full_since = None
        while view:
            count = self.link.write_some(view)
            if count:
                view = view[count:]
                self.bytes_sent += count
                full_since = None
                continue
            now = self.clock()
            full_since = now if full_since is None else full_since
            if now - full_since >= self.drain_timeout:
                raise NobodyReads()
            left = self.drain_timeout - (now - full_since)
            if not self.waiter.wait_writable(self.link.device_fd, min(WRITE_STALL_CHECK, left)):
                self.link.check_alive()

    def _log(self, entry: FaultEntry, now: float) -> None:
        if self.fault_log is None:
            return
        assert self.start is not None
        record = {"fault": entry["fault"], "n": entry["n"], "at": round(now - self.start, 6)}
        record.update((key, value) for key, value in entry.items() if key not in record)
        self.fault_log.write(json.dumps(record) + "\n")
        self.fault_log.flush()

    def _unplug(self, action: Unplug) -> None:
        unread = self.drain()
        self.link.unplug()
        self._log({**action.fault, "unread_bytes": unread}, self.clock())
        lost = action.fault["lines_lost"]
        self.note(f"unplugged {self.link.link} for {action.seconds:g} s; {lost} samples lost")
        self.waiter.wait(action.seconds)
        if action.last:
            return
        self.link.plug()
        self.waiter.wait(READER_GRACE)

    def drain(self, timeout: float | None = None) -> int:
        """Wait until the reader has read everything written; return the bytes it never read.

        After ``timeout`` (default ``drain_timeout``) the simulator reads the rest out of the
        gateway end itself, so the count is exact: every byte is read by the reader or by us.
        """
        link, waiter, clock = self.link, self.waiter, self.clock
        deadline = clock() + (self.drain_timeout if timeout is None else timeout)
        quiet_since = None
        while True:
            now = clock()
            if link.unread_bytes() == 0:
                quiet_since = now if quiet_since is None else quiet_since
                if now - quiet_since >= DRAIN_SETTLE:
                    return 0
            else:
                quiet_since = None
                link.check_alive()
            if now >= deadline:
                break
            waiter.wait(DRAIN_POLL)
        taken = 0
        quiet_since = None
        deadline = clock() + TAKE_UNREAD_LIMIT
        while True:
            taken += link.take_unread()
            now = clock()
            left = link.unread_bytes()
            if left == 0:
                quiet_since = now if quiet_since is None else quiet_since
                if now - quiet_since >= DRAIN_SETTLE:
                    return taken
            else:
                quiet_since = None
            if now >= deadline:
                return taken + left
            waiter.wait(DRAIN_POLL)
