"""Dask's other ways to run the processing: local processes, and a distributed cluster (a
real scheduler and worker, as separate processes, reached at GATEWAY_DASK_SCHEDULER)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.supervise import free_port, wait_for
from gateway.supervise.chain import GATEWAY, read_status
from tests.support.dask import dask_cluster as start_dask_cluster
from tests.support.s3 import (  # noqa: F401 (fixtures: moto, uploader_env)
    BUCKET,
    all_versions,
    moto_fixture,
    uploader_env_fixture,
)
from tests.support.uploads import object_bytes, touched_marks, write_batches


def upload_all(env, paths, s3):
    result = subprocess.run(
        [GATEWAY, "uploader", "--once"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    marks = touched_marks(data_dir)
    assert set(marks) == set(paths)
    for path, mark in marks.items():
        assert object_bytes(s3, BUCKET, mark["key"]) == path.read_bytes()
    assert all(count == 1 for count in all_versions(s3, BUCKET).values())
    assert read_status(data_dir, "uploader")["counters"]["uploaded"] == len(paths)
    return result.stderr


def test_processing_in_dask_processes(moto, uploader_env):
    env = uploader_env(moto.url, dask_mode="processes")
    paths = write_batches(Path(env["GATEWAY_DATA_DIR"]), 20, 500)
    log = upload_all(env, paths, moto.client)
    assert "dask=processes" in log


@pytest.fixture
def dask_cluster(tmp_path):
    """``dask scheduler`` and one ``dask worker`` of two threads."""
    with start_dask_cluster(tmp_path, workers=1, threads=2, env=None) as address:
        yield address


def test_processing_on_a_dask_distributed_cluster(moto, uploader_env, dask_cluster, tmp_path):
    env = uploader_env(moto.url, dask_scheduler=dask_cluster)
    paths = write_batches(Path(env["GATEWAY_DATA_DIR"]), 20, 500)
    log = upload_all(env, paths, moto.client)
    assert f"dask={dask_cluster}" in log
    # The work ran on the worker: it imported the uploader's core functions to run them.
    from distributed import Client

    with Client(dask_cluster, timeout=30) as client:
        loaded = client.run(
            lambda: __import__("sys").modules.get("gateway.uploader.steps") is not None
        )
    assert list(loaded.values()) == [True]


def test_a_central_luigi_scheduler_sees_the_dag(moto, uploader_env, processes, tmp_path):
    port = free_port()
    luigid = processes.start(
        "luigid",
        [
            str(Path(sys.executable).with_name("luigid")),
            *("--address", "127.0.0.1", "--port", str(port)),
            *("--state-path", str(tmp_path / "luigi-state.pickle")),
        ],
    )
    url = f"http://127.0.0.1:{port}/"
    wait_for(
        lambda: _get(url + "api/task_list?data={}") is not None, 30, interval=0.2, service=luigid
    )
    env = uploader_env(moto.url, luigi_scheduler_url=url, upload_chunk_batches=5)
    paths = write_batches(Path(env["GATEWAY_DATA_DIR"]), 10, 100)
    upload_all(env, paths, moto.client)
    done = _get(url + 'api/task_list?data={"status":"DONE"}')["response"]
    families = sorted(task["name"] for task in done.values())
    # Two chunks of five batches, each through the five steps.
    assert families == sorted(["Validate", "Process", "Upload", "Verify", "Mark"] * 2)


def _get(url):
    import json
    import urllib.parse
    import urllib.request

    base, _, query = url.partition("?")
    if query:
        key, _, value = query.partition("=")
        url = f"{base}?{key}={urllib.parse.quote(value)}"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None
