"""A real Dask distributed cluster for tests: ``dask scheduler`` and ``dask worker`` processes
on 127.0.0.1, stopped by PID, whatever happens."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from gateway.supervise import Supervisor, free_port

DASK = str(Path(sys.executable).with_name("dask"))


@contextlib.contextmanager
def dask_cluster(
    directory: Path, workers: int, threads: int, env: dict | None = None
) -> Iterator[str]:
    """Yield the scheduler's address once ``workers`` workers of ``threads`` threads joined."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    with Supervisor(directory) as supervisor:
        supervisor.start(
            "dask-scheduler",
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=env,
        )
        for index in range(workers):
            supervisor.start(
                f"dask-worker-{index}",
                [DASK, "worker", address, "--nthreads", str(threads), "--no-nanny"]
                + ["--no-dashboard"],
                env=env,
            )
        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address
