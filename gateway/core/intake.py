"""Bytes from the port in; runs of records with their shape, rejections and events out. No I/O.

This is the reader's core, fed by a thin serial shell (h11's way: the caller feeds bytes and
takes what they completed):

* ``feed(data, at)`` with what a read returned and when it returned;
* ``port_opened(fragment)`` / ``port_lost()`` when the port comes and goes;
* ``release_overdue(at)`` now and then (a slow device's first lines wait at most
  ``hold_seconds``), and ``flush(at)`` at a clean stop (nothing held is lost).

Each returns an :class:`Intake`: runs of accepted records (:class:`Accepted`: the time their
read returned, their :class:`~gateway.core.codec.Shape`, the records), rejections (each with its
time) and events, in order. The rules it owns:

* **The first line after an open may be the tail of a cut line.** Unless a clean stop handed
  the unfinished line over (``port_opened(fragment)``), a first line that does not decode, or
  whose counter does not follow the last one stored (or is not followed by the next line's),
  is counted as ``partial_first_line``; it never counts as evidence for a shape.
* **A shape is learned from several lines.** Until the field count, separator, key set or
  (``auto``) format is known, complete lines are held, up to ``hold_lines`` / ``hold_bytes`` /
  ``hold_seconds``; then they are decoded with what was learned, not rejected.
  ``GATEWAY_FIELD_COUNT`` / ``GATEWAY_FIELD_NAMES`` fix the shape without learning.
* **A new shape is noticed.** Lines that do not fit the shape but agree with each other are
  held; ``confirm_lines`` of them in a row are a new shape (:class:`ShapeChanged`: the device
  restarted with new firmware, or printed a new header). Lines that fit neither are rejected.
* **A device counter that jumps is a gap** on the device side of the reader (csv-seq, json,
  nmea): where it happened and how many lines are missing is recorded.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from gateway.core.codec import Codec, Invalid, Layout, Reason, Rejection, Shape
from gateway.core.detect import (
    DETECT_LINES,
    AutoCodec,
    describe_layout,
    detect,
    learn_layout,
    value_columns,
)
from gateway.core.framing import LineFramer

#: Lines that must agree before a shape is learned or changed (K): one line may be a cut tail or
#: a stray, two may be a coincidence (a line truncated the same way twice), three in agreement
#: are the device's.
CONFIRM_LINES = 3
#: Security limits on what is held while a shape is unknown: a stream that never settles may not
#: grow memory; when one is reached the shape is decided with the lines there are. 64 lines is
#: 8 detection windows (room for a boot banner and noise); 256 KiB is 64 lines of 4 KiB.
HOLD_LINES = 64
HOLD_BYTES = 256 * 1024
#: A device that prints one line in several seconds gets its shape decided from fewer lines
#: rather than keep its first lines out of the batches (and out of a crash's reach) for long.
HOLD_SECONDS = 10.0


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceGap:
    """Device counter jumped from ``after`` over ``missing`` lines, before record ``index`` of
    run ``run`` (of the :class:`Intake` that carries it)."""

    index: int
    after: int
    missing: int
    run: int = 0


@dataclass(frozen=True, slots=True)
class CounterReset:
    """Device counter went back (``last`` -> ``first``): a device restart or a repeated line;
    at record ``index`` of run ``run``."""

    index: int
    last: int
    first: int
    run: int = 0


@dataclass(frozen=True, slots=True)
class FormatDetected:
    """``auto`` picked ``format`` after looking at ``lines_examined`` complete lines; the
    evidence is a sentence for the log (``format_detected``)."""

    format: str
    evidence: str
    lines_examined: int


@dataclass(frozen=True, slots=True)
class ShapeLearned:
    """The first shape, learned from the lines (a configured shape is never announced)."""

    shape: Shape
    evidence: str


@dataclass(frozen=True, slots=True)
class ShapeChanged:
    """Rows from here on have a new shape: seal the open batch, open one with the new header."""

    old: Shape
    new: Shape
    evidence: str


Event = DeviceGap | CounterReset | FormatDetected | ShapeLearned | ShapeChanged


class CounterTracker:
    """Follows the device counter across reads and restarts of the reader."""

    def __init__(self, last: int | None = None) -> None:
        self.last = last

    def observe(self, counters: Sequence[int], run: int = 0) -> list[DeviceGap | CounterReset]:
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
                    events.append(DeviceGap(index, last, counter - last - 1, run))
                elif counter <= last:
                    events.append(CounterReset(index, last, counter, run))
            last = counter
        self.last = last
        return events


# -- results --------------------------------------------------------------------------------


@dataclass(slots=True)
class Accepted:
    """Records of one shape whose read returned at ``received_at``, in order."""

    received_at: float | None
    shape: Shape
    records: list[bytes]


@dataclass(slots=True)
class Intake:
    """What one call returned: runs of accepted records in order, and everything else."""

    runs: list[Accepted] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(len(run.records) for run in self.runs)


@dataclass(slots=True)
class LegacyIntake:
    """What ``feed(data)`` without a time returns, for a reader that stores one shape and
    stamps a whole read with one time: records of the first shape only, and counter events
    indexed into ``records``. Records of a later shape are rejected, so no batch is ragged."""

    records: list[bytes] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    events: list[DeviceGap | CounterReset] = field(default_factory=list)


# -- states ---------------------------------------------------------------------------------


class Phase(enum.Enum):
    LEARNING = "learning"  # no shape yet: complete lines are held
    READING = "reading"  # lines are decoded with the shape as they come
    CHANGING = "changing"  # lines that do not fit the shape are held: a new one may be starting


class Step(enum.Enum):
    DECIDED = "a shape was decided from the held lines"
    MISFIT = "a line does not fit the shape but may start a new one"
    FIT = "a line fits the shape: the held lines fit neither and are rejected"
    CONFIRMED = "enough held lines agree: the shape changes"
    REFUSED = "the held lines agree on no shape auto reads: they are rejected"
    FLUSHED = "a flush rejected the held lines"


class Urgency(enum.Enum):
    """Why a shape is decided now: the lines agree, or it may wait no longer."""

    AGREED = "enough held lines agree"
    OVERDUE = "the oldest held line has waited hold_seconds"
    FULL = "hold_lines or hold_bytes is reached"
    STOP = "a clean stop"


#: Every legal move; anything else is a bug and raises, leaving the phase unchanged.
TRANSITIONS: dict[Phase, dict[Step, Phase]] = {
    Phase.LEARNING: {Step.DECIDED: Phase.READING},
    Phase.READING: {Step.MISFIT: Phase.CHANGING},
    Phase.CHANGING: {
        Step.MISFIT: Phase.CHANGING,
        Step.FIT: Phase.READING,
        Step.CONFIRMED: Phase.READING,
        Step.REFUSED: Phase.READING,
        Step.FLUSHED: Phase.READING,
    },
}


class _Line(NamedTuple):
    line: bytes
    at: float | None
    first: bool  # the first line after the port opened: maybe the tail of a cut line
    layouts: tuple = ()  # while learning: the layouts it fits (per candidate, for auto)


class _Misfit(NamedTuple):
    entry: _Line
    invalid: Invalid
    header: bool  # it leads the run and looks like a header line (it may name the new shape)


class _Output:
    """Collects one call's result; closes runs (and observes their counters) in order."""

    def __init__(self, tracker: CounterTracker) -> None:
        self.result = Intake()
        self._tracker = tracker
        self._run: Accepted | None = None
        self._counters: list[int] | None = None

    def accept(self, record: bytes, counter: int | None, at: float | None, shape: Shape) -> None:
        run = self._run
        if run is None or run.received_at != at or run.shape != shape:
            self.close_run()
            run = self._run = Accepted(at, shape, [])
            self.result.runs.append(run)
            self._counters = [] if shape.counter_field is not None else None
        run.records.append(record)
        if self._counters is not None:
            self._counters.append(counter)

    def accept_read(
        self,
        records: list[bytes],
        counters: Sequence[int] | None,
        at: float | None,
        shape: Shape,
    ) -> None:
        self.close_run()
        self.result.runs.append(Accepted(at, shape, records))
        if counters is not None:
            self._observe(counters)

    def close_run(self) -> None:
        if self._counters:
            self._observe(self._counters)
        self._run = None
        self._counters = None

    def _observe(self, counters: Sequence[int]) -> None:
        run = len(self.result.runs) - 1
        self.result.events.extend(self._tracker.observe(counters, run))

    def reject(self, reason: Reason, detail: str, entry: _Line) -> None:
        line = entry.line
        self.result.rejections.append(Rejection(reason, detail, line, len(line), entry.at))

    def event(self, event: Event) -> None:
        self.result.events.append(event)

    def finish(self) -> Intake:
        self.close_run()
        return self.result


