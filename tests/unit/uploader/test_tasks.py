"""The tasks get their runtime from one explicit binding, and redo an output they cannot read."""

import gzip
import json
import threading
from pathlib import Path

import luigi
import pytest

from gateway.core.upload_plan import make_chunks
from gateway.core.verification import StoreCapabilities, VerifyPolicy
from gateway.settings import Settings
from gateway.uploader import tasks
from gateway.uploader.parallel import DaskMapper
from gateway.uploader.results import BatchStatus, Validated
from gateway.uploader.runtime import TaskRuntime
from tests.support.uploads import write_batches


def runtime_for(data_dir, stop=None) -> TaskRuntime:
    """A runtime for the steps that need no S3 (Validate, Process)."""
    return TaskRuntime(
        client=None,
        uploads=None,
        mapper=DaskMapper(Settings(data_dir=data_dir, dask_mode="sync")),
        bucket="bucket",
        policy=VerifyPolicy(StoreCapabilities()),
        stop=stop or threading.Event(),
        emit=lambda event: None,
    )


def validate_tasks(data_dir, batches, per_chunk) -> list[tasks.Validate]:
    relpaths = [(p.relative_to(data_dir / "batches").as_posix(), 0) for p in batches]
    chunks = make_chunks(str(data_dir), "gw", relpaths, per_chunk, 1 << 30)
    return [
        tasks.Validate(**tasks.mark_task(chunk, Settings(s3_bucket="bucket")).param_kwargs)
        for chunk in chunks
    ]


@pytest.fixture
def bound(tmp_path):
    runtime = runtime_for(tmp_path)
    unbind = tasks.bind(runtime)
    yield runtime
    unbind()
    runtime.mapper.close()


def test_a_task_that_runs_unbound_says_what_to_do(tmp_path):
    task = validate_tasks(tmp_path, write_batches(tmp_path, 1, 3), 1)[0]
    with pytest.raises(tasks.Unbound) as raised:
        task.run()
    assert str(raised.value) == (
        "Validate ran with no runtime bound: "
        "call gateway.uploader.tasks.bind(runtime) before luigi.build"
    )


def test_binding_over_a_binding_is_refused_and_unbind_takes_back_only_its_own(tmp_path):
    first, second = runtime_for(tmp_path), runtime_for(tmp_path)
    unbind_first = tasks.bind(first)
    try:
        with pytest.raises(RuntimeError, match="bound already: call the unbind function first"):
            tasks.bind(second)
        unbind_first()
        unbind_second = tasks.bind(second)  # a reload: the new runtime replaces the old
        unbind_first()  # late, and not its binding any more
        task = validate_tasks(tmp_path, write_batches(tmp_path, 1, 3), 1)[0]
        assert task.runtime is second
        unbind_second()
        with pytest.raises(tasks.Unbound):
            task.runtime  # noqa: B018
    finally:
        unbind_first()
        first.mapper.close()
        second.mapper.close()


def test_every_pipeline_thread_runs_its_tasks_on_the_one_bound_runtime(tmp_path, bound):
    batches = write_batches(tmp_path, 6, 5)
    validates = validate_tasks(tmp_path, batches, 2)
    assert len(validates) == 3
    assert tasks.run_pipelines(validates, pipelines=2, scheduler_url="")
    results = [result for task in validates for result in task.read()]
    assert [r.status for r in results] == [BatchStatus.VALID] * 6
    assert [r.manifest.rows for r in results] == [5] * 6
    with open(validates[0].output().path) as output:  # a line per batch, every field named
        lines = output.read().splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == 2 + 2
    assert lines[1].startswith('{"batch": "2024/05/01/000000000000-000000000004.csv", ')


def test_a_stop_before_a_task_begins_leaves_it_undone(tmp_path, bound):
    task = validate_tasks(tmp_path, write_batches(tmp_path, 1, 3), 1)[0]
    bound.stop.set()
    assert not luigi.build([task], local_scheduler=True, workers=1)
    assert not task.complete()


def test_an_output_an_earlier_version_left_is_not_complete_and_is_done_again(tmp_path, bound):
    task = validate_tasks(tmp_path, write_batches(tmp_path, 2, 3), 2)[0]
    path = task.output().path
    earlier = [{"batch": batch, "status": "missing"} for batch in task.batches]
    task.output().makedirs()
    with open(path, "w") as file:
        json.dump(earlier, file)
    assert not task.complete()
    assert luigi.build([task], local_scheduler=True, workers=1)
    assert task.complete()
    assert [result.status for result in task.read()] == [BatchStatus.VALID] * 2
    assert isinstance(task.read()[0], Validated)


def test_small_batches_go_to_upload_in_memory_and_a_restart_processes_them_again(tmp_path):
    """Process keeps small batches' compressed copies in memory, not in the workspace; a new
    process (a restart) lacks them, so the chunk's Process is no longer done and runs again."""
    batches = write_batches(tmp_path, 3, 50)
    (validate,) = validate_tasks(tmp_path, batches, 3)
    process = tasks.Process(**validate.param_kwargs)
    first = runtime_for(tmp_path)
    unbind = tasks.bind(first)
    try:
        assert luigi.build([process], local_scheduler=True, workers=1)
        processed = process.read()
        assert len(first.copies) == 3 and process.complete()
        assert not any(Path(p.upload_path).exists() for p in processed)
        for entry, path in zip(processed, batches, strict=True):
            assert gzip.decompress(first.copies.take(entry.upload_path)) == path.read_bytes()
        assert not process.complete()  # a copy Upload took is no longer there to send
    finally:
        unbind()
        first.mapper.close()
    restarted = runtime_for(tmp_path)
    unbind = tasks.bind(restarted)
    try:
        assert not process.complete()
        assert luigi.build([process], local_scheduler=True, workers=1)
        assert process.read() == processed and len(restarted.copies) == 3
    finally:
        unbind()
        restarted.mapper.close()


def test_workers_in_other_processes_write_their_copies_to_the_workspace(tmp_path):
    (validate,) = validate_tasks(tmp_path, write_batches(tmp_path, 2, 50), 2)
    process = tasks.Process(**validate.param_kwargs)
    runtime = TaskRuntime(
        client=None,
        uploads=None,
        mapper=DaskMapper(Settings(data_dir=tmp_path, dask_mode="processes", dask_workers=1)),
        bucket="bucket",
        policy=VerifyPolicy(StoreCapabilities()),
        stop=threading.Event(),
        emit=lambda event: None,
    )
    unbind = tasks.bind(runtime)
    try:
        assert not runtime.mapper.shares_memory
        assert luigi.build([process], local_scheduler=True, workers=1)
        assert len(runtime.copies) == 0
        assert all(Path(p.upload_path).exists() for p in process.read()) and process.complete()
    finally:
        unbind()
        runtime.mapper.close()
