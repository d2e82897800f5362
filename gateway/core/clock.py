"""Can the wall clock be trusted? Steps of the wall clock against a steady one, and what the
kernel's NTP state says about synchronization. No I/O, no clock: readings are arguments.

A Raspberry Pi has no real-time clock: it boots with the time it last saved (or older), and the
clock jumps when NTP first reaches a server. Every ``received_at`` stored before that jump is
off by the jump. :class:`StepDetector` compares the wall clock with a steady clock (one that
only moves forward at the rate of time, e.g. ``CLOCK_BOOTTIME``) at each look: slewing changes
their difference by at most 500 ppm (0.5 ms per second), a step by the whole correction at once.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A change of wall minus steady above this between two looks is a step. Every NTP client steps
#: only above its own limit (ntpd 0.128 s, systemd-timesyncd 0.4 s, Debian's chrony 1 s) and
#: slews below it, at most 0.5 ms per second: 0.1 s is a step even after a 60 s stall.
STEP_THRESHOLD_SECONDS = 0.1

#: The kernel's NTP maximum error when nothing has synchronized the clock (NTP_PHASE_LIMIT): it
#: starts there at boot, an NTP client lowers it, and it grows 0.5 ms per second without one.
MAXERROR_UNSYNCED_US = 16_000_000


@dataclass(frozen=True, slots=True)
class ClockStep:
    """The wall clock moved by ``step_seconds`` (positive: forward) just before ``at`` (the wall
    time after the step)."""

    at: float
    step_seconds: float


class StepDetector:
    """Feed it ``observe(wall, steady)`` now and then; it returns a :class:`ClockStep` when the
    wall clock jumped since the previous look, else None."""

    def __init__(self, threshold_seconds: float = STEP_THRESHOLD_SECONDS) -> None:
        self.threshold_seconds = threshold_seconds
        self._offset: float | None = None  # wall - steady at the previous look

    def observe(self, wall: float, steady: float) -> ClockStep | None:
        offset = wall - steady
        previous, self._offset = self._offset, offset
        if previous is None or abs(offset - previous) < self.threshold_seconds:
            return None  # slewing moves the offset a little at each look: never adds up here
        return ClockStep(at=wall, step_seconds=offset - previous)


def synchronized_from_timex(maxerror_us: int) -> bool:
    """Whether the kernel's clock is synchronized, from ``adjtimex``'s maximum error, by the
    rule ``timedatectl``'s NTPSynchronized uses (systemd's ``ntp_synced``). STA_UNSYNC alone
    misleads: clients that keep the kernel off the RTC set it while synchronized."""
    return maxerror_us < MAXERROR_UNSYNCED_US


def synchronized_from_timedatectl(output: str) -> bool | None:
    """``timedatectl show -p NTPSynchronized --value`` prints yes or no; None for anything
    else (no such property, an error text)."""
    return {"yes": True, "no": False}.get(output.strip())


@dataclass(frozen=True, slots=True)
class RunClock:
    """What a reader run recorded of the clock as it began (its ``runs`` ledger entry)."""

    at: float  # wall time at the start
    pid: int
    first_seq: int
    synced: bool | None


@dataclass(frozen=True, slots=True)
class StepSeen:
    """A step of the wall clock a reader recorded (its ``clock steps`` ledger entry)."""

    at: float  # wall time after the step
    step_seconds: float
    synced: bool | None
    pid: int


def batch_clock(
    first_seq: int, earliest: float, runs: list[RunClock], steps: list[StepSeen]
) -> str:
    """Whether a batch's ``received_at`` stamps were taken on a synchronized clock: "synced",
    "unsynced" (some may be off by a step still to come, or one the ledger names) or "unknown"
    (no run, or a clock whose state could not be read).

    The batch belongs to the last run that began at or before its first seq. A run that began
    unsynchronized counts as synced for this batch once that same run (same pid, the step's
    time before it after the run's start) saw a step to a synchronized clock no later than the
    batch's earliest row.
    """
    run = None
    for candidate in runs:
        if candidate.first_seq <= first_seq and (
            run is None or candidate.first_seq >= run.first_seq
        ):
            run = candidate
    if run is None:
        return "unknown"
    if run.synced:
        return "synced"
    for step in steps:
        during_run = step.pid == run.pid and step.at - step.step_seconds >= run.at
        if during_run and step.synced and step.at <= earliest:
            return "synced"
    return "unknown" if run.synced is None else "unsynced"
