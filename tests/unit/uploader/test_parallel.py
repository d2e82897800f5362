"""DaskMapper: a map over Dask that keeps order, in few tasks however many items."""

import pytest

from gateway.settings import Settings
from gateway.uploader.parallel import GROUP_MIN_BYTES, GROUPS_PER_WORKER, DaskMapper


def square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("mode", ["sync", "threads", "processes"])
@pytest.mark.parametrize("count", [0, 1, 3, 8, 33, 100])
def test_map_gives_every_result_in_order_in_each_mode(tmp_path, mode, count):
    mapper = DaskMapper(Settings(data_dir=tmp_path, dask_mode=mode, dask_workers=2))
    try:
        assert mapper.map(square, list(range(count))) == [x * x for x in range(count)]
    finally:
        mapper.close()


@pytest.mark.parametrize("count", [1, 3, 8, 9, 32, 1000])
def test_items_go_to_dask_in_a_few_ordered_groups_per_worker(tmp_path, count):
    mapper = DaskMapper(Settings(data_dir=tmp_path, dask_mode="sync", dask_workers=2))
    groups = mapper.groups(list(range(count)))
    mapper.close()
    assert [x for group in groups for x in group] == list(range(count))
    assert len(groups) <= 2 * GROUPS_PER_WORKER
    if count <= 2 * GROUPS_PER_WORKER:
        assert all(len(group) == 1 for group in groups)


def test_given_sizes_small_items_stay_together_and_big_ones_spread(tmp_path):
    mapper = DaskMapper(Settings(data_dir=tmp_path, dask_mode="sync", dask_workers=2))
    try:
        small = [64 << 10] * 64  # a chunk of 64 KiB batches: 4 MiB, one task
        assert mapper.groups(list(range(64)), small) == [list(range(64))]
        big = [16 << 20] * 20  # each batch alone is worth a task: at most 8, in order
        groups = mapper.groups(list(range(20)), big)
        assert [x for group in groups for x in group] == list(range(20))
        assert len(groups) <= 2 * GROUPS_PER_WORKER and len(groups) >= 2
        # the last group takes what is left, however small
        assert mapper.groups([0, 1, 2], [GROUP_MIN_BYTES, GROUP_MIN_BYTES, 1]) == [[0], [1], [2]]
        assert mapper.map(square, list(range(64)), small) == [x * x for x in range(64)]
    finally:
        mapper.close()
