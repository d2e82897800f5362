"""Disk budget and disk-full: cleanup against real files, ENOSPC on a real 16 MiB tmpfs."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from gateway.supervise import wait_for
from gateway.supervise.chain import GATEWAY, read_status
from tests.support.batches import part_files, read_rows, sealed_files, seqs


@pytest.fixture
def small_disk(tmp_path):
    """A real 16 MiB file system (tmpfs): writes past it fail with ENOSPC."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); CI runs as root")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount_point)], check=True)


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fill(path: Path) -> Path:
    """Take every free byte, as another program on the gateway might."""
    filler = path / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
    return filler


def gateway_json(env, *args):
    done = subprocess.run(
        [GATEWAY, *args, "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def make_batches(firmware_sim, processes, env, samples=3000):
    sim = firmware_sim("--rate", "3000", "--samples", str(samples), "--seed", "2")
    reader = processes.gateway(
        "reader", "--port", str(sim.port), "--mode", "local", env=env, name="reader"
    )
    assert sim.wait(60) == 0, sim.stderr()
    assert reader.stop() == 0
    return sealed_files(Path(env["GATEWAY_DATA_DIR"]))


def test_cleanup_dry_run_and_real_run_agree(firmware_sim, processes, reader_env):
    env = reader_env(batch_rows=200, retain_uploaded_seconds=3600)
    batches = make_batches(firmware_sim, processes, env)
    assert len(batches) == 15
    old = time.time() - 7200
    for batch in batches[:6]:  # uploaded two hours ago
        batch.with_name(batch.name + ".touched").write_text("{}")
        os.utime(batch, (old, old))
    for batch in batches[6:9]:  # uploaded just now
        batch.with_name(batch.name + ".touched").write_text("{}")

    dry = gateway_json(env, "cleanup", "--dry-run")
    assert [Path(d["path"]) for d in dry["deletions"]] == batches[:6]
    assert all(d["reason"] == "uploaded and older than 3600 s" for d in dry["deletions"])
    assert set(sealed_files(Path(env["GATEWAY_DATA_DIR"]))) == set(batches), "dry run deleted"

    real = gateway_json(env, "cleanup")
    assert real["deletions"] == dry["deletions"]
    left = sealed_files(Path(env["GATEWAY_DATA_DIR"]))
    assert left == batches[6:]
    assert not any(b.with_name(b.name + ".touched").exists() for b in batches[:6])
    assert not real["stop_accepting"]


def test_keep_free_mark_with_only_unuploaded_data_stops_storing_without_losing_any(
    firmware_sim, processes, reader_env, small_disk
):
    env = reader_env(
        data_dir=small_disk / "data", batch_rows=500, keep_free_bytes="50%", cleanup_seconds=0.2
    )
    sim = firmware_sim("--rate", "4000", "--channels", "8", "--seed", "6")
    reader = processes.gateway(
        "reader", "--port", str(sim.port), "--mode", "local", env=env, name="reader"
    )
    data_dir = small_disk / "data"
    wait_for(
        lambda: (read_status(data_dir) or {}).get("storing") is False,
        60,
        message="the reader to stop storing at the keep-free mark",
    )
    refused_before = read_status(data_dir)["counters"]["rows_refused_full"]
    wait_for(
        lambda: read_status(data_dir)["counters"]["rows_refused_full"] > refused_before,
        10,
        message="rows refused while stopped",
    )
    assert free_bytes(small_disk) > 6 * 2**20, "stopped late: the disk filled anyway"
    # The uploader verifies and marks batches; marking them here stands in for it.
    for batch in sealed_files(data_dir):
        batch.with_name(batch.name + ".touched").write_text("{}")
    wait_for(
        lambda: read_status(data_dir)["storing"] is True,
        30,
        message="storing to resume once uploaded data can go",
    )
    sim.stop()
    assert reader.stop() == 0
    status = read_status(data_dir)
    assert status["counters"]["store_errors"] == 0, "hit ENOSPC although the policy stopped first"
    assert "event=storing_stopped_disk_limit" in reader.log()
    assert "event=storing_resumed" in reader.log()
    assert not (data_dir / "state" / "losses.jsonl").exists()


def test_disk_full_from_outside_is_survived_counted_and_recovered(
    firmware_sim, processes, reader_env, small_disk
):
    data_dir = small_disk / "data"
    env = reader_env(
        data_dir=data_dir, batch_rows=300, batch_seconds=1, keep_free_bytes=0, fsync_seconds=0.2
    )
    sim = firmware_sim("--rate", "3000", "--channels", "4", "--samples", "30000", "--seed", "8")
    reader = processes.gateway(
        "reader", "--port", str(sim.port), "--mode", "local", env=env, name="reader"
    )
    wait_for(
        lambda: (read_status(data_dir) or {}).get("next_seq", 0) > 2000,
        30,
        message="rows before the disk fills",
    )
    filler = fill(small_disk)
    assert free_bytes(small_disk) < 64 * 1024
    wait_for(
        lambda: (
            read_status(data_dir) is not None
            and read_status(data_dir)["counters"]["rows_not_stored"] > 1000
        ),
        30,
        message="rows the full disk refused",
    )
    assert reader.poll() is None, "the reader died on a full disk"
    filler.unlink()
    not_stored = read_status(data_dir)["counters"]["rows_not_stored"]
    wait_for(
        lambda: (
            read_status(data_dir)["counters"]["rows_accepted"]
            > read_status(data_dir)["counters"]["rows_not_stored"] + 3000
        ),
        30,
        message="rows stored again after space returned",
    )
    assert sim.wait(60) == 0, sim.stderr()
    assert reader.stop() == 0
    counters = read_status(data_dir)["counters"]
    assert counters["rows_not_stored"] >= not_stored and counters["store_errors"] > 0
    assert part_files(data_dir) == []
    rows = read_rows(data_dir)
    assert seqs(rows) == list(range(len(rows))), "seq has a gap"
    stored = {int(row[2]) for row in rows}
    missing = set(range(30_000)) - stored
    assert len(missing) == counters["rows_not_stored"] + counters["device_lines_lost"]
    assert counters["rows_accepted"] == len(rows) + counters["rows_not_stored"]
    assert "event=store_failed" in reader.log() and "event=store_recovered" in reader.log()
