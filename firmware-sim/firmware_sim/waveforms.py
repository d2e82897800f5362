"""Channel values of the simulated monitor, sample by sample (pure).

Sample ``n`` is taken at ``t = n / rate``; randomness (the ``noise`` waveform and ``--noise``)
comes from the ``random.Random`` the caller passes in, so a seed fixes every value.
"""

import math
import random
from dataclasses import dataclass

WAVEFORMS = ("ecg", "sine", "square", "sawtooth", "noise", "counter")
DEFAULT_WAVEFORM = "ecg"

# One heart beat as a sum of Gaussians (P, Q, R, S, T waves), McSharry-style:
# (centre relative to the R peak, height, width), centre and width in beats.
ECG_WAVES = (
    (-0.20, 0.15, 0.025),
    (-0.05, -0.15, 0.010),
    (0.00, 1.00, 0.012),
    (0.04, -0.25, 0.012),
    (0.30, 0.30, 0.050),
)
# Channels differ so that a plot shows them apart: channel k of a periodic wave is k/8 of a
# period late; channel k of the ECG is k * 40 ms late and 1 / (1 + k/4) as tall (another lead).
PERIODIC_CHANNEL_SHIFT = 1 / 8
ECG_CHANNEL_DELAY_S = 0.040
ECG_CHANNEL_GAIN_STEP = 0.25


@dataclass(frozen=True)
class WaveformSettings:
    waveform: str = DEFAULT_WAVEFORM
    channels: int = 2
    amplitude: float = 1.0
    offset: float = 0.0
    noise: float = 0.0  # standard deviation of the Gaussian noise added to every value
    frequency: float = 1.0  # Hz, periodic waves other than ecg
    heart_rate: float = 60.0  # beats per minute, ecg only


def ecg_shape(beats: float) -> float:
    """One lead of a synthetic ECG, ``beats`` after an R peak (R peaks at whole numbers)."""
    x = beats - math.floor(beats + 0.5)  # position in the beat, in [-0.5, 0.5)
    return sum(h * math.exp(-((x - c) ** 2) / (2 * w * w)) for c, h, w in ECG_WAVES)


def _fraction(cycles: float) -> float:
    return cycles - math.floor(cycles)


class SignalGenerator:
    """Values of samples 0, 1, 2, ... in that order.

    Call ``values(n)`` once for every sample the device generates, sent or not: noise is drawn
    from ``rng`` in order, so skipping a sample would change every later value.
    """

    def __init__(self, settings: WaveformSettings, rate: float, rng: random.Random):
        if settings.waveform not in WAVEFORMS:
            raise ValueError(
                f"unknown waveform {settings.waveform!r} (waveforms: {', '.join(WAVEFORMS)})"
            )
        self.settings = settings
        self.rate = rate
        self._rng = rng
        self._next_n = 0
        self._shape = getattr(self, f"_{settings.waveform}")

    def values(self, n: int) -> list[float]:
        if n != self._next_n:
            raise ValueError(f"values of sample {n} requested, expected sample {self._next_n}")
        self._next_n += 1
        s = self.settings
        t = n / self.rate
        out = []
        for k in range(s.channels):
            value = s.offset + s.amplitude * self._shape(n, t, k)
            if s.noise > 0:
                value += self._rng.gauss(0.0, s.noise)
            out.append(value)
        return out

    def _ecg(self, n: int, t: float, k: int) -> float:
        beats = self.settings.heart_rate / 60 * (t - k * ECG_CHANNEL_DELAY_S)
        return ecg_shape(beats) / (1 + k * ECG_CHANNEL_GAIN_STEP)

    def _cycles(self, t: float, k: int) -> float:
        return self.settings.frequency * t - k * PERIODIC_CHANNEL_SHIFT

    def _sine(self, n: int, t: float, k: int) -> float:
        return math.sin(2 * math.pi * self._cycles(t, k))

    def _square(self, n: int, t: float, k: int) -> float:
        return 1.0 if _fraction(self._cycles(t, k)) < 0.5 else -1.0

    def _sawtooth(self, n: int, t: float, k: int) -> float:
        return 2 * _fraction(self._cycles(t, k)) - 1

    def _noise(self, n: int, t: float, k: int) -> float:
        return self._rng.gauss(0.0, 1.0)

    def _counter(self, n: int, t: float, k: int) -> float:
        return float(n + k)
