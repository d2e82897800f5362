"""Bytes from the port in; records, rejections and device-side gaps out. No I/O.

This is the reader's core, fed by a thin serial shell: ``feed`` what a read returned,
``port_opened`` / ``port_lost`` when the port comes and goes. It owns two rules that decide
what counts as data:

* After a port is opened, the first line may be the tail of a line whose head was read by an
  earlier process (or never read). Unless a clean stop left the unfinished line behind
  (``port_opened(fragment)``), a first line that does not decode is counted as
  ``partial_first_line`` rather than as a device error.
* When the device counts its lines (csv-seq, json, nmea), a jump in that counter is a gap on the
  device side of the reader: where it happened and how many lines are missing is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.core.framing import LineFramer
from gateway.core.records import Codec, Decoded, Reason, Rejection


@dataclass(frozen=True, slots=True)
class DeviceGap:
    """Device counter jumped from ``after`` over ``missing`` lines, at ``index`` in records."""

    index: int
    after: int
    missing: int


@dataclass(frozen=True, slots=True)
class CounterReset:
    """Device counter went back (``last`` -> ``first``): a device restart or a repeated line."""

    index: int
    last: int
    first: int


class CounterTracker:
    """Follows the device counter across reads and restarts of the reader."""

    def __init__(self, last: int | None = None) -> None:
        self.last = last

    def observe(self, counters: Sequence[int]) -> list[DeviceGap | CounterReset]:
        if not counters:
            return []
        first, count = counters[0], len(counters)
        if (self.last is None or first == self.last + 1) and (
            (isinstance(counters, range) and counters.step == 1)
            or (counters[-1] - first == count - 1 and counters == list(range(first, first + count)))
        ):
            self.last = counters[-1]
            return []
        events: list[DeviceGap | CounterReset] = []
        last = self.last
        for index, counter in enumerate(counters):
            if last is not None:
                if counter > last + 1:
                    events.append(DeviceGap(index, last, counter - last - 1))
                elif counter <= last:
                    events.append(CounterReset(index, last, counter))
            last = counter
        self.last = last
        return events


@dataclass(slots=True)
class Intake:
    """The result of one ``feed``: accepted records in order, and everything else."""

    records: list[bytes] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    events: list[DeviceGap | CounterReset] = field(default_factory=list)


class LineIntake:
    """Framer + codec + counter tracker, with the port open/lost rules."""

    def __init__(
        self, framer: LineFramer, codec: Codec, tracker: CounterTracker | None = None
    ) -> None:
        self.framer = framer
        self.codec = codec
        self.tracker = tracker or CounterTracker()
        self._first_line_suspect = False

    def port_opened(self, fragment: bytes = b"") -> None:
        """A port was (re)opened. ``fragment``: the unfinished line a clean stop handed over."""
        self.framer.reset()
        if fragment:
            self.framer.feed(fragment)
            self._first_line_suspect = False
        else:
            self._first_line_suspect = True

    def port_lost(self) -> int:
        """The port went away: drop the unfinished line; return its length in bytes."""
        return self.framer.reset()

    def _first_line_problem(self, line: bytes) -> str | None:
        """Why the first line after an open looks like the tail of a line, or None.

        A tail that starts inside the device counter still decodes (``21,0.2105,...`` cut from
        ``421,0.2105,...``), but its counter does not follow the last one stored. (A device
        that restarted at the same moment loses its first line to this rule, counted.)
        """
        first = self.codec.decode([line])
        if first.rejections:
            return first.rejections[0].detail
        last = self.tracker.last
        if first.counters and last is not None and first.counters[0] <= last:
            return f"counter {first.counters[0]} does not follow {last}"
        return None

    def feed(self, data: bytes) -> Intake:
        lines = self.framer.feed(data)
        overlong = self.framer.take_overlong()
        result = Intake()
        limit = self.framer.max_line_bytes
        for length, head in overlong:
            result.rejections.append(
                Rejection(
                    Reason.TOO_LONG,
                    f"line exceeds {limit} bytes ({length} read); skipped to next terminator",
                    head,
                    length,
                )
            )
        if self._first_line_suspect and (lines or overlong):
            self._first_line_suspect = False
            if lines and not overlong:
                problem = self._first_line_problem(lines[0])
                if problem:
                    result.rejections.append(
                        Rejection(
                            Reason.PARTIAL_FIRST_LINE,
                            f"first line after opening the port is incomplete ({problem})",
                            lines[0],
                            len(lines[0]),
                        )
                    )
                    lines = lines[1:]
        if lines:
            decoded: Decoded = self.codec.decode(lines)
            result.records = decoded.records
            result.rejections.extend(decoded.rejections)
            if decoded.counters is not None:
                result.events = self.tracker.observe(decoded.counters)
        return result
