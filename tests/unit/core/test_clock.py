"""Steps of the wall clock against a steady one, and what the kernel's NTP state means."""

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.clock import (
    MAXERROR_UNSYNCED_US,
    ClockStep,
    RunClock,
    StepDetector,
    StepSeen,
    batch_clock,
    synchronized_from_timedatectl,
    synchronized_from_timex,
)


def test_the_first_look_is_no_step_and_a_steady_clock_never_steps():
    detector = StepDetector()
    assert detector.observe(1000.0, 5.0) is None
    for second in range(1, 100):
        assert detector.observe(1000.0 + second, 5.0 + second) is None


def test_ntp_setting_a_clock_from_1970_forward_is_one_step_of_its_size():
    detector = StepDetector()
    detector.observe(86_400.0, 10.0)  # a Pi that booted with no saved time
    step = detector.observe(1_780_000_000.25, 10.25)
    assert step == ClockStep(at=1_780_000_000.25, step_seconds=1_780_000_000.0 - 86_400.0)
    assert detector.observe(1_780_000_001.25, 11.25) is None  # the new clock is steady again


def test_a_step_back_is_negative_and_a_step_under_the_threshold_is_slewing():
    detector = StepDetector(threshold_seconds=0.1)
    detector.observe(500.0, 0.0)
    assert detector.observe(500.95, 1.0) is None  # 50 ms: slewed or jitter, not a step
    step = detector.observe(501.5, 2.0)  # offset from 499.95 to 499.5
    assert step is not None and round(step.step_seconds, 6) == -0.45


@given(st.lists(st.floats(0.01, 60.0), min_size=1, max_size=200))
def test_slewing_at_the_kernels_fastest_rate_never_adds_up_to_a_step(intervals):
    """500 ppm (the most the kernel slews) between looks up to 60 s apart: no step, however
    long it goes on, though the clock ends far from where it began."""
    detector = StepDetector()
    wall = steady = 0.0
    detector.observe(wall, steady)
    for interval in intervals:
        steady += interval
        wall += interval * 1.0005
        assert detector.observe(wall, steady) is None


def test_synchronized_is_systemds_rule_on_the_maximum_error():
    assert synchronized_from_timex(0) is True
    assert synchronized_from_timex(MAXERROR_UNSYNCED_US - 1) is True
    assert synchronized_from_timex(MAXERROR_UNSYNCED_US) is False  # as the kernel boots


def test_timedatectl_says_yes_or_no_and_anything_else_is_unknown():
    assert synchronized_from_timedatectl("yes\n") is True
    assert synchronized_from_timedatectl("no\n") is False
    assert synchronized_from_timedatectl("") is None
    assert synchronized_from_timedatectl("Failed to connect to bus") is None


def test_a_step_seen_by_another_run_does_not_vouch_for_this_ones_clock():
    run = RunClock(at=1000.0, pid=7, first_seq=100, synced=False)
    earlier_boot = StepSeen(at=990.0, step_seconds=30.0, synced=True, pid=7)  # same pid, before
    other_process = StepSeen(at=1100.0, step_seconds=30.0, synced=True, pid=8)
    assert batch_clock(150, 2000.0, [run], [earlier_boot, other_process]) == "unsynced"
    later = RunClock(at=3000.0, pid=9, first_seq=200, synced=True)
    assert batch_clock(150, 2000.0, [run, later], []) == "unsynced"  # its own run, not the next
    assert batch_clock(250, 3500.0, [run, later], []) == "synced"
    assert batch_clock(50, 900.0, [run, later], []) == "unknown"  # before any recorded run
