"""Failure limits over a sliding window estimated from two fixed windows."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.rate_window import Limit, estimate, retry_after, window_index

LIMIT = Limit(failures=10, seconds=100)


def test_a_window_is_a_fixed_slice_of_time():
    assert [window_index(t, LIMIT) for t in (0, 99.9, 100, 250)] == [0, 0, 1, 2]


def test_the_previous_window_counts_less_the_further_into_this_one():
    assert estimate(10, 0, 100.0, LIMIT) == 10  # at the start of window 1: all of window 0
    assert estimate(10, 0, 150.0, LIMIT) == 5
    assert estimate(10, 3, 175.0, LIMIT) == 5.5


def test_under_the_limit_an_attempt_is_allowed():
    assert retry_after(0, 9, 10.0, LIMIT) is None


def test_the_limit_reached_in_this_window_waits_into_the_next():
    # 10 failures in window 0: allowed again once 10 * (1 - f) < 10 in window 1, i.e. just
    # after 100 s (at 100 s it is still 10); from 95 s, 6 whole seconds.
    assert retry_after(0, 10, 95.0, LIMIT) == 6
    # 20 failures: the estimate 20 * (1 - f) falls below 10 just after half way into window 1.
    assert retry_after(0, 20, 95.0, LIMIT) == 56


def test_the_previous_windows_share_must_shrink_first():
    # At 120 s: 10 * 0.8 + 4 = 12 >= 10; below 10 when 10 * (1 - f) < 6, i.e. after 140 s.
    assert retry_after(10, 4, 120.0, LIMIT) == 21


def test_a_limit_needs_a_positive_size():
    with pytest.raises(ValueError, match="failures >= 1 and seconds > 0"):
        Limit(0, 10)


@given(
    previous=st.integers(0, 50),
    current=st.integers(0, 50),
    now=st.floats(0, 1e6, allow_nan=False),
)
def test_after_the_wait_an_attempt_is_allowed_and_not_a_second_before(previous, current, now):
    wait = retry_after(previous, current, now, LIMIT)
    if wait is None:
        return
    later = now + wait
    # Crossing into the next window, this window's count becomes the previous one.
    shifted = window_index(later, LIMIT) - window_index(now, LIMIT)
    counts = {0: (previous, current), 1: (current, 0)}.get(shifted, (0, 0))
    assert retry_after(*counts, later, LIMIT) is None
    if wait > 1:
        earlier = now + wait - 1.001
        shifted = window_index(earlier, LIMIT) - window_index(now, LIMIT)
        counts = {0: (previous, current), 1: (current, 0)}.get(shifted, (0, 0))
        assert retry_after(*counts, earlier, LIMIT) is not None
