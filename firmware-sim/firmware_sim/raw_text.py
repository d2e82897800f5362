"""Free text lines, as a lab instrument's log or a modem's chatter prints them (pure).

Each line is one sample: readings with units (``µA``, ``°C``, ``kΩ``), quoted text with commas,
tab-separated columns, decimal commas, leading and trailing spaces, non-Latin scripts, emoji,
modem commands and replies, and now and then an empty line. Every line is valid UTF-8 with no
control character but tab (so never a CR or LF inside).

The readings are the waveform's values; the choice of line comes from a random stream of its
own, so ``--format raw`` shows the same values as ``csv`` for the same seed.
"""

import random
from collections.abc import Callable, Sequence

from firmware_sim.line_formats import format_number

EMPTY_LINE_SHARE = 0.04
UNITS = ("V", "mV", "µA", "mA", "°C", "kΩ", "hPa", "µS/cm")
MODEM_CHATTER = (
    "AT",
    "OK",
    "AT+CSQ",
    "AT+CREG?",
    "+CREG: 0,1",
    "AT+COPS?",
    '+COPS: 0,0,"Telekom.de",7',
    "RING",
    "NO CARRIER",
    "ERROR",
    "+CME ERROR: 10",
)
BOOT_BANNER = (
    "",
    "=== firmware-sim lab logger (simulated), v2.3 ===",
    "Messgerät S/N 0042 — self test passed ✓",
    "Type 'help' for commands.",
)

Reading = Callable[[random.Random, int, float, Sequence[str]], str]


def _clock(t: float) -> str:
    minutes, seconds = divmod(t, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:06.3f}"


def _tabbed(rng: random.Random, n: int, t: float, values: Sequence[str]) -> str:
    k = rng.randrange(len(values))
    return f"{t:.3f} s\tCH{k}\t{values[k]}\t{rng.choice(UNITS)}"


def _quoted(rng: random.Random, n: int, t: float, values: Sequence[str]) -> str:
    k = rng.randrange(len(values))
    status = rng.choice(('"ok, stable"', '"drift, check probe"', '"said ""hi"""'))
    return f'{_clock(t)} INFO "probe {k}", reading={values[k]} {rng.choice(UNITS)}, {status}'


def _spaced(rng: random.Random, n: int, t: float, values: Sequence[str]) -> str:
    decimal_comma = values[0].replace(".", ",")
    return " " * rng.randint(1, 4) + f"Température : {decimal_comma} °C" + " " * rng.randint(1, 3)


def _modem(rng: random.Random, n: int, t: float, values: Sequence[str]) -> str:
    if rng.random() < 0.3:
        return f"+CSQ: {rng.randint(5, 31)},99"
    return rng.choice(MODEM_CHATTER)


def _emoji(rng: random.Random, n: int, t: float, values: Sequence[str]) -> str:
    return rng.choice(
        (
            f"🌡️ {values[0]} °C ✅",
            f"⚠️ over range: {values[-1]} > 1.0",
            "📶 link up",
            f"🔋 {rng.randint(5, 100)} %",
        )
    )


def _other_script(rng: random.Random, n: int, t: float, values: Sequence[str]) -> str:
    return rng.choice(
        (
            f"温度 {values[0]}°C 湿度 {values[-1]}%",
            f"Давление: {values[-1]} гПа",
            f"±{values[0].lstrip('-')} µV (Ω = {rng.randint(1, 99)} kΩ)",
        )
    )


def _csv_comment(rng: random.Random, n: int, t: float, values: Sequence[str]) -> str:
    return f"# sample {n}: " + ",".join(values)


def _blank(rng: random.Random, n: int, t: float, values: Sequence[str]) -> str:
    return " " * rng.randint(1, 3) + "\t"  # whitespace only


# (kind of line, relative weight)
READINGS: tuple[tuple[Reading, int], ...] = (
    (_tabbed, 6),
    (_quoted, 4),
    (_spaced, 3),
    (_modem, 3),
    (_emoji, 2),
    (_other_script, 2),
    (_csv_comment, 3),
    (_blank, 1),
)
_KINDS = tuple(kind for kind, _ in READINGS)
_WEIGHTS = tuple(weight for _, weight in READINGS)


class RawText:
    """The text of each sample's line, from the sample's values and a random stream."""

    def __init__(self, rng: random.Random, decimals: int):
        self._rng = rng
        self._decimals = decimals

    def line(self, n: int, t: float, values: Sequence[float]) -> str:
        rng = self._rng
        if rng.random() < EMPTY_LINE_SHARE:
            return ""
        (kind,) = rng.choices(_KINDS, _WEIGHTS)
        return kind(rng, n, t, [format_number(v, self._decimals) for v in values])


def cut_in_the_middle(line: bytes) -> bytes | None:
    """The first half of ``line``'s characters (so still valid UTF-8); None if it is empty."""
    if not line:
        return None
    text = line.decode()
    return text[: len(text) // 2].encode()
