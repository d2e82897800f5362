"""A real Dask distributed cluster for tests: ``dask scheduler`` and ``dask worker`` processes
on 127.0.0.1, stopped by PID, whatever happens."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.processes import LoggedProcess, free_port

DASK = str(Path(sys.executable).with_name("dask"))


@contextlib.contextmanager
def dask_cluster(
    directory: Path, workers: int, threads: int, env: dict | None = None
) -> Iterator[str]:
    """Yield the scheduler's address once ``workers`` workers of ``threads`` threads joined."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    started: list[LoggedProcess] = []

    def start(name: str, *args: str) -> None:
        started.append(
            LoggedProcess(
                [DASK, *args, "--no-dashboard"],
                directory / f"dask-{name}.log",
                env,
                stdin=subprocess.DEVNULL,
            )
        )

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port))
        for index in range(workers):
            start(f"worker-{index}", "worker", address, "--nthreads", str(threads), "--no-nanny")
        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address
    finally:
        for process in reversed(started):
            process.stop(15)
