import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.batching import Batcher, BatchPolicy


def test_seals_at_the_row_limit():
    batcher = Batcher(BatchPolicy(max_rows=3, max_bytes=10**9, max_seconds=60))
    assert batcher.fill([10] * 5) == 3
    assert batcher.add(3, 30, now=0.0) is True


def test_the_row_crossing_the_byte_limit_is_the_last():
    batcher = Batcher(BatchPolicy(max_rows=100, max_bytes=25, max_seconds=60))
    assert batcher.fill([10, 10, 10, 10]) == 3
    assert batcher.add(3, 30, now=0.0) is True


def test_a_single_huge_row_gets_a_batch_of_its_own():
    batcher = Batcher(BatchPolicy(max_rows=100, max_bytes=25, max_seconds=60))
    assert batcher.fill([1000, 1]) == 1


def test_age_counts_from_the_first_row():
    batcher = Batcher(BatchPolicy(max_rows=100, max_bytes=10**6, max_seconds=5))
    assert not batcher.due(100.0)
    batcher.add(1, 10, now=100.0)
    assert batcher.seconds_until_due(102.0) == pytest.approx(3.0)
    assert not batcher.due(104.9)
    assert batcher.due(105.0)
    batcher.sealed()
    assert not batcher.due(1000.0)


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="batch limits must be above 0"):
        BatchPolicy(0, 1, 1)


@given(
    max_rows=st.integers(1, 20),
    max_bytes=st.integers(1, 300),
    reads=st.lists(st.lists(st.integers(1, 80), max_size=15), max_size=15),
)
def test_batches_are_cut_exactly_by_the_policy(max_rows, max_bytes, reads):
    """Replay reads through the batcher as the store does; compare with a direct model."""
    batcher = Batcher(BatchPolicy(max_rows, max_bytes, 60))
    batches, current = [], []
    for sizes in reads:
        start = 0
        while start < len(sizes):
            count = batcher.fill(sizes[start:])
            assert count >= 1
            chunk = sizes[start : start + count]
            current += chunk
            start += count
            if batcher.add(len(chunk), sum(chunk), now=0.0):
                batches.append(current)
                current = []
                batcher.sealed()
    # Model: rows in arrival order; a batch closes at max_rows or once bytes reach max_bytes.
    model, open_batch = [], []
    for size in (s for sizes in reads for s in sizes):
        open_batch.append(size)
        if len(open_batch) == max_rows or sum(open_batch) >= max_bytes:
            model.append(open_batch)
            open_batch = []
    assert batches == model
    assert current == open_batch
