"""Run ``firmware-sim`` as a subprocess, stop it by PID (for tests, hil/ and tools).

``start_simulator`` returns once the port's symlink exists. With the default
(``--wait-reader``) the simulator then waits for a reader: open the port, and the first line
follows about 50 ms later. If the simulator is killed outright, its socat gets SIGTERM from
the kernel (PR_SET_PDEATHSIG) and removes the links, so nothing outlives a test.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.005


class SimulatorFailed(RuntimeError):
    """The simulator exited (or never became ready); the message includes its stderr."""


class SimulatorProcess:
    def __init__(
        self,
        process: subprocess.Popen[bytes],
        port: str,
        fault_log: str | None,
        stderr_path: str,
        owns_stderr_file: bool,
    ):
        self.process = process
        self.port = port
        self.fault_log = fault_log
        self.stderr_path = stderr_path
        self._owns_stderr_file = owns_stderr_file
        self._stderr_text: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float | None = None) -> int:
        """Exit status once the simulator ends (raises ``subprocess.TimeoutExpired``)."""
        status = self.process.wait(timeout)
        self._keep_stderr()
        return status

    def send_signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then SIGKILL if it has not ended within ``timeout``; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._keep_stderr()
        return self.process.returncode

    def _keep_stderr(self) -> None:
        if self._stderr_text is None and self._owns_stderr_file:
            self._stderr_text = self.stderr()
            os.unlink(self.stderr_path)

    def stderr(self) -> str:
        """What the simulator wrote to stderr so far."""
        if self._stderr_text is not None:
            return self._stderr_text
        return Path(self.stderr_path).read_text(errors="replace")

    def fault_entries(self) -> list[dict[str, Any]]:
        """The fault log, one dict per injected fault, in order."""
        if self.fault_log is None:
            return []
        text = Path(self.fault_log).read_text()
        return [json.loads(line) for line in text.splitlines()]

    def __enter__(self) -> "SimulatorProcess":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def simulator_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "firmware_sim", *args]


def start_simulator(
    *args: str,
    link: str | os.PathLike[str],
    fault_log: str | os.PathLike[str] | None = None,
    stderr_path: str | os.PathLike[str] | None = None,
    ready_timeout: float = READY_TIMEOUT,
) -> SimulatorProcess:
    """Start ``firmware-sim --link LINK [--fault-log FILE] ARGS...``; return once LINK exists."""
    link = os.fspath(link)
    command = ["--link", link]
    if fault_log is not None:
        fault_log = os.fspath(fault_log)
        command += ["--fault-log", fault_log]
    owns_stderr_file = stderr_path is None
    if stderr_path is None:
        handle, stderr_path = tempfile.mkstemp(prefix="firmware-sim-", suffix=".stderr")
        os.close(handle)
    stderr_path = os.fspath(stderr_path)
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            simulator_command(*command, *args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    sim = SimulatorProcess(process, link, fault_log, stderr_path, owns_stderr_file)
    deadline = time.monotonic() + ready_timeout
    while not os.path.islink(link):
        status = process.poll()
        if status is not None:
            sim.stop()
            raise SimulatorFailed(
                f"firmware-sim exited with status {status} before {link} appeared: "
                f"{sim.stderr().strip()}"
            )
        if time.monotonic() >= deadline:
            sim.stop()
            raise SimulatorFailed(
                f"{link} did not appear within {ready_timeout:g} s: {sim.stderr().strip()}"
            )
        time.sleep(POLL_INTERVAL)
    return sim
