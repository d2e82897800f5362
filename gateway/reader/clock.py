"""The reader's view of the wall clock: is it synchronized, and did it step?

Synchronization is asked of the kernel: ``adjtimex`` (read-only, through ctypes: a system call,
no process, no bus) where the process may call it, else ``timedatectl show -p NTPSynchronized``,
which asks systemd-timedated, which asks the kernel the same way. The units set
``ProtectClock=yes``, whose seccomp filter refuses ``adjtimex`` even to read, so under systemd
the answer comes from ``timedatectl``; elsewhere (a container, a test) from ``adjtimex``. A
probe may wait on the bus, so after the first one at start a thread repeats it every
``RECHECK_SECONDS`` and at once after a step, off the main loop.

Steps are found on the main loop's ticks (:class:`~gateway.core.clock.StepDetector`: wall clock
against ``CLOCK_BOOTTIME``, which counts suspended time too), logged as ``clock_stepped`` and
recorded in the data dir's clock-steps ledger.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

from gateway.core.clock import (
    StepDetector,
    synchronized_from_timedatectl,
    synchronized_from_timex,
)
from gateway.logs import log_event
from gateway.store.layout import DataDir
from gateway.store.ledgers import ClockStepRecord, clock_steps

log = logging.getLogger("gateway.reader")

RECHECK_SECONDS = 60.0
TIMEDATECTL_SECONDS = 5.0  # systemd-timedated is started on demand: give it a moment


@dataclass(frozen=True, slots=True)
class ClockSync:
    synced: bool | None  # None: nothing could tell
    source: str  # "adjtimex", "timedatectl" or "none"


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """``struct timex`` of <sys/timex.h>; the kernel writes all of it, padding included."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


def adjtimex_synced() -> bool | None:
    """The kernel's answer (modes 0: read only); None where the call is refused (EPERM under
    ProtectClock=) or missing."""
    name = ctypes.util.find_library("c")
    try:
        adjtimex = ctypes.CDLL(name, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None
    timex = _Timex(modes=0)
    if adjtimex(ctypes.byref(timex)) < 0:
        return None
    return synchronized_from_timex(timex.maxerror)


def timedatectl_synced() -> bool | None:
    """systemd-timedated's NTPSynchronized; None without systemd or when it does not answer."""
    program = shutil.which("timedatectl")
    if program is None:
        return None
    try:
        done = subprocess.run(
            [program, "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=TIMEDATECTL_SECONDS,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return synchronized_from_timedatectl(done.stdout) if done.returncode == 0 else None


def probe_sync() -> ClockSync:
    for source, probe in (("adjtimex", adjtimex_synced), ("timedatectl", timedatectl_synced)):
        synced = probe()
        if synced is not None:
            return ClockSync(synced, source)
    return ClockSync(None, "none")


def steady_now() -> float:
    """Seconds that only move forward at the rate of time, suspended time included."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class ClockWatch:
    """:meth:`start` once (it probes and logs the state), :meth:`tick` from the main loop,
    :meth:`status` for the published status, :meth:`stop` at the end. Steps go to the ledger
    of ``data_dir`` (None: a mode that writes no files)."""

    def __init__(
        self,
        data_dir: DataDir | None,
        *,
        probe=probe_sync,
        detector: StepDetector | None = None,
        recheck_seconds: float = RECHECK_SECONDS,
    ) -> None:
        self.data_dir = data_dir
        self.probe = probe
        self.detector = detector or StepDetector()
        self.recheck_seconds = recheck_seconds
        self.at_start: ClockSync | None = None
        self._latest: ClockSync | None = None  # written by the probing thread
        self._reported: ClockSync | None = None  # what the log last said
        self.steps = 0
        self.last_step: dict | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()  # probe now (a step: the state may have changed)
        self._thread = threading.Thread(target=self._recheck, name="clock", daemon=True)

    @property
    def synced(self) -> bool | None:
        latest = self._latest
        return latest.synced if latest else None

    def start(self, wall: float | None = None, steady: float | None = None) -> ClockSync:
        self.at_start = self._latest = self._reported = self.probe()
        self.detector.observe(
            time.time() if wall is None else wall, steady_now() if steady is None else steady
        )
        log_event(
            log,
            logging.INFO if self.at_start.synced else logging.WARNING,
            "clock_state",
            synced=self.at_start.synced,
            source=self.at_start.source,
            **(
                {}
                if self.at_start.synced
                else {"hint": "timestamps may jump when the clock is set (a Pi has no RTC)"}
            ),
        )
        if self.recheck_seconds > 0:
            self._thread.start()
        return self.at_start

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def tick(self, wall: float | None = None, steady: float | None = None) -> None:
        wall = time.time() if wall is None else wall
        step = self.detector.observe(wall, steady_now() if steady is None else steady)
        latest, reported = self._latest, self._reported
        if latest is not None and reported is not None and latest.synced != reported.synced:
            self._reported = latest
            log_event(
                log,
                logging.INFO if latest.synced else logging.WARNING,
                "clock_synchronized" if latest.synced else "clock_unsynchronized",
                source=latest.source,
            )
        if step is None:
            return
        self._wake.set()
        self.steps += 1
        self.last_step = {"at": round(step.at, 3), "step_seconds": round(step.step_seconds, 3)}
        log_event(
            log,
            logging.WARNING,
            "clock_stepped",
            step_s=f"{step.step_seconds:+.3f}",
            synced=self.synced,
            hint="received_at before this jumped with the clock",
        )
        if self.data_dir is not None:
            record = ClockStepRecord(
                round(step.at, 3), round(step.step_seconds, 6), self.synced, os.getpid()
            )
            try:
                clock_steps(self.data_dir).append(record)
            except OSError as error:
                log_event(log, logging.WARNING, "clock_step_not_recorded", error=str(error))

    def status(self) -> dict:
        latest, first = self._latest, self.at_start
        return {
            "synced": latest.synced if latest else None,
            "source": latest.source if latest else "none",
            "synced_at_start": first.synced if first else None,
            "steps": self.steps,
            "last_step": self.last_step,
        }

    def _recheck(self) -> None:
        while True:
            self._wake.wait(self.recheck_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                return
            self._latest = self.probe()
