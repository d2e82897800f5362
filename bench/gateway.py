"""bench/gateway: the whole gateway as deployed, at 8 channels x 1 kHz, for a minute.

The reader (full mode, streaming), its serial relay, the uploader and the site run pinned to one
core (``taskset``), as on a Pi where they share the little there is; firmware-sim and the S3
server run on the other core. Measured twice: while nobody watches (the site has paused the
reader's frames: a gateway's usual day), then with one live view open. Per process (each with
its children) and summed: CPU % of one core and RSS (steady and peak). Baselines from the same
run:

* ``copy``: ``cat`` copying the same PTY stream into a file on the same core: the least any
  program can spend to keep the bytes;
* ``interpreter``: the RSS of a bare ``python -c`` that imported nothing: what each of the four
  Python processes costs before fieldgate adds anything.

    python -m bench.gateway [--seconds 60] [--warmup 15]  (each state: warm-up, then seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import rss_bytes, save, tree_cpu_seconds, tree_rss_bytes
from gateway.supervise import Supervisor, wait_for
from gateway.supervise.chain import (
    LocalGateway,
    LocalS3,
    LocalSite,
    SiteLogin,
    read_status,
    site_env,
    start_simulator,
)
from tests.support.web import Viewer, viewer_cookie

CORE = "0"  # the gateway's core; the simulator and S3 get the other one
SIMULATOR = ("--rate", "1000", "--channels", "8", "--waveform", "ecg", "--seed", "1")
LOGIN = SiteLogin("bench", "fgt_bench-token-0123456789abcdef", "bench", "bench-password")
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
TARGETS = {"reader_cpu_percent_below": 1.5, "total_rss_mib_below": 160.0}


def pin(pid: int, core: str) -> None:
    """Put ``pid`` and every thread and child it has now on ``core``."""
    subprocess.run(["taskset", "-a", "-p", "-c", core, str(pid)], capture_output=True, check=True)


def other_core() -> str:
    return "1" if (os.cpu_count() or 1) > 1 else CORE


def measure(pids: dict[str, int], seconds: float) -> dict:
    before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
    start = time.perf_counter()
    rss: dict[str, list[int]] = {name: [] for name in pids}
    while time.perf_counter() - start < seconds:
        for name, pid in pids.items():
            rss[name].append(tree_rss_bytes(pid))
        time.sleep(1.0)
    elapsed = time.perf_counter() - start
    result = {}
    for name, pid in pids.items():
        result[name] = {
            "cpu_percent_of_one_core": round(
                100 * (tree_cpu_seconds(pid) - before[name]) / elapsed, 2
            ),
            "rss_mib": round(max(rss[name]) / 2**20, 1),
            "peak_rss_mib": round(tree_rss_bytes(pid, peak=True) / 2**20, 1),
        }
    return result


def totals(processes: dict) -> dict:
    return {
        "cpu_percent_of_one_core": round(
            sum(p["cpu_percent_of_one_core"] for p in processes.values()), 2
        ),
        "rss_mib": round(sum(p["rss_mib"] for p in processes.values()), 1),
        "peak_rss_mib": round(sum(p["peak_rss_mib"] for p in processes.values()), 1),
    }


def stream(data_dir: Path) -> dict:
    """The reader's live-stream counters, as it last published them."""
    return (read_status(data_dir) or {}).get("stream") or {}


def copy_baseline(link: Path, work: Path, seconds: float) -> dict:
    """``cat`` from the simulator's PTY into a file, on the gateway's core."""
    with open(work / "copy.out", "wb") as out:
        cat = subprocess.Popen(["taskset", "-c", CORE, "cat", str(link)], stdout=out)
        try:
            time.sleep(2)
            measured = measure({"cat": cat.pid}, seconds)["cat"]
        finally:
            cat.terminate()
            cat.wait(10)
    return measured


def interpreter_rss() -> float:
    probe = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        time.sleep(1)
        return round(rss_bytes(probe.pid) / 2**20, 1)
    finally:
        probe.kill()
        probe.wait()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=15)
    args = parser.parse_args(argv)
    if shutil.which("taskset") is None:
        raise SystemExit("bench/gateway needs taskset (util-linux)")
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    try:
        with Supervisor(work / "logs") as supervisor:
            baseline_link = work / "tty-copy"
            sim = start_simulator(supervisor, baseline_link, *SIMULATOR, name="sim-copy")
            pin(sim.pid, other_core())
            copy = copy_baseline(baseline_link, work, min(args.seconds, 20))
            sim.stop()

            s3 = LocalS3(supervisor, "fieldgate-bench", CREDENTIALS)
            site = LocalSite(supervisor, site_env(work / "web"), login=LOGIN)
            link = work / "tty"
            sim = start_simulator(supervisor, link, *SIMULATOR)
            for service in (s3.service, sim):
                pin(service.pid, other_core())
            env = {
                **s3.gateway_env(prefix="bench"),
                **site.gateway_env(),
                "GATEWAY_ID": LOGIN.gateway_id,
                "GATEWAY_DATA_DIR": str(work / "data"),
                "GATEWAY_LINE_FORMAT": "csv-seq",
                "GATEWAY_LOG_LEVEL": "warning",
            }
            gateway = LocalGateway(supervisor, env, str(link), mode="full").start()
            wait_for(
                lambda: (read_status(gateway.data_dir) or {}).get("next_seq", 0) > 1000,
                60,
                "the reader storing rows",
            )
            pids = {
                "reader": gateway.reader.pid,
                "uploader": gateway.uploader.pid,
                "site": site.service.pid,
            }
            for pid in pids.values():
                pin(pid, CORE)
            # Nobody watches (a gateway's usual day): the site pauses the frames after
            # 3 x FIELDGATE_WEB_WATCH_SECONDS.
            wait_for(lambda: stream(gateway.data_dir).get("watched") is False, 60, "the pause")
            time.sleep(args.warmup)
            unwatched = measure(pids, args.seconds)
            # One live view open: frames at the gather's pace, as before the pause existed.
            viewer = Viewer(site.base, f"/ws/live/{LOGIN.gateway_id}/", viewer_cookie(site))
            try:
                wait_for(viewer.frames, 30, "frames at the viewer")
                time.sleep(args.warmup)
                watched = measure(pids, args.seconds)
                frames = len(viewer.frames())
            finally:
                viewer.stop()
            rows = (read_status(gateway.data_dir) or {}).get("next_seq", 0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    python_rss = interpreter_rss()
    result = {
        "seconds": args.seconds,
        "rows_stored": rows,
        # Nobody watching (frames paused); the reader includes its relay process.
        "processes": unwatched,
        "total": totals(unwatched),
        # One live view open the whole time (it received `frames` frames).
        "watched": {"processes": watched, "total": totals(watched), "viewer_frames": frames},
        "baseline_copy": copy,
        "baseline_interpreter_rss_mib": python_rss,
        "ratio_cpu_to_copy": round(
            totals(unwatched)["cpu_percent_of_one_core"]
            / max(copy["cpu_percent_of_one_core"], 0.01),
            1,
        ),
        "rss_above_bare_interpreters_mib": round(totals(unwatched)["rss_mib"] - 3 * python_rss, 1),
        "targets": TARGETS,
    }
    for state, found in (("", unwatched), ("_watched", watched)):
        result[f"meets_targets{state}"] = (
            found["reader"]["cpu_percent_of_one_core"] < TARGETS["reader_cpu_percent_below"]
            and totals(found)["rss_mib"] < TARGETS["total_rss_mib_below"]
        )
    path = save("gateway", result)
    print(json.dumps(result, indent=2))
    print(f"written to {path}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