class LineIntake:
    """Framer + codec + counter tracker, with the rules for first lines, shapes and gaps.

    ``codec`` comes from :func:`~gateway.core.records.make_codec`: with its layout known it is
    used as it is; otherwise (``auto``, or no field count configured) the layout, and for
    ``auto`` the format, are learned from the lines. The limits are named parameters with the
    defaults above and their reasons.
    """

    def __init__(
        self,
        framer: LineFramer,
        codec: Codec,
        tracker: CounterTracker | None = None,
        *,
        confirm_lines: int = CONFIRM_LINES,
        hold_lines: int = HOLD_LINES,
        hold_bytes: int = HOLD_BYTES,
        hold_seconds: float = HOLD_SECONDS,
    ) -> None:
        if confirm_lines < 1 or hold_lines < confirm_lines:
            raise ValueError(
                f"need 1 <= confirm_lines <= hold_lines, got {confirm_lines} and {hold_lines}"
            )
        if hold_bytes < 1 or hold_seconds <= 0:
            raise ValueError("hold_bytes and hold_seconds must be positive")
        self.framer = framer
        self.configured = codec
        self.tracker = tracker or CounterTracker()
        self.confirm_lines = confirm_lines
        self.hold_lines = hold_lines
        self.hold_bytes = hold_bytes
        self.hold_seconds = hold_seconds
        self._auto = codec if isinstance(codec, AutoCodec) else None
        self.phase = Phase.LEARNING
        self._codec: Codec | None = None
        self._shape: Shape | None = None
        self._codecs: dict[Shape, Codec] = {}
        if not codec.learns:
            self._set_codec(codec)
            self.phase = Phase.READING
        self._held: list[_Line] = []
        self._held_bytes = 0
        self._misfits: list[_Misfit] = []
        self._misfit_layouts: list[tuple[int, Layout]] = []
        self._first_line_suspect = False
        self._legacy_shape: Shape | None = None
        # Lines split at a line feed hold none: the whole-read path need not look for one.
        self._lf_free = framer.terminator == b"\n"

    # -- what the shell asks ----------------------------------------------------------------

    @property
    def codec(self) -> Codec:
        """The codec reading lines; the configured one while a shape is still being learned.

        (For a caller of ``feed(data)`` without a time: the codec of the shape it stores.)
        """
        if self._legacy_shape is not None:
            return self._codecs[self._legacy_shape]
        return self._codec or self.configured

    @property
    def shape(self) -> Shape | None:
        """The shape lines are read with now, or None while it is being learned."""
        return self._shape

    @property
    def held_lines(self) -> int:
        """Complete lines held, neither accepted nor rejected yet (at most ``hold_lines``
        while learning, fewer than ``confirm_lines`` plus a header line while changing)."""
        return len(self._held) + len(self._misfits)

    @property
    def held_bytes(self) -> int:
        return self._held_bytes + sum(len(misfit.entry.line) for misfit in self._misfits)

    def port_opened(self, fragment: bytes = b"") -> None:
        """A port was (re)opened. ``fragment``: the unfinished line a clean stop handed over."""
        self.framer.reset()
        if fragment:
            self.framer.feed(fragment)
            self._first_line_suspect = False
        else:
            self._first_line_suspect = True

    def port_lost(self) -> int:
        """The port went away: drop the unfinished line; return its length in bytes.

        Complete lines held stay held: they are decoded when the shape is known.
        """
        return self.framer.reset()

    def stream_interrupted(self) -> int:
        """Bytes between the last line and the next were lost (the hand-off overflowed): drop
        the unfinished line, and take the next line for what it may be, the tail of a cut one.
        Returns how many bytes of the unfinished line were dropped."""
        self._first_line_suspect = True
        return self.framer.reset()

    def feed(self, data: bytes, at: float | None = None) -> Intake | LegacyIntake:
        """Add what a read returned at ``at``; return what it completed (and what it released).

        Without ``at`` (a reader written before shapes) the result is a :class:`LegacyIntake`.
        """
        lines = self.framer.feed(data)
        overlong = self.framer.take_overlong()
        out = _Output(self.tracker)
        limit = self.framer.max_line_bytes
        for length, head in overlong:
            out.result.rejections.append(
                Rejection(
                    Reason.TOO_LONG,
                    f"line exceeds {limit} bytes ({length} read); skipped to next terminator",
                    head,
                    length,
                    at,
                )
            )
        first = False
        if self._first_line_suspect and (lines or overlong):
            self._first_line_suspect = False
            first = bool(lines) and not overlong
        if lines:
            self._take(lines, at, first, out)
        if at is not None:
            self._release_if_overdue(at, out)
        result = out.finish()
        return result if at is not None else self._legacy(result)

    def release_overdue(self, at: float) -> Intake:
        """Decide the shape if the oldest held line has waited ``hold_seconds`` by ``at``."""
        out = _Output(self.tracker)
        self._release_if_overdue(at, out)
        return out.finish()

    def flush(self, at: float | None = None) -> Intake:
        """A clean stop: decide with the lines held and release them; reject lines held as a
        possible new shape (fewer than ``confirm_lines`` agree). The unfinished line stays in
        the framer (``framer.take_pending()`` hands it over)."""
        out = _Output(self.tracker)
        if self.phase is Phase.LEARNING and self._held:
            self._decide(Urgency.STOP, out)
        if self.phase is Phase.CHANGING:
            self._drop_misfits(out)
            self._go(Step.FLUSHED)
        return out.finish()

    # -- states -----------------------------------------------------------------------------

    def _go(self, step: Step) -> None:
        try:
            self.phase = TRANSITIONS[self.phase][step]
        except KeyError:
            raise RuntimeError(f"no move from {self.phase.value} on {step.name}") from None

    def _set_codec(self, codec: Codec) -> None:
        self._codec = codec
        self._shape = codec.shape()
        self._codecs.setdefault(self._shape, codec)

    # -- learning ---------------------------------------------------------------------------

    def _take(self, lines: list[bytes], at: float | None, first: bool, out: _Output) -> None:
        if self.phase is not Phase.LEARNING:
            self._read(lines, at, first, out)
            return
        for index, line in enumerate(lines):
            self._hold(_Line(line, at, first and index == 0), out)
            if self.phase is not Phase.LEARNING:  # decided: the rest is read as it comes
                if index + 1 < len(lines):
                    self._read(lines[index + 1 :], at, False, out)
                return

    def _hold(self, entry: _Line, out: _Output) -> None:
        line = entry.line
        if self._auto is not None:
            layouts = self._auto.classify(line)
        else:
            try:
                layouts = self.configured.layouts(line)
            except Invalid:
                layouts = ()
        self._held.append(entry._replace(layouts=layouts))
        self._held_bytes += len(line)
        full = len(self._held) >= self.hold_lines or self._held_bytes >= self.hold_bytes
        self._decide(Urgency.FULL if full else Urgency.AGREED, out)

    def _release_if_overdue(self, at: float, out: _Output) -> None:
        if self.phase is not Phase.LEARNING or not self._held:
            return
        since = self._held[0].at
        if since is not None and at - since >= self.hold_seconds:
            self._decide(Urgency.OVERDUE, out)

    def _decide(self, urgency: Urgency, out: _Output) -> None:
        """Learn the shape from the held lines if they agree, or if it may wait no longer.

        The first line after an open is evidence only at a clean stop, when it is all there
        is; ``raw`` is chosen for lack of time only after a whole detection window.
        """
        held = self._held
        evidence = [entry for entry in held if not entry.first]
        if not evidence and urgency is Urgency.STOP:
            evidence = held
        if not evidence:
            return
        final = urgency is not Urgency.AGREED
        detected = None
        if self._auto is not None:
            detection = detect(
                [entry.line for entry in evidence],
                [entry.layouts for entry in evidence],
                self._auto,
                final=final,
                fallback=urgency is not Urgency.OVERDUE or len(evidence) >= DETECT_LINES,
            )
            if detection is None:
                return
            codec, because = detection.codec, detection.evidence
            detected = FormatDetected(codec.name, because, detection.lines_examined)
        else:
            learned = learn_layout(
                [entry.layouts for entry in evidence], confirm=self.confirm_lines, final=final
            )
            if learned is None:
                if final:  # not one line fits the format: each is rejected for its reason
                    self._held, self._held_bytes = [], 0
                    for entry in held:
                        self._reject_alone(entry, self.configured, out)
                return
            layout, support = learned
            codec = self.configured.with_layout(layout)
            because = f"{support} of {len(evidence)} lines have {describe_layout(codec, layout)}"
        header = self._find_header(codec, held)
        if header is not None:
            codec = codec.with_layout(codec.layout, header[0].line, header[1])
            because += "; a header line names them: " + ", ".join(header[1])
        self._set_codec(codec)
        self._go(Step.DECIDED)
        if detected is not None:
            out.event(detected)
        out.event(ShapeLearned(self._shape, because))
        self._held, self._held_bytes = [], 0
        self._release(held, header, out)

    def _reject_alone(self, entry: _Line, codec: Codec, out: _Output) -> None:
        try:
            codec.layouts(entry.line)
        except Invalid as invalid:
            self._reject(entry, invalid, out)
            return
        # It fits a layout, only not one enough lines agreed on.
        self._reject(entry, Invalid(Reason.FIELD_COUNT, "fits no layout other lines share"), out)

    def _reject(self, entry: _Line, invalid: Invalid, out: _Output) -> None:
        if entry.first:
            out.reject(
                Reason.PARTIAL_FIRST_LINE,
                f"first line after opening the port is incomplete ({invalid.detail})",
                entry,
            )
        else:
            out.reject(invalid.reason, invalid.detail, entry)

    def _find_header(
        self, codec: Codec, entries: Sequence[_Line]
    ) -> tuple[_Line, tuple[str, ...]] | None:
        """The header line among ``entries`` for ``codec``'s layout, with its names, or None.

        A header line is the last line of names before the first data line, and it stands
        out: in some column the data hold values, never a name (so a device printing only
        text has no header line).
        """
        if not codec.has_header_lines:
            return None
        layout = codec.layout
        header: tuple[_Line, tuple[str, ...]] | None = None
        data: list[bytes] = []
        for entry in entries:
            names = codec.header_names(entry.line, layout)
            if names is not None:
                if data:
                    break
                header = (entry, names)
                continue
            try:
                codec.decode_line(entry.line)
            except Invalid:
                continue
            data.append(entry.line)
        if header is None or not data or not value_columns(codec, layout, data):
            return None
        return header

    def _release(
        self,
        entries: Sequence[_Line],
        header: tuple[_Line, tuple[str, ...]] | None,
        out: _Output,
    ) -> None:
        rest = []
        for entry in entries:
            if header is not None and entry is header[0]:
                out.reject(
                    Reason.HEADER, "header line: names the columns " + ", ".join(header[1]), entry
                )
            else:
                rest.append(entry)
        self._read_entries(rest, out)

    # -- reading ----------------------------------------------------------------------------

    def _read(self, lines: list[bytes], at: float | None, first: bool, out: _Output) -> None:
        if first:  # judged with the line after it: both take the line-by-line path
            self._read_entries(
                [_Line(lines[0], at, True), *(_Line(x, at, False) for x in lines[1:2])], out
            )
            lines = lines[2:]
            if not lines:
                return
        if self.phase is Phase.READING:
            codec = self._codec
            fast = codec.decode_fast(lines, lf_free=self._lf_free)
            if fast is not None and (codec.header is None or codec.header not in lines):
                out.accept_read(fast[0], fast[1], at, self._shape)
                return
        self._read_entries([_Line(line, at, False) for line in lines], out)

    def _read_entries(self, entries: Sequence[_Line], out: _Output) -> None:
        for index, entry in enumerate(entries):
            codec = self._codec
            line = entry.line
            if entry.first:
                out.close_run()  # the counter tracker must have seen every earlier record
                following = entries[index + 1].line if index + 1 < len(entries) else None
                problem = self._first_line_problem(line, following)
                if problem is not None:
                    out.reject(
                        Reason.PARTIAL_FIRST_LINE,
                        f"first line after opening the port is incomplete ({problem})",
                        entry,
                    )
                    continue
            if codec.header is not None and line == codec.header:
                if self.phase is Phase.CHANGING:
                    self._drop_misfits(out)
                    self._go(Step.FIT)
                out.reject(Reason.HEADER, "header line repeated (the device restarted?)", entry)
                continue
            try:
                record, counter = codec.decode_line(line)
            except Invalid as invalid:
                self._misfit(entry, invalid, out)
                continue
            if self.phase is Phase.CHANGING:
                self._drop_misfits(out)
                self._go(Step.FIT)
            out.accept(record, counter, entry.at, self._shape)

    def _first_line_problem(self, line: bytes, following: bytes | None) -> str | None:
        """Why the first line after an open looks like the tail of a line, or None.

        A tail that starts inside the device counter still decodes (``21,0.2105,...`` cut from
        ``421,0.2105,...``), but its counter does not follow the last one stored, or is not
        followed by the next line's (``following``, when it is at hand). (A device that
        restarted, or lost a line, at that moment loses its first line to this rule, counted.)
        """
        codec = self._codec
        try:
            _, counter = codec.decode_line(line)
        except Invalid as invalid:
            return invalid.detail
        if counter is None:
            return None
        last = self.tracker.last
        if last is not None and counter <= last:
            return f"counter {counter} does not follow {last}"
        if (last is None or counter != last + 1) and following is not None:
            try:
                _, next_counter = codec.decode_line(following)
            except Invalid:
                return None
            if next_counter != counter + 1:
                return f"counter {counter} is not followed by {counter + 1} but by {next_counter}"
        return None

    # -- a new shape ------------------------------------------------------------------------

    def _misfit(self, entry: _Line, invalid: Invalid, out: _Output) -> None:
        """A line that does not fit the shape: rejected, or held if it may start a new one."""
        line = entry.line
        layouts = self._change_layouts(line)
        header = self._codec.header_candidate(line) is not None
        if not layouts:
            if not header:
                out.reject(invalid.reason, invalid.detail, entry)  # noise: it breaks no run
                return
            # Names, not data: the lines of a new shape may follow. What was held fits neither.
            self._drop_misfits(out)
            self._misfits.append(_Misfit(entry, invalid, True))
            self._go(Step.MISFIT)
            return
        if self._misfit_layouts:
            common = [pair for pair in self._misfit_layouts if pair in layouts]
            if not common:  # another shape than the lines held: those fit neither
                self._drop_misfits(out)
                common = layouts
        else:
            common = layouts  # the first line of a run (after a header line, maybe)
        self._misfit_layouts = common
        self._misfits.append(_Misfit(entry, invalid, header and not self._misfits))
        self._go(Step.MISFIT)
        if len(self._misfits) - self._misfits[0].header >= self.confirm_lines:
            self._confirm(out)

    def _change_layouts(self, line: bytes) -> list[tuple[int, Layout]]:
        """What a line that does not fit could be: (candidate, layout) pairs, most likely
        first. A configured layout never changes; ``raw`` is never a new shape."""
        if self._auto is not None:
            classes = self._auto.classify(line)
            return [(index, layout) for index, layouts in enumerate(classes) for layout in layouts]
        try:
            return [(0, layout) for layout in self.configured.layouts(line)]
        except Invalid:
            return []

    def _drop_misfits(self, out: _Output) -> None:
        misfits, self._misfits, self._misfit_layouts = self._misfits, [], []
        for misfit in misfits:
            out.reject(misfit.invalid.reason, misfit.invalid.detail, misfit.entry)

    def _confirm(self, out: _Output) -> None:
        misfits = self._misfits
        data = [misfit.entry.line for misfit in misfits[misfits[0].header :]]
        old = self._codec
        if self._auto is not None:
            detection = detect(
                data,
                [self._auto.classify(line) for line in data],
                self._auto,
                final=True,
                fallback=False,  # raw is no new shape: it would take any noise
            )
            new = detection.codec if detection is not None else None
            because = detection.evidence if detection is not None else ""
        else:
            layout = self._misfit_layouts[0][1]
            new = self.configured.with_layout(layout)
            because = f"{len(data)} lines in a row have {describe_layout(new, layout)}"
        if new is None or (new.name == old.name and new.layout == old.layout):
            self._refuse(out)  # no shape auto reads, or not a new one after all
            return
        entries = [misfit.entry for misfit in misfits]
        header = self._find_header(new, entries)
        if header is not None:
            new = new.with_layout(new.layout, header[0].line, header[1])
            because += "; a header line names them: " + ", ".join(header[1])
        old_shape = self._shape
        self._misfits, self._misfit_layouts = [], []
        self._set_codec(new)
        self._go(Step.CONFIRMED)
        if new.name != old.name:
            out.event(FormatDetected(new.name, because, len(data)))
        out.event(ShapeChanged(old_shape, self._shape, because))
        self._release(entries, header, out)

    def _refuse(self, out: _Output) -> None:
        self._drop_misfits(out)
        self._go(Step.REFUSED)

    # -- compatibility ----------------------------------------------------------------------

    def _legacy(self, result: Intake) -> LegacyIntake:
        legacy = LegacyIntake(rejections=result.rejections)
        for run_index, run in enumerate(result.runs):
            if self._legacy_shape is None:
                self._legacy_shape = run.shape
            if run.shape != self._legacy_shape:
                detail = (
                    f"rows changed shape to {run.shape}; this reader stores "
                    f"{self._legacy_shape} until it restarts"
                )
                legacy.rejections.extend(
                    Rejection(Reason.FIELD_COUNT, detail, record, len(record))
                    for record in run.records
                )
                continue
            offset = len(legacy.records)
            if offset:
                legacy.records.extend(run.records)
            else:
                legacy.records = run.records
            legacy.events.extend(
                replace(event, index=event.index + offset, run=0)
                for event in result.events
                if isinstance(event, DeviceGap | CounterReset) and event.run == run_index
            )
        return legacy
