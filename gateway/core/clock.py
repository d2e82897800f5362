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
