"""The reader's shell without a port: hand-off events in, counts, log events and status out."""

import errno
import logging
import subprocess
import sys

import pytest

import gateway.reader.service
from gateway.core.reader_state import IllegalTransition, PortState
from gateway.reader.handoff import Data, Overflow, PortLost, PortOpened
from gateway.reader.service import ReaderService
from gateway.settings import Settings
from gateway.store.ledgers import not_stored, read_identity, read_status


def make_service(tmp_path, mode):
    settings = Settings(
        data_dir=tmp_path / "data", mode=mode, port="sim0", line_format="csv-seq", field_count=3
    )
    return ReaderService(settings)


def logged(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "gateway.reader"]


class CleanupStandIn:
    """The cleanup thread without a thread: the test says when a disk limit holds."""

    def __init__(self, settings):
        self.stop_accepting = False
        self.runs = self.deleted = 0
        self.last_error = ""

    def start(self):
        pass

    def stop(self):
        pass

    def check_now(self):
        pass


@pytest.fixture
def storing_service(tmp_path, caplog, monkeypatch):
    """A reader in mode local with its store recovered and its port open."""
    caplog.set_level(logging.INFO, logger="gateway.reader")
    monkeypatch.setattr(gateway.reader.service, "CleanupLoop", CleanupStandIn)
    service = make_service(tmp_path, "local")
    service._start_store()
    service._dispatch(PortOpened(1.0, "sim0"))
    return service


class StoppedPortThread:
    def stop(self):
        pass

    def join(self, timeout=None):
        pass


