"""Waveforms: shapes, channel offsets, and seeded noise."""

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.waveforms import WAVEFORMS, SignalGenerator, WaveformSettings, ecg_shape


def values(settings: WaveformSettings, rate: float, count: int, seed: int = 0):
    generator = SignalGenerator(settings, rate, random.Random(seed))
    return [generator.values(n) for n in range(count)]


def test_sine_starts_at_offset_and_peaks_at_a_quarter_period():
    rows = values(WaveformSettings("sine", 1, amplitude=2.0, offset=0.5, frequency=5), 100, 6)
    assert rows[0][0] == pytest.approx(0.5)
    assert rows[5][0] == pytest.approx(2.5)  # t = 0.05 s = a quarter of 1/5 s


def test_square_and_sawtooth_stay_within_amplitude_around_offset():
    for kind in ("square", "sawtooth"):
        rows = values(WaveformSettings(kind, 3, amplitude=3, offset=1, frequency=7), 1000, 2000)
        flat = [v for row in rows for v in row]
        assert min(flat) == pytest.approx(-2, abs=0.05)
        assert max(flat) == pytest.approx(4, abs=0.05)
    square = {v for row in values(WaveformSettings("square", 1), 100, 300) for v in row}
    assert square == {1.0, -1.0}


def test_channels_of_periodic_waves_are_an_eighth_of_a_period_apart():
    rows = values(WaveformSettings("sine", 3, frequency=1), 800, 801)
    for n in range(600):
        assert rows[n + 100][1] == pytest.approx(rows[n][0])  # 100 samples = 1/8 s
        assert rows[n + 200][2] == pytest.approx(rows[n][0])


def test_counter_is_n_plus_channel_scaled_by_amplitude_plus_offset():
    rows = values(WaveformSettings("counter", 3, amplitude=2, offset=10), 50, 5)
    assert rows[4] == [18.0, 20.0, 22.0]


def test_ecg_has_one_r_peak_per_beat_at_the_heart_rate():
    rate, bpm = 500, 75
    rows = values(WaveformSettings("ecg", 1, heart_rate=bpm), rate, rate * 4)
    trace = [row[0] for row in rows]
    peaks = [
        n
        for n in range(1, len(trace) - 1)
        if trace[n] > 0.5 and trace[n - 1] < trace[n] >= trace[n + 1]
    ]
    assert peaks == [400, 800, 1200, 1600]  # every 0.8 s (t = 0 has no left neighbour)
    assert ecg_shape(0.0) == pytest.approx(1.0, abs=0.01)
    assert ecg_shape(0.5) == pytest.approx(0.0, abs=1e-3)  # baseline between beats


def test_ecg_channels_are_later_and_smaller_leads():
    rows = values(WaveformSettings("ecg", 2), 1000, 1100)
    ch0 = [r[0] for r in rows]
    ch1 = [r[1] for r in rows]
    assert max(range(900, 1100), key=ch0.__getitem__) == 1000
    assert max(range(900, 1100), key=ch1.__getitem__) == 1040  # 40 ms later
    assert max(ch1) == pytest.approx(max(ch0) / 1.25, rel=0.01)


@given(seed=st.integers(0, 2**64), kind=st.sampled_from(WAVEFORMS))
def test_a_seed_fixes_every_value(seed, kind):
    settings = WaveformSettings(kind, 2, noise=0.1)
    assert values(settings, 250, 30, seed) == values(settings, 250, 30, seed)


def test_noise_differs_between_seeds_and_has_the_requested_spread():
    settings = WaveformSettings("noise", 1, amplitude=2.0, offset=1.0)
    a = [r[0] for r in values(settings, 100, 4000, seed=1)]
    b = [r[0] for r in values(settings, 100, 4000, seed=2)]
    assert a != b
    mean = sum(a) / len(a)
    spread = math.sqrt(sum((x - mean) ** 2 for x in a) / len(a))
    assert mean == pytest.approx(1.0, abs=0.1)
    assert spread == pytest.approx(2.0, rel=0.05)


def test_added_noise_has_the_requested_standard_deviation():
    clean = values(WaveformSettings("sine", 1), 100, 4000)
    noisy = values(WaveformSettings("sine", 1, noise=0.25), 100, 4000)
    diff = [a[0] - b[0] for a, b in zip(noisy, clean, strict=True)]
    assert math.sqrt(sum(d * d for d in diff) / len(diff)) == pytest.approx(0.25, rel=0.05)


def test_samples_must_be_generated_in_order():
    generator = SignalGenerator(WaveformSettings("sine"), 100, random.Random(0))
    generator.values(0)
    with pytest.raises(ValueError) as error:
        generator.values(2)
    assert str(error.value) == "values of sample 2 requested, expected sample 1"
