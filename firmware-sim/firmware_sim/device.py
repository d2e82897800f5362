"""The simulated monitor as a sequence of actions (pure, sans-I/O).

``Device.next_action()`` says what to do next: send bytes once sample ``n`` is due, start a
burst, pause, or unplug the port. The shell (``runner.py``) waits for the due time and does
it; the device never reads a clock. Each action caused by a fault carries its fault-log entry
(everything but ``at``, which only the shell knows).
"""

import random
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from firmware_sim.fault_plan import (
    INVALID_UTF8_BYTES,
    FaultPlanner,
    garbage_bytes,
    insert_byte,
    pad_number,
    truncate_line,
)
from firmware_sim.fault_spec import REPLACING_KINDS, FaultRule
from firmware_sim.line_formats import LineEncoder, format_numbers, format_time
from firmware_sim.waveforms import SignalGenerator

FaultEntry = dict[str, Any]


@dataclass(slots=True)
class Sample:
    n: int
    body: bytes  # the clean line without its terminator
    terminator: bytes
    t: bytes | None = None  # field texts, kept so a fault can rebuild a generated line
    channels: tuple[bytes, ...] | None = None


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``data`` once sample ``n`` is due (a garbage line is due with the line it precedes)."""

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


class GeneratedLines:
    """Samples 0, 1, 2, ... of a waveform, encoded as lines (``samples`` of them, or endless)."""

    def __init__(
        self,
        generator: SignalGenerator,
        encoder: LineEncoder,
        decimals: int,
        terminator: bytes,
        samples: int | None,
    ):
        self._generator = generator
        self._encoder = encoder
        self._rate = generator.rate
        self._decimals = decimals
        self._terminator = terminator
        self._samples = samples
        self._n = 0

    def next_sample(self) -> Sample | None:
        n = self._n
        if self._samples is not None and n >= self._samples:
            return None
        self._n = n + 1
        t = format_time(n, self._rate).encode()
        channels = format_numbers(self._generator.values(n), self._decimals)
        return Sample(n, self._encoder.encode(n, t, channels), self._terminator, t, channels)

    def skip(self, count: int) -> int:
        """Generate and drop up to ``count`` samples (fewer at the end); return how many."""
        skipped = 0
        while skipped < count and (self._samples is None or self._n < self._samples):
            self._generator.values(self._n)
            self._n += 1
            skipped += 1
        return skipped

    def rebuild(self, sample: Sample, channels: Sequence[bytes]) -> bytes:
        assert sample.t is not None
        return self._encoder.encode(sample.n, sample.t, channels)


class ReplayedLines:
    """The lines of a recording (see ``recording.replay_lines``), sample ``n`` = line ``n``."""

    def __init__(self, lines: Iterable[bytes], samples: int | None):
        self._lines: Iterator[bytes] = iter(lines)
        self._samples = samples
        self._n = 0

    def next_sample(self) -> Sample | None:
        if self._samples is not None and self._n >= self._samples:
            return None
        line = next(self._lines, None)
        if line is None:
            return None
        n, self._n = self._n, self._n + 1
        terminator = b"\r\n" if line.endswith(b"\r\n") else b"\n"
        return Sample(n, line[: -len(terminator)], terminator)

    def skip(self, count: int) -> int:
        skipped = 0
        while skipped < count and self.next_sample() is not None:
            skipped += 1
        return skipped


LineSource = GeneratedLines | ReplayedLines


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
    lines, a burst (the first), then the first replacing fault (truncated, overlong, utf8).
    Dropped faults are not logged.
    """

    def __init__(
        self,
        source: LineSource,
        rate: float,
        terminator: bytes,
        rules: Sequence[FaultRule] = (),
        fault_rng: random.Random | None = None,
    ):
        self._source = source
        self._rate = rate
        self._terminator = terminator
        self._fault_rng = fault_rng if fault_rng is not None else random.Random(0)
        self._planner = FaultPlanner(rules, self._fault_rng) if rules else None
        self._queue: deque[Action] = deque()
        self._peeked: Sample | None = None

    def next_action(self) -> Action | None:
        """The next thing to do, or None when the run is over."""
        if self._queue:
            return self._queue.popleft()
        sample = self._next_sample()
        if sample is None:
            return None
        if self._planner is None:
            return Send(sample.n, sample.body + sample.terminator)
        fired = self._planner.fired(sample.n)
        if not fired:
            return Send(sample.n, sample.body + sample.terminator)
        self._plan_faults(sample, fired)
        return self._queue.popleft()

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
                return
            queue.append(Unplug(n, seconds, resume, False, entry))
        for rule in fired:
            if rule.kind == "pause":
                seconds = float(rule.param)  # type: ignore[arg-type]
                queue.append(Pause(n, seconds, _entry("pause", n, seconds=seconds)))
        for rule in fired:
            if rule.kind == "garbage":
                count = int(rule.param)  # type: ignore[arg-type]
                data = garbage_bytes(count, self._fault_rng) + self._terminator
                queue.append(Send(n, data, _entry("garbage", n, rejected=1, bytes=count)))
        burst = next((r for r in fired if r.kind == "burst"), None)
        if burst is not None:
            lines = int(burst.param)  # type: ignore[arg-type]
            entry = _entry("burst", n, lines=lines, last=n + lines - 1)
            queue.append(Burst(n, lines, entry))
        replacing = next((r for r in fired if r.kind in REPLACING_KINDS), None)
        if replacing is None:
            queue.append(Send(n, sample.body + sample.terminator))
            return
        body, fields = self._replace(sample, replacing)
        entry = _entry(replacing.kind, n, lost=1, rejected=1, bytes=len(body), **fields)
        queue.append(Send(n, body + sample.terminator, entry))

    def _replace(self, sample: Sample, rule: FaultRule) -> tuple[bytes, dict[str, int]]:
        """The line that replaces ``sample``'s (without terminator), and log fields."""
        body, rng = sample.body, self._fault_rng
        if rule.kind == "truncated":
            return truncate_line(body), {}
        if rule.kind == "overlong":
            length = int(rule.param)  # type: ignore[arg-type]
            extra = length - len(body)
            if sample.channels is None or not isinstance(self._source, GeneratedLines):
                return body + b"0" * max(extra, 0), {}
            # Pad the last channel's number: the line is valid but for its length.
            channels = (*sample.channels[:-1], pad_number(sample.channels[-1], extra))
            return self._source.rebuild(sample, channels), {}
        byte = rng.choice(INVALID_UTF8_BYTES)
        if sample.channels is None or not isinstance(self._source, GeneratedLines):
            offset = rng.randint(min(1, len(body)), len(body))
            return insert_byte(body, offset, byte), {"byte": byte, "offset": offset}
        k = rng.randrange(len(sample.channels))
        field = sample.channels[k]
        channels = list(sample.channels)
        channels[k] = insert_byte(field, rng.randint(0, len(field)), byte)
        new_body = self._source.rebuild(sample, channels)
        # The first byte that differs is the inserted one (it may be the new last byte).
        differs = (i for i, (a, b) in enumerate(zip(body, new_body, strict=False)) if a != b)
        offset = next(differs, len(body))
        return new_body, {"byte": byte, "offset": offset}

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
