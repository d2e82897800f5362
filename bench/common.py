"""Shared pieces of the benchmarks: PTY pairs, process sampling, result files."""

from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path

from gateway.supervise import Supervisor, wait_for

RESULTS = Path(__file__).with_name("results")


@contextmanager
def pty_pair(directory: Path):
    """A socat PTY pair: write to ``device``, read from ``port`` (both raw, no echo)."""
    device, port = directory / "device", directory / "port"
    with Supervisor(directory / "logs") as supervisor:
        end = "pty,raw,echo=0,link={}"
        socat = supervisor.start(
            "socat", ["socat", "-b", "65536", end.format(device), end.format(port)]
        )
        wait_for(lambda: device.exists() and port.exists(), 10, "the PTY pair", service=socat)
        yield device, port


def write_file_to(path: Path, data: bytes, chunk: int = 65536) -> float:
    """Write ``data`` to a PTY as fast as it takes it; return the seconds it took."""
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
    start = time.perf_counter()
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[:chunk]) :]
    finally:
        os.close(fd)
    return time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def rss_bytes(pid: int, peak: bool = False) -> int:
    key = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} for {pid}")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (the reader's serial relay, for one)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [pid, *children]


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(p) for p in process_tree(pid))


def tree_rss_bytes(pid: int, peak: bool = False) -> int:
    return sum(rss_bytes(p, peak) for p in process_tree(pid))


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "machine": platform.machine(),
    }


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **result,
    }
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
