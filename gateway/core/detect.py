"""Deciding from complete lines: which format (``auto``) and which layout. No I/O.

:class:`~gateway.core.intake.LineIntake` holds the first complete lines and asks here. Every
rule looks at several lines, never at one, and the caller never counts the first line after a
port opens (it may be the tail of a cut line) unless it is all there is.

``auto`` tries the formats in :data:`ORDER` over the last :data:`DETECT_LINES` lines and takes
the first that reads :data:`QUORUM` of them with one layout and passes its own rule; when none
does it waits for more lines, and when it may wait no longer it takes ``raw``, which reads
anything. The evidence is a sentence for the log (docs/formats.md lists them).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from gateway.core.codec import COUNTER, Codec, Invalid, Layout, wire_name
from gateway.core.textcodecs import SEPARATOR_NAMES

#: Lines ``auto`` looks at: enough to see a counter count up, a header line, a mix of NMEA
#: sentence types, and a boot banner or a garbled line among good ones.
DETECT_LINES = 8
#: Share of those lines a format must read: a line or two of banner or noise does not push a
#: stream into ``raw``, and a format that reads only half of them is not the device's.
QUORUM = Fraction(3, 4)
#: The order ``auto`` tries formats in: the most specific first (a checksummed sentence, a
#: JSON object, name:value pairs, counted numbers, numbers), then any separated text.
ORDER = ("nmea", "nmea0183", "json", "keyvalue", "csv-seq", "csv", "delimited")

_COUNTER_RE = re.compile(COUNTER)


class AutoCodec(Codec):
    """``auto``: no format of its own; the candidates, in :data:`ORDER`, and ``raw``."""

    name = "auto"
    counter_field = None
    time_field = None

    def __init__(self, candidates: Sequence[Codec], fallback: Codec) -> None:
        super().__init__()
        self.candidates = tuple(sorted(candidates, key=lambda codec: ORDER.index(codec.name)))
        self.fallback = fallback

    def classify(self, line: bytes) -> tuple[tuple[Layout, ...], ...]:
        """The layouts ``line`` fits under each candidate (empty where it does not decode)."""
        return tuple(_layouts_or_none(codec, line) for codec in self.candidates)


def _layouts_or_none(codec: Codec, line: bytes) -> tuple[Layout, ...]:
    try:
        return codec.layouts(line)
    except Invalid:
        return ()


@dataclass(frozen=True, slots=True)
class Detection:
    """What ``auto`` picked: a codec with its layout, why, and from how many lines."""

    codec: Codec
    evidence: str
    lines_examined: int


def detect(
    lines: Sequence[bytes],
    classes: Sequence[tuple[tuple[Layout, ...], ...]],
    auto: AutoCodec,
    *,
    final: bool,
    fallback: bool = True,
) -> Detection | None:
    """The format of ``lines`` (``classes``: :meth:`AutoCodec.classify` of each), or None to
    wait for more lines. ``final``: no more lines will come in time; decide with these.
    ``fallback``: when no format fits, ``raw`` (else None)."""
    if not lines or (len(lines) < DETECT_LINES and not final):
        return None
    window, window_classes = lines[-DETECT_LINES:], classes[-DETECT_LINES:]
    examined = len(window)
    need = -(-examined * QUORUM.numerator // QUORUM.denominator)  # rounded up
    closest = ("", 0)
    for index, codec in enumerate(auto.candidates):
        best = _best_layout([layouts[index] for layouts in window_classes])
        if best is None:
            continue
        layout, where = best
        if len(where) > closest[1]:
            closest = (codec.name, len(where))
        if len(where) < need:
            continue
        evidence = JUDGES[codec.name](codec, layout, [window[i] for i in where], examined)
        if evidence is not None:
            return Detection(codec.with_layout(layout), evidence, examined)
    if not final or not fallback:
        return None
    if closest[1]:
        nearest = f"the closest, {closest[0]}, reads {closest[1]}"
    else:
        nearest = "no format reads any"
    evidence = (
        f"no format reads {need} of {examined} lines ({nearest}); "
        "each line is kept whole as one text field"
    )
    return Detection(auto.fallback, evidence, examined)


def learn_layout(
    layout_lists: Sequence[tuple[Layout, ...]], *, confirm: int, final: bool
) -> tuple[Layout, int] | None:
    """The first layout ``confirm`` of the lines fit (with its count), or None to wait.

    ``layout_lists`` holds what each line fits, most likely first. ``final``: take the layout
    most lines fit, even fewer than ``confirm`` (None only when no line fits any).
    """
    counts: dict[Layout, int] = {}
    for layouts in layout_lists:
        for layout in layouts:
            counts[layout] = counts.get(layout, 0) + 1
            if counts[layout] >= confirm:
                return layout, counts[layout]
    if final and counts:
        layout = max(counts, key=counts.__getitem__)  # the first seen among equals
        return layout, counts[layout]
    return None


def describe_layout(codec: Codec, layout: Layout) -> str:
    """``layout`` in words, for evidence: "4 fields", "3 fields separated by semicolons"..."""
    if layout.keys:
        return "the names " + ", ".join(key.decode() for key in layout.keys)
    fields = _fields(layout.count)
    if codec.name == "delimited":
        return f"{fields} separated by {SEPARATOR_NAMES[layout.separator]}"
    return fields


def counts_up(counters: Sequence[int]) -> bool:
    """Whole numbers that grow, by exactly one at least every other line (a device counter
    may skip what was lost)."""
    steps = [b - a for a, b in itertools.pairwise(counters)]
    return bool(steps) and min(steps) > 0 and 2 * steps.count(1) >= len(steps)


def _best_layout(layout_lists: Sequence[tuple[Layout, ...]]) -> tuple[Layout, list[int]] | None:
    where: dict[Layout, list[int]] = {}
    for index, layouts in enumerate(layout_lists):
        for layout in layouts:
            where.setdefault(layout, []).append(index)
    if not where:
        return None
    layout = max(where, key=lambda key: len(where[key]))  # the first seen among equals
    return layout, where[layout]


def _fields(count: int) -> str:
    return f"{count} field" + ("" if count == 1 else "s")


def _values(values: Sequence[object], shown: int = 3) -> str:
    text = ", ".join(str(value) for value in values[:shown])
    return text + (", ..." if len(values) > shown else "")


def _counters(codec: Codec, layout: Layout, lines: Sequence[bytes]) -> list[int]:
    reader = codec.with_layout(layout)
    return [reader.decode_line(line)[1] for line in lines]


def _share(lines: Sequence[bytes], examined: int) -> str:
    return f"{len(lines)} of {examined} lines"


# -- each format's rule and evidence ------------------------------------------------------------
# A judge sees the lines that fit the format's best layout (at least the quorum) and returns the
# evidence sentence, or None when the format's own rule says no.


def _judge_nmea(codec: Codec, layout: Layout, lines: Sequence[bytes], examined: int) -> str | None:
    names = {codec.sentence_name(line) for line in lines}
    if len(names) != 1:
        return None  # several sentence types: nmea0183 keeps each with its address
    counters = _counters(codec, layout, lines)
    if not counts_up(counters):
        return None
    return (
        f"{_share(lines, examined)} are ${names.pop().decode()} sentences with valid checksums "
        f"and {_fields(layout.count)} of numbers; the first ({_values(counters)}) counts up "
        "by one: a device counter"
    )


def _judge_nmea0183(
    codec: Codec, layout: Layout, lines: Sequence[bytes], examined: int
) -> str | None:
    addresses = list(dict.fromkeys(line[1:].split(b",", 1)[0].split(b"*", 1)[0] for line in lines))
    unchecked = sum(b"*" not in line for line in lines)
    checks = f"; {unchecked} without a checksum" if unchecked else " with valid checksums"
    return (
        f"{_share(lines, examined)} are NMEA 0183 sentences "
        f"({_values([a.decode() for a in addresses], 6)}){checks}"
    )


def _judge_json(codec: Codec, layout: Layout, lines: Sequence[bytes], examined: int) -> str | None:
    return (
        f'{_share(lines, examined)} are JSON objects with "n", "t" and "ch" '
        f"({_fields(layout.count)})"
    )


def _judge_keyvalue(
    codec: Codec, layout: Layout, lines: Sequence[bytes], examined: int
) -> str | None:
    return f"{_share(lines, examined)} are name:value pairs with {describe_layout(codec, layout)}"


def _judge_csv_seq(
    codec: Codec, layout: Layout, lines: Sequence[bytes], examined: int
) -> str | None:
    counters = _counters(codec, layout, lines)
    if not counts_up(counters):
        return None
    return (
        f"{_share(lines, examined)} are comma-separated numbers with {_fields(layout.count)}; "
        f"the first field ({_values(counters)}) counts up by one: a device counter"
    )


def _judge_csv(codec: Codec, layout: Layout, lines: Sequence[bytes], examined: int) -> str | None:
    firsts = [line.split(b",", 1)[0].decode() for line in lines]
    if layout.count == 1:
        why = "one number per line"
    elif all(_COUNTER_RE.fullmatch(first.encode()) for first in firsts):
        why = f"no counter: the first field {_values(firsts)} does not count up by one"
    else:
        why = f"no counter: the first field {_values(firsts)} is not a whole number"
    return (
        f"{_share(lines, examined)} are comma-separated numbers with {_fields(layout.count)}; "
        + why
    )


def _judge_delimited(
    codec: Codec, layout: Layout, lines: Sequence[bytes], examined: int
) -> str | None:
    if layout.separator == b" " and not value_columns(codec, layout, lines):
        return None  # words of text between spaces are not columns
    return f"{_share(lines, examined)} have {describe_layout(codec, layout)}"


def value_columns(codec: Codec, layout: Layout, lines: Sequence[bytes]) -> list[int]:
    """The columns in which no line holds a name-like text: where a header line stands out."""
    rows = [codec.split(line, layout) for line in lines]
    rows = [row for row in rows if row is not None]
    if not rows:
        return []
    return [
        column
        for column in range(layout.count)
        if all(wire_name(row[column]) is None for row in rows)
    ]


JUDGES: dict[str, Callable[[Codec, Layout, Sequence[bytes], int], str | None]] = {
    "nmea": _judge_nmea,
    "nmea0183": _judge_nmea0183,
    "json": _judge_json,
    "keyvalue": _judge_keyvalue,
    "csv-seq": _judge_csv_seq,
    "csv": _judge_csv,
    "delimited": _judge_delimited,
}
