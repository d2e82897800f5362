"""Is the reader refusing much of what the device says? A sliding window of lines read and
lines rejected, and when to say so. No I/O, no clock: ``now`` is an argument.

A stream that is mostly refused is the one failure a gateway must never keep quiet about: a
wrong ``GATEWAY_LINE_FORMAT``, a wrong baud rate, a device that changed its output. When more
than ``threshold`` of the lines in the last ``window_seconds`` were rejected (and at least
``min_lines`` were read), :meth:`RejectionWatch.check` returns an :class:`Alert` naming the top
reasons and a hint; it returns the alert again every ``repeat_seconds`` while it lasts, and a
:class:`Cleared` once the share falls back below half the threshold (so a rate that hovers at
the threshold does not flap).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.core.codec import Reason, Rejection
from gateway.core.records import make_codec

#: Lines whose share of rejections makes an alert: a few percent is a noisy cable, more is a
#: configuration or a device that is not understood.
THRESHOLD = 0.05
WINDOW_SECONDS = 60.0
MIN_LINES = 20  # a handful of lines at start is no stream
REPEAT_SECONDS = 300.0  # while it lasts, say it again this often (a log, not a flood)
SAMPLE_LINES = 16  # rejected lines kept to guess what the stream really is
_SLOT_SECONDS = 1.0  # the window's resolution

# Hints per reason: what is most often behind it, and what to do.
REASON_HINTS = {
    Reason.INVALID_UTF8: "bytes that are not text usually mean a wrong baud rate or parity: "
    "check GATEWAY_BAUD and GATEWAY_PARITY against the device",
    Reason.TOO_LONG: "lines longer than GATEWAY_MAX_LINE_BYTES: raise it, or check "
    "GATEWAY_LINE_TERMINATOR (a device ending lines with \\r only needs cr)",
    Reason.BAD_CHECKSUM: "checksums that do not match mean a noisy line or a wrong baud rate",
    Reason.FIELD_COUNT: "the device changed what it prints; GATEWAY_FIELD_COUNT/"
    "GATEWAY_FIELD_NAMES may fix a shape it no longer has",
    Reason.PARTIAL_FIRST_LINE: "cut lines at each (re)open: a flaky cable or USB power",
}


@dataclass(frozen=True, slots=True)
class Alert:
    share: float  # rejected / read, in the window
    rejected: int
    lines: int
    window_seconds: float
    top_reasons: tuple[tuple[str, int], ...]  # most frequent first
    hint: str
    since: float  # when the share first crossed the threshold

    def as_dict(self) -> dict:
        return {
            "share": round(self.share, 4),
            "rejected": self.rejected,
            "lines": self.lines,
            "window_seconds": self.window_seconds,
            "top_reasons": dict(self.top_reasons),
            "hint": self.hint,
            "since": round(self.since, 3),
        }


@dataclass(frozen=True, slots=True)
class Cleared:
    share: float
    lasted_seconds: float


def suggest_format(lines: Sequence[bytes], configured: str) -> str | None:
    """The format ``auto`` would read ``lines`` as, if it is not ``configured``; else None."""
    from gateway.core.detect import detect  # the detector imports the codecs that import us

    if not lines:
        return None
    auto = make_codec("auto")
    found = detect(
        list(lines), [auto.classify(line) for line in lines], auto, final=True, fallback=False
    )
    if found is None or found.codec.name == configured:
        return None
    return found.codec.name


def hint_for(configured: str, reasons: Mapping[str, int], sample: Sequence[bytes]) -> str:
    """What to try, from the rejected lines themselves when they read as another format."""
    better = suggest_format(sample, configured) if configured != "auto" else None
    if better is not None:
        return (
            f"these lines look like {better}, not {configured}; "
            f"set GATEWAY_LINE_FORMAT={better} or auto"
        )
    top = max(reasons, key=reasons.__getitem__) if reasons else None
    if top in REASON_HINTS:
        return REASON_HINTS[top]
    if configured == "auto":
        return (
            "the stream changed after its format was detected; restart the reader to detect again"
        )
    return "see docs/formats.md; GATEWAY_LINE_FORMAT=auto detects the format, raw keeps any text"


class RejectionWatch:
    def __init__(
        self,
        configured_format: str,
        *,
        threshold: float = THRESHOLD,
        window_seconds: float = WINDOW_SECONDS,
        min_lines: int = MIN_LINES,
        repeat_seconds: float = REPEAT_SECONDS,
    ) -> None:
        self.configured_format = configured_format
        self.threshold = threshold
        self.window_seconds = window_seconds
        self.min_lines = min_lines
        self.repeat_seconds = repeat_seconds
        # (slot start, lines, rejected, reasons) per second of the window
        self._slots: deque[tuple[float, int, int, Counter]] = deque()
        self._sample: deque[bytes] = deque(maxlen=SAMPLE_LINES)
        self.active: Alert | None = None
        self._said_at: float | None = None

    def observe(self, now: float, accepted: int, rejections: Sequence[Rejection]) -> None:
        """Count a read's accepted lines and rejections."""
        if not accepted and not rejections:
            return
        if not self._slots or now - self._slots[-1][0] >= _SLOT_SECONDS:
            self._slots.append((now, 0, 0, Counter()))
        start, lines, rejected, reasons = self._slots[-1]
        for rejection in rejections:
            reasons[str(rejection.reason)] += 1
            self._sample.append(rejection.line)
        self._slots[-1] = (
            start,
            lines + accepted + len(rejections),
            rejected + len(rejections),
            reasons,
        )

    def check(self, now: float) -> Alert | Cleared | None:
        """An :class:`Alert` when it is time to say the stream is refused (again), a
        :class:`Cleared` when it no longer is, else None."""
        while self._slots and now - self._slots[0][0] > self.window_seconds:
            self._slots.popleft()
        lines = sum(slot[1] for slot in self._slots)
        rejected = sum(slot[2] for slot in self._slots)
        share = rejected / lines if lines else 0.0
        if self.active is not None and (lines < self.min_lines or share < self.threshold / 2):
            cleared = Cleared(share, now - self.active.since)
            self.active = self._said_at = None
            return cleared
        if lines < self.min_lines or share <= self.threshold:
            return None
        if self._said_at is not None and now - self._said_at < self.repeat_seconds:
            return None
        reasons: Counter = Counter()
        for slot in self._slots:
            reasons.update(slot[3])
        since = self.active.since if self.active is not None else now
        self.active = Alert(
            share,
            rejected,
            lines,
            self.window_seconds,
            tuple(reasons.most_common(3)),
            hint_for(self.configured_format, reasons, list(self._sample)),
            since,
        )
        self._said_at = now
        return self.active
