import random

from gateway.reader.stream import jittered_backoff


def test_backoff_grows_to_the_cap_with_jitter_in_each_step():
    delays = jittered_backoff(1.0, 30.0, random.Random(4))
    caps = [1, 2, 4, 8, 16, 30, 30, 30]
    taken = [next(delays) for _ in caps]
    assert all(cap / 2 <= delay <= cap for delay, cap in zip(taken, caps, strict=True))
    assert len({round(d, 6) for d in taken[-3:]}) == 3  # jittered, not in step


def test_two_gateways_do_not_retry_in_step():
    first = jittered_backoff(1.0, 30.0, random.Random(1))
    second = jittered_backoff(1.0, 30.0, random.Random(2))
    assert [next(first) for _ in range(5)] != [next(second) for _ in range(5)]
