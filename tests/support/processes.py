"""``gateway`` commands as real processes in tests, on the shared supervisor
(:mod:`gateway.supervise`): every one is stopped by PID at teardown, whatever happens."""

from __future__ import annotations

import os
import subprocess

from gateway.supervise import Service, Supervisor
from gateway.supervise.chain import GATEWAY


class ProcessGroup(Supervisor):
    """The ``processes`` fixture: what a test started, logs in ``tmp_path/logs``."""

    def gateway(self, *args: str, env: dict[str, str], name: str = "gateway") -> Service:
        """``gateway ARGS``, started."""
        return self.start(name, [GATEWAY, *args], env=env)


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
    assert reader.stop() == 0
    uploaded = run_gateway(env, "uploader", "--once")
    assert uploaded.returncode == 0, uploaded.stderr
