import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.retention import Item, RetentionPolicy, plan

DAY = 86400.0
NOW = 100 * DAY


def batch(n, size=100, age=DAY, touched=False):
    return Item(f"b{n:04d}", size, NOW - age, touched, "batch", n * 10, n * 10 + 9)


def test_uploaded_batches_past_retention_go_first_and_only_they():
    items = [
        batch(1, age=10 * DAY, touched=True),
        batch(2, age=DAY, touched=True),
        batch(3, age=30 * DAY),
    ]
    result = plan(
        items,
        free_bytes=10**9,
        total_bytes=10**10,
        policy=RetentionPolicy(retain_uploaded_seconds=7 * DAY),
        now=NOW,
    )
    assert [(d.item.key, d.reason) for d in result.deletions] == [
        ("b0001", "uploaded and older than 604800 s")
    ]
    assert not result.stop_accepting


def test_below_keep_free_uploaded_data_goes_regardless_of_age_oldest_first():
    items = [
        batch(3, age=1, touched=True),
        batch(1, age=3, touched=True),
        batch(2, age=2, touched=True),
        batch(4, age=5),
    ]
    result = plan(
        items,
        free_bytes=850,
        total_bytes=10_000,
        policy=RetentionPolicy(keep_free_bytes=1000),
        now=NOW,
    )
    assert [d.item.key for d in result.deletions] == ["b0001", "b0002"]
    assert result.deletions[0].reason == (
        "uploaded; 850 bytes free, below the keep-free mark of 1000"
    )
    assert result.free_after == 1050 and result.shortfall == 0


def test_not_uploaded_data_is_kept_and_the_reader_stops_by_default():
    items = [batch(1, touched=True), batch(2), batch(3)]
    result = plan(
        items,
        free_bytes=0,
        total_bytes=10_000,
        policy=RetentionPolicy(keep_free_percent=5),
        now=NOW,
    )
    assert [d.item.key for d in result.deletions] == ["b0001"]
    assert result.stop_accepting
    assert result.shortfall == 400


def test_drop_oldest_drops_not_uploaded_data_as_a_counted_loss():
    items = [batch(2), batch(1, age=2 * DAY), batch(3, age=0)]
    result = plan(
        items,
        free_bytes=0,
        total_bytes=10_000,
        policy=RetentionPolicy(keep_free_bytes=150, on_full="drop-oldest"),
        now=NOW,
    )
    assert [(d.item.key, d.loss) for d in result.deletions] == [("b0001", True), ("b0002", True)]
    assert result.deletions[0].reason.startswith("NOT UPLOADED, dropped by on_full=drop-oldest;")
    assert not result.stop_accepting


def test_max_data_bytes_is_a_limit_too():
    items = [batch(1, touched=True), batch(2, touched=True), batch(3)]
    result = plan(
        items,
        free_bytes=10**9,
        total_bytes=10**10,
        policy=RetentionPolicy(max_data_bytes=150),
        now=NOW,
    )
    assert [d.item.key for d in result.deletions] == ["b0001", "b0002"]
    assert result.deletions[0].reason == "uploaded; data holds 300 bytes, above the limit of 150"


def test_quarantine_is_bounded():
    quarantine = [Item(f"q{n}", 40, NOW - 10 + n, kind="quarantine") for n in range(5)]
    result = plan(quarantine, 10**9, 10**10, RetentionPolicy(max_quarantine_bytes=100), NOW)
    assert [d.item.key for d in result.deletions] == ["q0", "q1", "q2"]


def test_bad_policies_are_refused():
    with pytest.raises(ValueError, match="on_full must be one of stop-accepting, drop-oldest"):
        RetentionPolicy(on_full="panic")


ITEMS = st.lists(
    st.builds(
        Item,
        key=st.text("abcdef", min_size=1, max_size=6),
        size=st.integers(1, 1000),
        sealed_at=st.floats(NOW - 30 * DAY, NOW),
        touched=st.booleans(),
        kind=st.sampled_from(["batch", "batch", "quarantine"]),
    ),
    max_size=30,
    unique_by=lambda item: item.key,
)
POLICIES = st.builds(
    RetentionPolicy,
    keep_free_bytes=st.integers(0, 5000),
    keep_free_percent=st.sampled_from([0.0, 5.0, 20.0]),
    max_data_bytes=st.sampled_from([0, 500, 5000]),
    retain_uploaded_seconds=st.sampled_from([DAY, 7 * DAY, 365 * DAY]),
    on_full=st.sampled_from(["stop-accepting", "drop-oldest"]),
    max_quarantine_bytes=st.sampled_from([0, 300, 10**6]),
)


@given(ITEMS, st.integers(0, 6000), POLICIES)
def test_never_deletes_unuploaded_data_while_other_data_is_left(items, free, policy):
    result = plan(items, free, 10_000, policy, NOW)
    deleted = {d.item.key for d in result.deletions}
    if result.losses:
        assert policy.on_full == "drop-oldest"
        others = [i for i in items if i.touched or i.kind == "quarantine"]
        assert all(i.key in deleted for i in others)
        assert all(d.item.kind == "batch" and not d.item.touched for d in result.losses)


@given(ITEMS, st.integers(0, 6000), POLICIES)
def test_frees_what_is_needed_whenever_possible(items, free, policy):
    result = plan(items, free, 10_000, policy, NOW)
    deletable = [
        i for i in items if i.touched or i.kind == "quarantine" or policy.on_full == "drop-oldest"
    ]
    data = sum(i.size for i in items)
    all_freed = sum(i.size for i in deletable)
    keep_free = policy.keep_free(10_000)
    possible = free + all_freed >= keep_free and (
        not policy.max_data_bytes or data - all_freed <= policy.max_data_bytes
    )
    if possible:
        assert result.shortfall == 0
        assert not result.stop_accepting
    else:
        assert result.shortfall > 0
        assert result.stop_accepting == (policy.on_full == "stop-accepting")


@given(ITEMS, st.integers(0, 6000), POLICIES, st.randoms())
def test_plans_are_deterministic(items, free, policy, rng):
    shuffled = list(items)
    rng.shuffle(shuffled)
    assert plan(items, free, 10_000, policy, NOW) == plan(shuffled, free, 10_000, policy, NOW)


@given(ITEMS, st.integers(0, 6000), POLICIES)
def test_losses_are_minimal_and_only_existing_items_go(items, free, policy):
    result = plan(items, free, 10_000, policy, NOW)
    keys = [d.item.key for d in result.deletions]
    assert len(keys) == len(set(keys))
    assert set(keys) <= {i.key for i in items}
    if result.losses:
        # Without the last loss the limits would still be broken.
        last = result.losses[-1].item
        free_without = result.free_after - last.size
        data_without = result.data_after + last.size
        broken = free_without < policy.keep_free(10_000) or (
            policy.max_data_bytes and data_without > policy.max_data_bytes
        )
        assert broken


def test_random_example_is_stable():
    rng = random.Random(4)
    items = [
        batch(n, size=rng.randint(1, 500), age=rng.uniform(0, 9 * DAY), touched=rng.random() < 0.5)
        for n in range(50)
    ]
    policy = RetentionPolicy(keep_free_bytes=3000, on_full="drop-oldest")
    assert plan(items, 0, 10**6, policy, NOW) == plan(items[::-1], 0, 10**6, policy, NOW)
