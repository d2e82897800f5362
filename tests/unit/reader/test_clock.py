"""The reader's clock watch with a stand-in probe and given clock readings: what it logs,
records in the ledger and publishes."""

import logging

from gateway.reader.clock import ClockSync, ClockWatch, adjtimex_synced, probe_sync
from gateway.store.layout import DataDir
from gateway.store.ledgers import ClockStepRecord, clock_steps


class Probe:
    def __init__(self, *answers: ClockSync) -> None:
        self.answers = list(answers)

    def __call__(self) -> ClockSync:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def events(caplog) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "gateway.reader"]


def test_an_unsynchronized_start_warns_and_a_step_is_logged_recorded_and_published(
    tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="gateway.reader")
    data_dir = DataDir(tmp_path / "data").ensure()
    watch = ClockWatch(data_dir, probe=Probe(ClockSync(False, "adjtimex")), recheck_seconds=0)
    assert watch.start(wall=1000.0, steady=1.0) == ClockSync(False, "adjtimex")
    watch.tick(wall=1001.0, steady=2.0)
    watch.tick(wall=1_780_000_000.0, steady=3.0)
    assert events(caplog) == [
        (logging.WARNING, "clock_state"),
        (logging.WARNING, "clock_stepped"),
    ]
    stepped = caplog.records[-1]
    assert stepped.fields["step_s"] == f"{1_780_000_000.0 - 1002.0:+.3f}"
    assert list(clock_steps(data_dir)) == [
        ClockStepRecord(1_780_000_000.0, 1_780_000_000.0 - 1002.0, False, stepped.process)
    ]
    status = watch.status()
    assert status["synced"] is False and status["source"] == "adjtimex"
    assert status["synced_at_start"] is False and status["steps"] == 1
    assert status["last_step"] == {"at": 1_780_000_000.0, "step_seconds": 1_779_998_998.0}


def test_synchronization_arriving_later_is_logged_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gateway.reader")
    probe = Probe(ClockSync(False, "timedatectl"), ClockSync(True, "timedatectl"))
    watch = ClockWatch(None, probe=probe, recheck_seconds=0)
    watch.start(wall=10.0, steady=1.0)
    watch._latest = probe()  # what the probing thread does every RECHECK_SECONDS
    watch.tick(wall=11.0, steady=2.0)
    watch.tick(wall=12.0, steady=3.0)
    assert events(caplog) == [
        (logging.WARNING, "clock_state"),
        (logging.INFO, "clock_synchronized"),
    ]
    assert watch.synced is True and watch.status()["synced_at_start"] is False


def test_a_mode_without_files_writes_no_ledger(tmp_path):
    watch = ClockWatch(None, probe=Probe(ClockSync(True, "adjtimex")), recheck_seconds=0)
    watch.start(wall=10.0, steady=1.0)
    watch.tick(wall=100.0, steady=2.0)
    assert watch.status()["steps"] == 1


def test_the_probe_answers_on_this_machine_from_adjtimex_or_says_it_cannot():
    """adjtimex reads the kernel's state (no privilege needed to read); where a sandbox
    refuses it, the probe goes on to timedatectl or says none."""
    synced = adjtimex_synced()
    found = probe_sync()
    if synced is not None:
        assert found == ClockSync(synced, "adjtimex")
    else:
        assert found.source in ("timedatectl", "none")
