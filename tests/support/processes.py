"""Start ``gateway`` commands as real processes; stop them by PID, whatever happens."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

GATEWAY = str(Path(sys.executable).with_name("gateway"))


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LoggedProcess:
    """A started process, its output in a file; ``stop()`` by PID: SIGTERM, then SIGKILL."""

    def __init__(self, args: list[str], log_path: Path, env: dict | None = None, **popen) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            args,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            **popen,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def terminate(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> int:
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(10)

    def stop(self, timeout: float = 10) -> None:
        """Teardown: SIGTERM, then SIGKILL; never leaves the process behind."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


class GatewayProcess(LoggedProcess):
    """One ``gateway ...`` process with its environment, stderr kept in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        super().__init__([GATEWAY, *args], log_path, env)
        self.args = args


class ProcessGroup:
    """Everything a test started; ``stop_all`` at teardown."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[GatewayProcess] = []

    def gateway(self, *args: str, env: dict[str, str], name: str = "gateway") -> GatewayProcess:
        log_path = self.directory / f"{name}-{len(self.started)}.log"
        process = GatewayProcess(list(args), env, log_path)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()


def wait_for(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail with ``message`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def read_status(data_dir: Path, service: str = "reader") -> dict | None:
    try:
        return json.loads((data_dir / "state" / f"{service}.status.json").read_text())
    except (FileNotFoundError, ValueError):
        return None


def run_gateway(env: dict[str, str], *args: str, timeout: float = 120):
    """``gateway ARGS`` to completion, output captured as text."""
    return subprocess.run(
        [GATEWAY, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def record_and_upload(firmware_sim, processes: ProcessGroup, env: dict[str, str], *sim_args):
    """firmware-sim SIM_ARGS -> reader (local mode) until the simulator is done -> uploader
    ``--once``: the whole chain, each step by its real command."""
    sim = firmware_sim(*sim_args)
    reader = processes.gateway(
        "reader", "--port", str(sim.port), "--mode", "local", env=env, name="reader"
    )
    assert sim.wait(60) == 0, sim.stderr()
    assert reader.terminate() == 0
    uploaded = run_gateway(env, "uploader", "--once")
    assert uploaded.returncode == 0, uploaded.stderr
