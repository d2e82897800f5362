"""The simulated monitor as a sequence of actions (pure, sans-I/O).

``Device.next_action()`` says what to do next: send bytes once sample ``n`` is due, start a
burst, pause, or unplug the port. The shell (``runner.py``) waits for the due time and does
it; the device never reads a clock. Each action caused by a fault carries its fault-log entry
(everything but ``at``, which only the shell knows).
"""

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from firmware_sim.fault_plan import (
    INVALID_UTF8_BYTES,
    FaultPlanner,
    garbage_bytes,
    has_checksum,
    insert_byte,
    pad_number,
    paddable_field,
    wrong_checksum,
)
from firmware_sim.fault_spec import REPLACING_KINDS, FaultRule
from firmware_sim.line_sources import LineSource, Sample

FaultEntry = dict[str, Any]
# overlong rebuilds the line until it has the asked length: once, or twice when padding a field
# also shrinks what surrounds it (aligned columns lose their padding spaces first).
OVERLONG_REBUILDS = 3


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``data`` once sample ``n`` is due (a garbage line, or a line the device prints at
    boot, is due with the line it precedes)."""

    n: int
    data: bytes
    fault: FaultEntry | None = None


@dataclass(frozen=True, slots=True)
class Burst:
    """Samples ``n`` .. ``n + lines - 1`` are due at once, when ``n`` is; the schedule is kept."""

    n: int
    lines: int
    fault: FaultEntry


@dataclass(frozen=True, slots=True)
class Pause:
    """Once ``n`` is due, everything from ``n`` on is due ``seconds`` later."""

    n: int
    seconds: float
    fault: FaultEntry


@dataclass(frozen=True, slots=True)
class Unplug:
    """Once ``n`` is due, remove the port for ``seconds``; then ``resume_n`` is due at once.

    ``last`` is True when the unplug lost every remaining sample: nothing follows it.
    """

    n: int
    seconds: float
    resume_n: int
    last: bool
    fault: FaultEntry


Action = Send | Burst | Pause | Unplug


@dataclass(frozen=True, slots=True)
class Replacement:
    """The line (without terminator) a replacing fault sends, its log fields, and how many
    lines a receiver of the format rejects because of it (0 or 1)."""

    line: bytes
    log: dict[str, Any]
    rejected: int


def _entry(kind: str, n: int, lost: int = 0, rejected: int = 0, **fields: Any) -> FaultEntry:
    return {
        "fault": kind,
        "n": n,
        **fields,
        "lines_lost": lost,
        "first_lost": n if lost else None,
        "last_lost": n + lost - 1 if lost else None,
        "rejected": rejected,
    }


class Device:
    """Turns samples and fault rules into actions.

    At one sample, faults take effect in this order: an unplug (the first one that fired;
    if it loses the sample, every other fault at that sample is dropped), pauses, garbage
    lines, a burst (the first), then the first replacing fault (truncated, overlong, utf8,
    badsum) that applies to the line (badsum needs a checksum, truncated a non-empty line).
    Dropped faults are not logged.

    The source's boot lines (if any) go out before the first sample, and again before the
    first sample after each replug when ``reboot_on_replug`` is set.
    """

    def __init__(
        self,
        source: LineSource,
        rate: float,
        terminator: bytes,
        rules: Sequence[FaultRule] = (),
        fault_rng: random.Random | None = None,
        reboot_on_replug: bool = False,
    ):
        self._source = source
        self._rate = rate
        self._terminator = terminator
        self._fault_rng = fault_rng if fault_rng is not None else random.Random(0)
        self._planner = FaultPlanner(rules, self._fault_rng) if rules else None
        self._queue: deque[Action] = deque()
        self._peeked: Sample | None = None
        self._boot_lines = source.boot_lines
        self._reboot_on_replug = reboot_on_replug and bool(self._boot_lines)
        self._booting = bool(self._boot_lines)  # the boot lines are still to be sent

    def next_action(self) -> Action | None:
        """The next thing to do, or None when the run is over."""
        if self._queue:
            return self._queue.popleft()
        sample = self._next_sample()
        if sample is None:
            return None
        if self._booting:
            return self._boot(sample)
        if self._planner is None:
            return Send(sample.n, sample.body + sample.terminator)
        fired = self._planner.fired(sample.n)
        if not fired:
            return Send(sample.n, sample.body + sample.terminator)
        self._plan_faults(sample, fired)
        return self._queue.popleft()

    def _boot(self, sample: Sample) -> Action:
        """The boot lines, then ``sample`` with its faults."""
        self._queue_boot_lines(sample.n)
        fired = self._planner.fired(sample.n) if self._planner is not None else None
        if fired:
            self._plan_faults(sample, fired)
        else:
            self._queue.append(Send(sample.n, sample.body + sample.terminator))
        return self._queue.popleft()

    def _queue_boot_lines(self, n: int) -> None:
        self._booting = False
        self._queue.extend(Send(n, line) for line in self._boot_lines)

    def _plan_faults(self, sample: Sample, fired: list[FaultRule]) -> None:
        n, queue = sample.n, self._queue
        unplug = next((r for r in fired if r.kind == "unplug"), None)
        if unplug is not None:
            seconds = float(unplug.param)  # type: ignore[arg-type]
            wanted = round(seconds * self._rate)
            lost = 1 + self._source.skip(wanted - 1) if wanted else 0
            entry = _entry("unplug", n, lost, seconds=seconds)
            resume = n + lost
            if lost:
                nothing_left = self._peek_end()
                queue.append(Unplug(n, seconds, resume, nothing_left, entry))
                self._booting = self._reboot_on_replug and not nothing_left
                return
            queue.append(Unplug(n, seconds, resume, False, entry))
            if self._reboot_on_replug:
                self._queue_boot_lines(n)
        for rule in fired:
            if rule.kind == "pause":
                seconds = float(rule.param)  # type: ignore[arg-type]
                queue.append(Pause(n, seconds, _entry("pause", n, seconds=seconds)))
        for rule in fired:
            if rule.kind == "garbage":
                count = int(rule.param)  # type: ignore[arg-type]
                garbage = garbage_bytes(count, self._fault_rng, self._source.garbage_first_bytes)
                entry = _entry("garbage", n, rejected=1, bytes=count)
                queue.append(Send(n, garbage + self._terminator, entry))
        burst = next((r for r in fired if r.kind == "burst"), None)
        if burst is not None:
            lines = int(burst.param)  # type: ignore[arg-type]
            entry = _entry("burst", n, lines=lines, last=n + lines - 1)
            queue.append(Burst(n, lines, entry))
        for rule in fired:
            if rule.kind in REPLACING_KINDS:
                replaced = self._replace(sample, rule)
                if replaced is not None:
                    line = replaced.line
                    entry = _entry(
                        rule.kind, n, 1, replaced.rejected, bytes=len(line), **replaced.log
                    )
                    queue.append(Send(n, line + sample.terminator, entry))
                    return
        queue.append(Send(n, sample.body + sample.terminator))

    def _replace(self, sample: Sample, rule: FaultRule) -> Replacement | None:
        """What a replacing fault sends instead of ``sample``'s line; None if it cannot act."""
        if rule.kind == "truncated":
            return self._truncated(sample)
        if rule.kind == "badsum":
            return self._badsum(sample)
        if rule.kind == "overlong":
            return self._overlong(sample, int(rule.param))  # type: ignore[arg-type]
        return self._utf8(sample)

    def _truncated(self, sample: Sample) -> Replacement | None:
        cut = self._source.truncate(sample)
        if cut is None:
            return None
        return Replacement(cut, {}, 0 if self._source.keeps_cut_lines else 1)

    def _badsum(self, sample: Sample) -> Replacement | None:
        if not has_checksum(sample.body):
            return None
        wrong, correct = wrong_checksum(sample.body, self._fault_rng)
        fields = {"checksum": wrong[-2:].decode(), "correct_checksum": correct.decode()}
        return Replacement(wrong, fields, 1)

    def _overlong(self, sample: Sample, length: int) -> Replacement:
        """The line made ``length`` bytes long: a number padded with zeros (valid but for its
        length), or zeros appended to a line without fields."""
        k = paddable_field(sample.fields) if sample.fields is not None else None
        if sample.fields is None or k is None:
            return Replacement(sample.body + b"0" * max(length - len(sample.body), 0), {}, 1)
        fields, line = list(sample.fields), sample.body
        for _ in range(OVERLONG_REBUILDS):
            if len(line) >= length:
                break
            fields[k] = pad_number(fields[k], length - len(line))
            line = self._source.rebuild(sample, fields)
        return Replacement(line, {}, 1)

    def _utf8(self, sample: Sample) -> Replacement:
        """The line with an invalid byte in a random value field (or anywhere after the first
        byte of a line without fields)."""
        rng, body = self._fault_rng, sample.body
        byte = rng.choice(INVALID_UTF8_BYTES)
        if sample.fields is None:
            offset = rng.randint(min(1, len(body)), len(body))
            return Replacement(insert_byte(body, offset, byte), {"byte": byte, "offset": offset}, 1)
        k = rng.randrange(len(sample.fields))
        fields = list(sample.fields)
        fields[k] = insert_byte(fields[k], rng.randint(0, len(fields[k])), byte)
        line = self._source.rebuild(sample, fields)
        # A clean line is valid UTF-8, so the invalid byte occurs once: where it was inserted.
        return Replacement(line, {"byte": byte, "offset": line.index(byte)}, 1)

    def _next_sample(self) -> Sample | None:
        if self._peeked is not None:
            sample, self._peeked = self._peeked, None
            return sample
        return self._source.next_sample()

    def _peek_end(self) -> bool:
        """True if the source has no sample left (a sample read to find out is kept)."""
        if self._peeked is None:
            self._peeked = self._source.next_sample()
        return self._peeked is None
