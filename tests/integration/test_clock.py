"""The real reader says what it knows of the clock: in its status and in the record of its run."""

from pathlib import Path

from gateway.reader.clock import probe_sync
from gateway.store.layout import DataDir
from gateway.store.ledgers import runs
from tests.integration.test_reader import final_status, start_reader


def test_the_run_record_and_the_status_carry_the_clocks_synchronization(
    firmware_sim, processes, reader_env
):
    sim = firmware_sim("--rate", "500", "--samples", "500")
    reader, data_dir = start_reader(processes, reader_env, sim.port)
    assert sim.wait(30) == 0, sim.stderr()
    assert reader.stop() == 0
    expected = probe_sync()  # this machine's clock, as the reader saw it
    clock = final_status(data_dir)["clock"]
    assert (clock["synced"], clock["source"]) == (expected.synced, expected.source)
    assert clock["synced_at_start"] == expected.synced
    assert clock["steps"] == 0 and clock["last_step"] is None
    (run,) = runs(DataDir(Path(data_dir)))
    assert run.clock_synced == expected.synced
    assert "event=clock_state" in reader.log()
