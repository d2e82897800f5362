"""pytest fixtures shipped with the simulator (registered as a pytest11 entry point, so
tests/ and hil/ both have them).

``firmware_sim`` is a factory::

    def test_reader(firmware_sim):
        sim = firmware_sim("--rate", "1000", "--samples", "5000")
        with serial.Serial(sim.port, timeout=2) as port:  # the simulator starts sending now
            ...
        assert sim.wait(10) == 0
        assert sim.fault_entries() == []

Every call starts one simulator (its own link and fault log under a temporary directory,
unless ``link=`` / ``fault_log=`` are given). At teardown, pass or fail, each one is stopped
by PID (SIGTERM, then SIGKILL).
"""

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware_sim.launcher import READY_TIMEOUT, SimulatorProcess, start_simulator

StartSimulator = Callable[..., SimulatorProcess]


@pytest.fixture
def firmware_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartSimulator]:
    directory = tmp_path_factory.mktemp("firmware-sim")
    started: list[SimulatorProcess] = []
    numbers = itertools.count()

    def start(
        *args: str,
        link: str | Path | None = None,
        fault_log: str | Path | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> SimulatorProcess:
        index = next(numbers)
        sim = start_simulator(
            *args,
            link=link if link is not None else directory / f"ttyFG{index}",
            fault_log=fault_log if fault_log is not None else directory / f"faults{index}.jsonl",
            stderr_path=directory / f"stderr{index}.txt",
            ready_timeout=ready_timeout,
        )
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()