def test_a_lost_port_and_its_return_are_counted_logged_and_shown(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gateway.reader")
    service = make_service(tmp_path, "demo")
    assert service.status()["port_state"] == "WAITING_FOR_PORT"
    service._dispatch(PortOpened(1.0, "sim0"))
    service._dispatch(Data(1.5, b"0,0.1,1.0\n1,0.2,2.0\n2,0.3"))
    service._dispatch(PortLost(2.0, "device reports readiness to read but returned no data"))
    assert service.status()["port_state"] == "PORT_LOST"
    service._dispatch(PortOpened(5.5, "sim0"))
    service._dispatch(Overflow(6.0, dropped_bytes=10))

    status = service.status()
    assert (status["port_state"], status["storage_state"]) == ("READING", "NOT_STORING")
    counters = status["counters"]
    assert (counters["reconnects"], counters["port_outages"], counters["rows_accepted"]) == (
        1,
        1,
        2,
    )
    assert counters["partial_bytes_dropped"] == len(b"2,0.3")
    assert status["recent_outages"] == [
        {
            "start": 2.0,
            "end": 5.5,
            "seconds": 3.5,
            "error": "device reports readiness to read but returned no data",
        }
    ]
    assert logged(caplog) == ["port_opened", "port_lost", "port_back", "handoff_overflow"]


def test_a_port_event_the_port_thread_cannot_send_is_a_bug_that_raises(tmp_path):
    service = make_service(tmp_path, "demo")
    with pytest.raises(IllegalTransition, match="cannot handle LOST in state WAITING_FOR_PORT"):
        service._dispatch(PortLost(1.0, "gone"))
    assert service.port_machine.state is PortState.WAITING_FOR_PORT


def test_a_disk_limit_stops_and_resumes_storing_and_says_so_once(storing_service, caplog):
    service = storing_service
    service._dispatch(Data(1.1, b"0,0.1,1.0\n"))
    service.cleanup.stop_accepting = True
    service._dispatch(Data(1.2, b"1,0.2,1.0\n"))
    service._dispatch(Data(1.3, b"2,0.3,1.0\n3,0.4,1.0\n"))
    assert service.status()["storage_state"] == "REFUSING"
    assert service.status()["storing"] is False
    service.cleanup.stop_accepting = False
    service._dispatch(Data(1.4, b"4,0.5,1.0\n"))

    status = service.status()
    assert status["storage_state"] == "STORING"
    assert (status["next_seq"], status["counters"]["rows_refused_full"]) == (2, 3)
    assert status["counters"]["not_stored_by_cause"] == {"disk_limit": 3}
    assert logged(caplog) == ["storing_stopped_disk_limit", "rows_not_stored", "storing_resumed"]
    (entry,) = not_stored(service.data_dir)
    assert (entry.cause, entry.rows, entry.counters) == ("disk_limit", 3, [[1, 3, 1]])

    service._shutdown(StoppedPortThread())
    assert service.port_machine.state is PortState.STOPPED
    final = read_status(service.data_dir, "reader")
    assert (final["running"], final["port_state"], final["next_seq"]) == (False, "STOPPED", 2)


def test_a_full_disk_is_said_once_and_so_is_the_recovery(storing_service, caplog, monkeypatch):
    service = storing_service
    service._dispatch(Data(1.1, b"0,0.1,1.0\n"))

    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(service.store, "append", full_disk)
        patch.setattr(gateway.reader.service, "probe_writable", full_disk)
        service._dispatch(Data(1.2, b"1,0.2,1.0\n2,0.3,1.0\n"))
        assert service.status()["storage_state"] == "FAILING"
        service._dispatch(Data(1.3, b"3,0.4,1.0\n"))  # not tried: the disk refused
        service._on_tick(service._next_probe)  # a probe, refused too: nothing new to say
        assert service.status()["storage_state"] == "FAILING"
        assert service.status()["storage_fault"]["cause"] == "disk_full"
    service._on_tick(service._next_probe)  # the probe write goes through
    assert service.status()["storage_state"] == "STORING"
    service._dispatch(Data(1.4, b"4,0.4,1.0\n"))

    status = service.status()
    counters = status["counters"]
    assert (counters["store_errors"], counters["rows_not_stored"], status["next_seq"]) == (1, 3, 2)
    assert counters["not_stored_by_cause"] == {"disk_full": 3}
    assert status["storage_fault"] is None
    assert logged(caplog) == ["store_failed", "rows_not_stored", "store_recovered"]
    (entry,) = not_stored(service.data_dir)
    assert (entry.cause, entry.rows, entry.counters) == ("disk_full", 3, [[1, 3, 1]])
    assert entry.error == "[Errno 28] No space left on device"


def auto_service(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="gateway.reader")
    monkeypatch.setattr(gateway.reader.service, "CleanupLoop", CleanupStandIn)
    settings = Settings(data_dir=tmp_path / "data", mode="local", port="sim0", batch_rows=1000)
    service = ReaderService(settings)
    service._start_store()
    service._dispatch(PortOpened(1.0, "sim0"))
    return service


def sealed(service) -> list[bytes]:
    return [p.read_bytes() for p in sorted(service.data_dir.batches.rglob("*.csv"))]


def test_auto_says_what_it_detected_and_the_data_dir_remembers_it(tmp_path, monkeypatch, caplog):
    service = auto_service(tmp_path, monkeypatch, caplog)
    lines = b"".join(b"%.3f,%d\n" % (n / 10, n * 3) for n in range(12))
    service._dispatch(Data(1.5, b"0.0,0\n" + lines))  # the first line may be a tail: not evidence
    assert "format_detected" in logged(caplog)
    status = service.status()
    assert status["format"] == "auto" and status["format_detected"]["format"] == "csv"
    assert status["columns"] == ["f0", "f1"]
    assert read_identity(service.data_dir).line_format == "csv"
    service._shutdown(StoppedPortThread())
    (batch,) = sealed(service)
    assert batch.split(b"\n")[0] == b"seq,received_at,f0,f1"
    assert batch.count(b"\n") == 1 + 13


def test_a_device_that_restarts_with_a_new_header_gets_a_new_batch(tmp_path, monkeypatch, caplog):
    service = auto_service(tmp_path, monkeypatch, caplog)
    first = b"time;temp\n" + b"".join(b"%d;2%d,5\n" % (n, n % 10) for n in range(10))
    second = b"time;temp;rh\n" + b"".join(b"%d;21,5;4%d\n" % (n, n % 10) for n in range(10))
    service._dispatch(Data(1.5, first))
    service._dispatch(Data(2.5, second))
    service._shutdown(StoppedPortThread())
    old, new = sealed(service)
    assert old.split(b"\n")[:2] == [b"seq,received_at,time,temp", b'0,1.500000,0,"20,5"']
    assert new.split(b"\n")[0] == b"seq,received_at,time,temp,rh"
    assert new.count(b"\n") == 11
    assert "shape_changed" in logged(caplog)
    assert service.status()["counters"]["rows_rejected"] == 0


def test_a_clean_stop_stores_lines_held_while_the_shape_was_unknown(tmp_path, monkeypatch, caplog):
    service = auto_service(tmp_path, monkeypatch, caplog)
    service._dispatch(Data(1.5, b"17,0.1,5\n18,0.2,6\n"))  # too few lines to decide
    assert sealed(service) == [] and service.status()["counters"]["rows_accepted"] == 0
    service._shutdown(StoppedPortThread())
    (batch,) = sealed(service)
    assert batch.count(b"\n") == 3  # header and both lines


def test_an_overflows_device_gap_is_the_overflows_in_the_log_and_the_ledger(
    storing_service, caplog
):
    service = storing_service
    service._dispatch(Data(1.1, b"0,0.1,1.0\n1,0.2,1.0\n"))
    service._dispatch(Overflow(1.2, dropped_bytes=640))
    service._dispatch(Data(1.3, b"2,0.3,1.0\n9,0.4,1.0\n"))  # 2 follows 1: kept; 3-8 dropped
    gap = next(r.fields for r in caplog.records if r.getMessage() == "device_gap")
    assert gap["cause"] == "handoff_overflow"
    service._shutdown(StoppedPortThread())
    (entry,) = not_stored(service.data_dir)
    assert (entry.cause, entry.bytes) == ("handoff_overflow", 640)
    assert entry.counters == [[3, 8, 3]] and entry.rows == 6


def test_rejected_lines_the_quarantine_cannot_keep_are_counted_with_their_counters(
    storing_service, caplog
):
    service = storing_service
    service._dispatch(Data(1.1, b"0,0.1,1.0\n"))
    service.store.quarantine.max_day_bytes = 0  # the day's budget is spent
    service._dispatch(Data(1.2, b"1,0.2,x\n2,0.3,1.0\n"))
    service._shutdown(StoppedPortThread())
    (entry,) = not_stored(service.data_dir)
    assert (entry.cause, entry.rows, entry.counters) == ("rejected_not_kept", 1, [[1, 1, 1]])
    assert entry.error == "the day's budget of 0 bytes is spent"
    status = read_status(service.data_dir, "reader")
    assert status["counters"]["not_stored_by_cause"] == {"rejected_not_kept": 1}


def test_a_start_on_a_disk_that_refuses_counts_rows_and_recovers_at_the_first_good_probe(
    tmp_path, caplog, monkeypatch
):
    caplog.set_level(logging.INFO, logger="gateway.reader")
    monkeypatch.setattr(gateway.reader.service, "CleanupLoop", CleanupStandIn)
    service = make_service(tmp_path, "local")
    refused = OSError(errno.EROFS, "Read-only file system")

    def read_only(*args, **kwargs):
        raise refused

    with monkeypatch.context() as patch:
        patch.setattr(gateway.reader.service, "resume", read_only)
        patch.setattr(gateway.reader.service, "probe_writable", read_only)
        service._start_store()
        service._dispatch(PortOpened(1.0, "sim0"))
        service._dispatch(Data(1.1, b"0,0.1,1.0\n1,0.2,1.0\n"))
        service._on_tick(service._next_probe)
        assert service.status()["storage_state"] == "RECOVERING"
        assert service.status()["storage_fault"]["cause"] == "read_only"
    service._on_tick(service._next_probe)
    service._dispatch(Data(1.2, b"2,0.3,1.0\n"))
    service._shutdown(StoppedPortThread())
    assert logged(caplog)[:4] == [
        "recovery_waits",
        "port_opened",
        "rows_not_stored",
        "recovered_late",
    ]
    (entry,) = not_stored(service.data_dir)
    assert (entry.cause, entry.rows, entry.counters) == ("read_only", 2, [[0, 1, 0]])
    (batch,) = sealed(service)
    assert batch.split(b"\n")[1].startswith(b"0,1.200000,2,")


LOCAL_READER_IMPORTS = """
import sys
from pathlib import Path
from gateway.commands import cli
from gateway.reader import service
from gateway.settings import Settings

service.ReaderService.run = lambda self: 0
settings = Settings(
    data_dir=Path(sys.argv[1]), mode=sys.argv[2], port="sim0", stream_url="ws://127.0.0.1:9/x"
)
assert cli._reader(None, settings) == 0
print(sorted({"asyncio", "websockets", "email", "http"} & set(sys.modules)))
"""


@pytest.mark.parametrize(("mode", "streams"), [("local", False), ("demo", True)])
def test_a_reader_that_does_not_stream_never_imports_the_stream_client(tmp_path, mode, streams):
    # asyncio, websockets, email, http: about 6 MiB of memory a local reader does without.
    run = subprocess.run(
        [sys.executable, "-c", LOCAL_READER_IMPORTS, str(tmp_path), mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert (run.stdout.strip() == "[]") is not streams, run.stdout
