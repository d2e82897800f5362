"""The leak detector itself: it must fail on growth that goes on, and pass what levels off."""

import random
import sys
import time

import pytest

from gateway.supervise import Supervisor
from tests.soak.growth import Budget, Point, check_growth, pooled_slope
from tests.support.procstat import sample_process

MIB = 1 << 20
RSS = Budget("MiB", MIB, tolerance=8, per_hour=2)


def series(values_by_time, incarnation=0.0):
    return [Point(t, v, incarnation) for t, v in values_by_time]


def test_a_steady_leak_fails_with_its_fitted_slope_in_mib_per_hour():
    rng = random.Random(1)
    # 20 MiB/h for an hour, with +-1 MiB of noise, sampled every 3 s.
    points = series(
        (t, 100 * MIB + t * 20 * MIB / 3600 + rng.uniform(-1, 1) * MIB) for t in range(0, 3600, 3)
    )
    verdict = check_growth("reader", "rss", points, start=0, end=3600, warmup=0, budget=RSS)
    assert not verdict.passed
    assert 18 < verdict.slope_per_hour < 22
    assert "MiB/h" in verdict.message and "does not level off" in verdict.message
    assert f"{verdict.slope_per_hour:+.3f} MiB/h" in verdict.message


def test_growth_that_levels_off_passes():
    # Up by 30 MiB in the first ten minutes (caches, pools), then flat with noise.
    rng = random.Random(2)
    points = series(
        (t, (70 + 30 * min(t, 600) / 600 + rng.uniform(-0.5, 0.5)) * MIB) for t in range(0, 3600, 3)
    )
    verdict = check_growth("uploader", "rss", points, start=0, end=3600, warmup=0, budget=RSS)
    assert verdict.passed, verdict.message
    assert abs(verdict.slope_per_hour) < 2


def test_restarts_neither_hide_a_leak_nor_count_start_up_as_one():
    # A process restarted every 10 minutes: memory resets each time. Leaking 60 MiB/h within
    # each life is caught; a fresh process's first 30 s of growth (warm-up) is not counted.
    leaky, healthy = [], []
    for t in range(0, 7200, 3):
        born = t - t % 600
        age = t - born
        warm = 20 * min(age, 30) / 30
        leaky.append(Point(t, (50 + warm + 60 * age / 3600) * MIB, born))
        healthy.append(Point(t, (50 + warm) * MIB, born))
    bad = check_growth("reader", "rss", leaky, start=0, end=7200, warmup=30, budget=RSS)
    good = check_growth("reader", "rss", healthy, start=0, end=7200, warmup=30, budget=RSS)
    assert not bad.passed and 55 < bad.slope_per_hour < 65, bad.message
    assert good.passed and abs(good.slope_per_hour) < 0.01, good.message
    # Fitted over the whole series without incarnations, the sawtooth would read as flat.
    flat = pooled_slope([Point(p.t, p.value, 0) for p in leaky if p.t >= 3600])
    assert abs(flat.slope * 3600 / MIB) < 20


def test_too_few_samples_is_a_failure_not_a_pass():
    points = series([(3000, MIB), (3003, MIB)])
    verdict = check_growth("site", "rss", points, start=0, end=3600, warmup=0, budget=RSS)
    assert not verdict.passed and "cannot tell" in verdict.message


LEAKER = """
import sys, time
hoard = []
for _ in range(int(sys.argv[1])):
    hoard.append(bytearray(256 * 1024))  # touched pages: resident
    for i in range(0, len(hoard[-1]), 4096):
        hoard[-1][i] = 1
    time.sleep(0.05)
time.sleep(60)
"""


@pytest.mark.parametrize("chunks", [0, 160])
def test_a_real_process_leaking_memory_is_caught_by_sampling_proc(chunks, tmp_path):
    """The same path as the soak: /proc samples of a live process, then the verdict. A
    process that grows 40 MiB over 8 s fails; an idle one passes."""
    with Supervisor(tmp_path) as supervisor:
        leaker = supervisor.start("leaker", [sys.executable, "-c", LEAKER, str(chunks)])
        time.sleep(0.5)
        start, points = time.monotonic(), []
        while time.monotonic() - start < 8:
            sample = sample_process(leaker.pid)
            points.append(Point(time.monotonic() - start, sample.rss_bytes, 0.0))
            time.sleep(0.2)
    verdict = check_growth("leaker", "rss", points, start=0, end=8, warmup=0, budget=RSS)
    assert verdict.passed == (chunks == 0), verdict.message
