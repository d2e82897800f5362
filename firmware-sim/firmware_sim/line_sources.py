"""Where the device's lines come from, sample by sample (pure).

A source hands out samples 0, 1, 2, ... in order: each is one line (``Sample.body``, without its
terminator). Besides ``next_sample()`` and ``skip()`` (samples an unplug loses: generated and
dropped, so later lines never depend on faults), a source says what the faults need to know
about its format:

- ``boot_lines``: lines the device prints at power-on, before its first sample (a header of
  names, a banner), terminators included; empty for most formats;
- ``garbage_first_bytes``: a garbage line starts with one of these bytes, so that it can never
  be a valid line of this format;
- ``truncate(sample)``: the line cut the way a ``truncated`` fault cuts it in this format
  (None: nothing to cut, the fault is dropped);
- ``keeps_cut_lines``: True if a receiver of this format keeps a cut line (free text, where a
  shorter line is as valid as any), so a ``truncated`` line is not a rejected one;
- ``rebuild(sample, fields)``: the line with its value fields replaced (``overlong`` pads one,
  ``utf8`` puts an invalid byte in one), assembled and checksummed like a clean line.
  Only called for samples with ``fields``.
"""

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from firmware_sim.fault_plan import GARBAGE_FIRST_BYTES, TEXT_GARBAGE_FIRST_BYTES, truncate_line
from firmware_sim.line_formats import format_numbers, format_time
from firmware_sim.nmea0183 import GnssReceiver, Sentence, encode_sentence
from firmware_sim.raw_text import RawText, cut_in_the_middle
from firmware_sim.waveforms import SignalGenerator


@dataclass(slots=True)
class Sample:
    n: int
    body: bytes  # the clean line without its terminator
    terminator: bytes
    # What the source needs to rebuild the line (the text of t; an NMEA sentence's address).
    context: Any = None
    # The value fields a fault may change, in line order; None: the line is opaque text.
    fields: tuple[bytes, ...] | None = None


class LineSource(Protocol):
    boot_lines: tuple[bytes, ...]
    garbage_first_bytes: bytes
    keeps_cut_lines: bool

    def next_sample(self) -> Sample | None: ...

    def skip(self, count: int) -> int: ...

    def truncate(self, sample: Sample) -> bytes | None: ...

    def rebuild(self, sample: Sample, fields: Sequence[bytes]) -> bytes: ...


class SampleEncoder(Protocol):
    """Turns one sample's field texts into a line: ``line_formats.LineEncoder`` and the
    encoders of ``tabular``."""

    garbage_first_bytes: bytes

    def encode(self, n: int, t: bytes, channels: Sequence[bytes]) -> bytes: ...

    def truncate(self, line: bytes) -> bytes: ...


class GeneratedLines:
    """Samples 0, 1, 2, ... of a waveform, encoded as lines (``samples`` of them, or endless).

    The value fields are the channels (``t`` is never touched by a fault).
    """

    def __init__(
        self,
        generator: SignalGenerator,
        encoder: SampleEncoder,
        decimals: int,
        terminator: bytes,
        samples: int | None,
        boot_lines: Sequence[bytes] = (),
    ):
        self._generator = generator
        self._encoder = encoder
        self._rate = generator.rate
        self._decimals = decimals
        self._terminator = terminator
        self._samples = samples
        self._n = 0
        self.boot_lines = tuple(line + terminator for line in boot_lines)
        self.garbage_first_bytes = encoder.garbage_first_bytes
        self.keeps_cut_lines = False

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

    def truncate(self, sample: Sample) -> bytes:
        return self._encoder.truncate(sample.body)

    def rebuild(self, sample: Sample, fields: Sequence[bytes]) -> bytes:
        return self._encoder.encode(sample.n, sample.context, fields)


class RawTextLines:
    """Free text lines (``raw_text``), one per sample; opaque to faults, and a receiver keeps
    a cut line (it is still text)."""

    garbage_first_bytes = TEXT_GARBAGE_FIRST_BYTES
    keeps_cut_lines = True

    def __init__(
        self,
        generator: SignalGenerator,
        text: RawText,
        terminator: bytes,
        samples: int | None,
        boot_lines: Sequence[str] = (),
    ):
        self._generator = generator
        self._text = text
        self._rate = generator.rate
        self._terminator = terminator
        self._samples = samples
        self._n = 0
        self.boot_lines = tuple(line.encode() + terminator for line in boot_lines)

    def next_sample(self) -> Sample | None:
        n = self._n
        if self._samples is not None and n >= self._samples:
            return None
        self._n = n + 1
        line = self._text.line(n, n / self._rate, self._generator.values(n))
        return Sample(n, line.encode(), self._terminator)

    def skip(self, count: int) -> int:
        skipped = 0
        while skipped < count and self.next_sample() is not None:
            skipped += 1
        return skipped

    def truncate(self, sample: Sample) -> bytes | None:
        return cut_in_the_middle(sample.body)

    def rebuild(self, sample: Sample, fields: Sequence[bytes]) -> bytes:
        raise TypeError("a raw text line has no fields to rebuild")


class SentenceLines:
    """The sentences of an NMEA 0183 receiver, one per sample: sample ``n`` is sentence ``n``
    (counting every sentence, AIS included); an epoch is generated when its first sentence is
    next, and the epoch a run ends in is cut short."""

    garbage_first_bytes = TEXT_GARBAGE_FIRST_BYTES
    keeps_cut_lines = False

    def __init__(
        self, receiver: GnssReceiver, terminator: bytes, samples: int | None, boot: bool = False
    ):
        self._receiver = receiver
        self._terminator = terminator
        self._samples = samples
        self._n = 0
        self._epoch: deque[Sentence] = deque()
        banner = receiver.boot_sentences() if boot else []
        self.boot_lines = tuple(sentence.encode() + terminator for sentence in banner)

    def next_sample(self) -> Sample | None:
        n = self._n
        if self._samples is not None and n >= self._samples:
            return None
        self._n = n + 1
        if not self._epoch:
            self._epoch.extend(self._receiver.epoch())
        sentence = self._epoch.popleft()
        return Sample(n, sentence.encode(), self._terminator, sentence, sentence.fields)

    def skip(self, count: int) -> int:
        skipped = 0
        while skipped < count and self.next_sample() is not None:
            skipped += 1
        return skipped

    def truncate(self, sample: Sample) -> bytes:
        return truncate_line(sample.body)

    def rebuild(self, sample: Sample, fields: Sequence[bytes]) -> bytes:
        sentence: Sentence = sample.context
        return encode_sentence(sentence.start, sentence.address, fields)


class ReplayedLines:
    """The lines of a recording (see ``recording.replay_lines``), sample ``n`` = line ``n``.

    Its lines are opaque: faults cut, pad or corrupt them as bytes.
    """

    boot_lines: tuple[bytes, ...] = ()
    garbage_first_bytes = GARBAGE_FIRST_BYTES
    keeps_cut_lines = False

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

    def truncate(self, sample: Sample) -> bytes:
        return truncate_line(sample.body)

    def rebuild(self, sample: Sample, fields: Sequence[bytes]) -> bytes:
        raise TypeError("a replayed line has no fields to rebuild")
