"""One retry policy for the uploader, the stream and the port: exponential, capped, jittered."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.backoff import Backoff, Jitter, RetryState


def test_backoff_doubles_from_the_base_and_stops_at_the_cap():
    backoff = Backoff(base=1.0, cap=300.0)
    assert [backoff.ceiling(n) for n in range(1, 11)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        64,
        128,
        256,
        300,
    ]
    assert backoff.ceiling(10_000) == 300.0


@given(st.integers(1, 200), st.floats(0, 1, exclude_max=True))
def test_jittered_delay_lies_between_zero_and_the_ceiling(attempt, jitter):
    backoff = Backoff(base=0.5, cap=60.0)
    assert 0 <= backoff.delay(attempt, jitter) <= backoff.ceiling(attempt) <= 60.0


def test_retry_state_counts_attempts_and_is_due_after_its_delay():
    state = RetryState()
    backoff = Backoff(base=2.0, cap=10.0)
    assert state.due(0.0)
    not_before = state.failed("SlowDown", now=100.0, backoff=backoff, jitter=0.5)
    assert (state.attempts, not_before, state.last_error) == (1, 101.0, "SlowDown")
    assert not state.due(100.5) and state.due(101.0)
    assert state.failed("SlowDown", now=101.0, backoff=backoff, jitter=0.999) == pytest.approx(
        101.0 + 4 * 0.999
    )


def test_bad_backoff_arguments_are_refused():
    with pytest.raises(ValueError, match="attempts count from 1"):
        Backoff(1, 2).ceiling(0)
    with pytest.raises(ValueError, match="jitter must be in"):
        Backoff(1, 2).delay(1, 1.0)


def test_equal_jitter_grows_to_the_cap_and_never_retries_in_a_tight_loop():
    delays = Backoff(1.0, 30.0, Jitter.EQUAL).delays(random.Random(4).random)
    caps = [1, 2, 4, 8, 16, 30, 30, 30]
    taken = [next(delays) for _ in caps]
    assert all(cap / 2 <= delay <= cap for delay, cap in zip(taken, caps, strict=True))
    assert len({round(d, 6) for d in taken[-3:]}) == 3  # jittered, not in step


def test_two_gateways_do_not_retry_in_step():
    first = Backoff(1.0, 30.0, Jitter.EQUAL).delays(random.Random(1).random)
    second = Backoff(1.0, 30.0, Jitter.EQUAL).delays(random.Random(2).random)
    assert [next(first) for _ in range(5)] != [next(second) for _ in range(5)]


def test_without_jitter_the_waits_are_the_ceilings():
    delays = Backoff(0.05, 2.0, Jitter.NONE).delays()
    assert [next(delays) for _ in range(8)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
