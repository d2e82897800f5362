"""Crashes and commit order: the reader killed at random moments, and traced with strace."""

import os
import random
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from gateway.supervise import wait_for
from gateway.supervise.chain import GATEWAY, read_status
from tests.support.batches import part_files, read_rows, seqs

KILLS = int(os.environ.get("FIELDGATE_CRASH_KILLS", "50"))


def test_sigkill_at_random_moments_keeps_seq_gap_free(firmware_sim, processes, reader_env):
    sim = firmware_sim("--rate", "2000", "--seed", "9", "--channels", "4")
    env = reader_env(batch_rows=300, batch_seconds=0.4, fsync_seconds=0.1)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    rng = random.Random(20261128)
    for _ in range(KILLS):
        reader = processes.gateway(
            "reader", "--port", str(sim.port), "--mode", "local", env=env, name="reader"
        )
        # From interpreter start-up through recovery, appends, seals and fsyncs.
        reader_life = rng.uniform(0.05, 0.8)
        try:
            reader.wait(reader_life)
        except subprocess.TimeoutExpired:
            pass
        assert reader.poll() is None, f"reader exited by itself:\n{reader.log()[-3000:]}"
        reader.kill()
    reader = processes.gateway(
        "reader", "--port", str(sim.port), "--mode", "local", env=env, name="reader"
    )
    wait_for(
        lambda: (read_status(data_dir) or {}).get("pid") == reader.pid,
        20,
        message="the last reader to publish its status",
    )
    assert reader.stop() == 0
    sim.stop()

    assert part_files(data_dir) == [], "recovery left a .part behind"
    rows = read_rows(data_dir)  # every row parses; every file's seq matches its name
    assert seqs(rows) == list(range(len(rows))), "seq has a gap or a duplicate"
    device_counters = [int(row[2]) for row in rows]
    assert device_counters == sorted(set(device_counters)), "a device line was stored twice"
    assert len(rows) > KILLS * 100, f"only {len(rows)} rows over {KILLS} runs"


STRACE = shutil.which("strace")
_SYSCALL = re.compile(r"^\d+\s+(?P<call>\w+)\((?P<args>.*)\)\s+=\s+(?P<result>-?\d+)")
_FD_PATH = re.compile(r"^\d+<(?P<path>[^>]*)>")
_RENAME = re.compile(r'"(?P<old>[^"]+)", (?:\w+<[^>]*>, )?"(?P<new>[^"]+)"')


@pytest.mark.skipif(STRACE is None, reason="strace absent; `make setup` installs it")
def test_every_commit_fsyncs_file_before_rename_and_folder_after(
    firmware_sim, processes, reader_env, tmp_path
):
    sim = firmware_sim("--rate", "2000", "--samples", "3000", "--seed", "4")
    trace = tmp_path / "strace.txt"
    strace = [STRACE, "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2"]
    reader = processes.start(
        "strace",
        [*strace, "-o", str(trace), GATEWAY, "reader", "--port", str(sim.port), "--mode", "local"],
        env=reader_env(batch_rows=500),
    )
    assert sim.wait(60) == 0, sim.stderr()
    traced = Path(f"/proc/{reader.pid}/task/{reader.pid}/children").read_text().split()
    assert len(traced) == 1, traced
    os.kill(int(traced[0]), signal.SIGTERM)  # the reader, not strace
    assert reader.wait(20) == 0  # strace exits with its tracee's status
    events = []  # ("fsync", path) or ("rename", old, new), in order
    for line in trace.read_text().splitlines():
        match = _SYSCALL.match(line)
        if not match or match["result"] != "0":
            continue
        if match["call"] in ("fsync", "fdatasync"):
            events.append(("fsync", _FD_PATH.match(match["args"])["path"]))
        else:
            renamed = _RENAME.search(match["args"])
            events.append(("rename", renamed["old"], renamed["new"]))
    commits = [
        i
        for i, e in enumerate(events)
        if e[0] == "rename" and e[1].endswith(".part") and e[2].endswith(".csv")
    ]
    assert len(commits) == 6, f"expected 6 batch commits, traced {len(commits)}"
    for index in commits:
        _, old, new = events[index]
        previous_renames = [i for i in range(index) if events[i][0] == "rename"]
        since = previous_renames[-1] + 1 if previous_renames else 0
        assert ("fsync", old) in events[since:index], f"{old} not fsynced before its rename"
        following = events[index + 1 :]
        next_rename = next((i for i, e in enumerate(following) if e[0] == "rename"), len(following))
        assert ("fsync", str(Path(new).parent)) in following[:next_rename], (
            f"folder of {new} not fsynced after the rename"
        )
