"""What the service makes of each event the steps emit: retries, counters, status, log lines."""

import logging
import time

import pytest

from gateway.settings import Settings
from gateway.uploader.events import AlreadyThere, Failed, Quarantined, Sent, Uploaded
from gateway.uploader.service import UploaderService

BATCH = "2024/05/01/000000000000-000000000099.csv"
KEY = "raw/gw/2024/05/01/000000000000-000000000099.csv.gz"

STATUS_KEYS = [
    "service",
    "pid",
    "started_at",
    "updated_at",
    "running",
    "once",
    "bucket",
    "prefix",
    "endpoint",
    "s3",
    "counters",
    "last_error",
    "last_success",
    "data_dirs",
]
COUNTERS = [
    "uploaded",
    "already_there",
    "bytes",
    "pending",
    "failed",
    "failures",
    "quarantined",
    "days_marked",
    "rejected_files",
]


@pytest.fixture
def service(tmp_path):
    settings = Settings(
        data_dir=tmp_path, s3_bucket="bucket", dask_mode="sync", upload_once_attempts=2
    )
    reload = lambda: settings.replace(upload_retry_base_seconds=9)  # noqa: E731
    service = UploaderService(settings, once=True, reload=reload)
    yield service
    service.request_stop()
    service.run()  # stopped before its loop: it only publishes, unbinds and closes


@pytest.fixture
def events(caplog):
    caplog.set_level(logging.DEBUG, logger="gateway.uploader")

    def logged(name):
        return [record.fields for record in caplog.records if record.getMessage() == name]

    return logged


def status_of(service, data_dir):
    return service.tally.document(
        str(data_dir),
        settings=service.settings,
        once=service.once,
        started_at=0.0,
        running=True,
        data_dirs=1,
    )


def test_the_status_document_keeps_its_keys(service, tmp_path):
    status = status_of(service, tmp_path)
    assert list(status) == STATUS_KEYS
    assert list(status["counters"]) == COUNTERS
    assert status["last_error"] is None and status["last_success"] is None
    assert status["s3"] is None  # until the store is probed


def test_a_sent_object_changes_no_counter(service, tmp_path):
    before = status_of(service, tmp_path)["counters"]
    service.runtime.emit(Sent(str(tmp_path), BATCH, 100))
    assert status_of(service, tmp_path)["counters"] == before


def test_an_object_already_there_is_counted_and_logged(service, tmp_path, events):
    service.runtime.emit(AlreadyThere(str(tmp_path), BATCH, KEY))
    assert status_of(service, tmp_path)["counters"]["already_there"] == 1
    assert events("object_already_there") == [{"batch": BATCH, "key": KEY}]


def test_failures_back_a_batch_off_until_once_gives_up_and_a_success_clears_them(
    service, tmp_path, events
):
    data_dir, batch = str(tmp_path), (str(tmp_path), BATCH)
    service.runtime.emit(Failed(data_dir, BATCH, KEY, "SlowDown: back off"))
    status = status_of(service, tmp_path)
    assert (status["counters"]["failed"], status["counters"]["failures"]) == (1, 1)
    assert status["last_error"] | {"at": 0} == {
        "at": 0,
        "batch": BATCH,
        "key": KEY,
        "error": "SlowDown: back off",
        "attempts": 1,
    }
    assert service.retries.not_before(batch) >= time.monotonic() - 1
    assert not service.retries.given_up(batch)
    service.runtime.emit(Failed(data_dir, BATCH, KEY, "SlowDown: back off"))
    counters = status_of(service, tmp_path)["counters"]
    assert (counters["failed"], counters["failures"]) == (1, 2)
    assert service.retries.given_up(batch)  # upload_once_attempts=2
    assert [e["attempt"] for e in events("upload_failed")] == [1, 2]
    assert events("upload_failed")[0]["error"] == "SlowDown: back off"

    service.tally.scanned(data_dir, 1)
    service.runtime.emit(Uploaded(data_dir, BATCH, KEY, 1234))
    status = status_of(service, tmp_path)
    assert status["counters"] | {"failures": 0} == {
        "uploaded": 1,
        "already_there": 0,
        "bytes": 1234,
        "pending": 0,
        "failed": 0,
        "failures": 0,
        "quarantined": 0,
        "days_marked": 0,
        "rejected_files": 0,
    }
    assert status["last_success"] | {"at": 0} == {"at": 0, "batch": BATCH, "key": KEY}
    assert service.retries.not_before(batch) == 0.0
    assert events("batch_uploaded") == [{"batch": BATCH, "key": KEY, "bytes": 1234}]


def test_a_quarantined_batch_is_counted_apart_and_logged_as_a_warning(
    service, tmp_path, events, caplog
):
    service.runtime.emit(Quarantined(str(tmp_path), BATCH, "raw/quarantine/x", 99, "no rows"))
    counters = status_of(service, tmp_path)["counters"]
    assert (counters["quarantined"], counters["uploaded"], counters["bytes"]) == (1, 0, 0)
    (record,) = [r for r in caplog.records if r.getMessage() == "batch_quarantined"]
    assert record.levelno == logging.WARNING
    assert record.fields == {
        "batch": BATCH,
        "key": "raw/quarantine/x",
        "bytes": 99,
        "reason": "no rows",
    }


def test_a_reload_forgets_every_failure_but_not_what_once_gave_up(service, tmp_path):
    batch = (str(tmp_path), BATCH)
    for _ in range(2):
        service.runtime.emit(Failed(str(tmp_path), BATCH, KEY, "NoSuchBucket"))
    old_runtime = service.runtime
    service._apply_reload()
    assert service.runtime is not old_runtime
    assert service.retries.not_before(batch) == 0.0 and service.retries.given_up(batch)
    assert status_of(service, tmp_path)["counters"]["failed"] == 0
    assert service.retries.backoff.base == 9
