"""The book of rows not stored: episodes by cause, logged, written, kept while the disk refuses."""

import errno
import logging

import pytest

import gateway.store.ledgers
from gateway.core.not_stored import Cause
from gateway.reader.not_stored import CHECKPOINT_SECONDS, QUIET_SECONDS, NotStoredBook
from gateway.store.layout import DataDir
from gateway.store.ledgers import not_stored, not_stored_totals


@pytest.fixture
def book(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gateway.reader")
    return NotStoredBook(DataDir(tmp_path / "data").ensure(), {})


def events(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "gateway.reader"]


def fields(caplog, event):
    (record,) = [r for r in caplog.records if r.getMessage() == event]
    return record.fields


class FullDisk:
    """The ledger's appends fail with ENOSPC while ``full``."""

    def __init__(self, monkeypatch):
        self.full = True
        real = gateway.store.ledgers.append_whole

        def append_whole(path, data, *, durable):
            if self.full:
                raise OSError(errno.ENOSPC, "No space left on device")
            real(path, data, durable=durable)

        monkeypatch.setattr(gateway.store.ledgers, "append_whole", append_whole)


def test_an_episode_is_one_entry_with_its_counter_spans_and_one_log_line(book, caplog):
    book.count_rows(Cause.DISK_FULL, 3, [10, 11, 12], 7, 100.0, "[Errno 28] No space left")
    book.count_rows(Cause.DISK_FULL, 2, [15, 16], 7, 101.0)  # the wire lost 13 and 14
    book.end(Cause.DISK_FULL, 102.5)
    (entry,) = not_stored(book.data_dir)
    assert (entry.cause, entry.rows, entry.counters) == ("disk_full", 5, [[10, 12, 7], [15, 16, 7]])
    assert (entry.start, entry.end, entry.ongoing) == (100.0, 102.5, False)
    assert entry.error == "[Errno 28] No space left"
    assert events(caplog) == ["rows_not_stored"]
    logged = fields(caplog, "rows_not_stored")
    assert logged["counters"] == "10-12,15-16" and logged["next_seq"] == 7
    assert logged["start"] == "1970-01-01T00:01:40.000Z" and logged["seconds"] == 2.5
    assert logged["hint"].startswith("free space on the data dir's disk")
    assert book.rows_by_cause == {"disk_full": 5}


def test_a_disk_that_refuses_the_entry_gets_it_later_and_the_log_says_so(book, caplog, monkeypatch):
    disk = FullDisk(monkeypatch)
    book.count_rows(Cause.DISK_FULL, 1000, range(1000, 2000), 42, 10.0, "full")
    book.end(Cause.DISK_FULL, 20.0)
    book.count_rows(Cause.DISK_LIMIT, 4, [2000, 2001, 2002, 2003], 42, 21.0)
    book.end(Cause.DISK_LIMIT, 22.0)
    assert list(not_stored(book.data_dir)) == []
    assert len(book.pending) == 2
    assert events(caplog) == ["rows_not_stored", "not_stored_ledger_deferred", "rows_not_stored"]
    book.tick(23.0, writable=True)  # still full: they wait, in order
    assert len(book.pending) == 2
    disk.full = False
    book.tick(30.0, writable=False)  # the reader knows the disk refuses: no try
    assert len(book.pending) == 2
    book.tick(31.0, writable=True)
    assert [(e.cause, e.rows, e.written_at) for e in not_stored(book.data_dir)] == [
        ("disk_full", 1000, 31.0),
        ("disk_limit", 4, 31.0),
    ]
    assert fields(caplog, "not_stored_recorded_late")["entries"] == 2
    assert not_stored_totals(book.data_dir)["by_cause"]["disk_full"]["rows"] == 1000


def test_a_stop_while_the_disk_refuses_leaves_every_entry_in_the_log(book, caplog, monkeypatch):
    FullDisk(monkeypatch)
    book.count_rows(Cause.READ_ONLY, 7, list(range(7)), 0, 5.0, "[Errno 30] Read-only")
    book.end_all(6.0)
    assert events(caplog)[-2:] == ["not_stored_entry_lost", "not_stored_ledger_incomplete"]
    assert fields(caplog, "not_stored_entry_lost")["counters"] == "0-6"


def test_a_long_episode_is_written_every_checkpoint_and_goes_on(book):
    book.count_rows(Cause.DISK_LIMIT, 1, [1], 0, 0.0)
    book.tick(CHECKPOINT_SECONDS, writable=True)
    book.count_rows(Cause.DISK_LIMIT, 1, [2], 0, CHECKPOINT_SECONDS + 1)
    book.end(Cause.DISK_LIMIT, CHECKPOINT_SECONDS + 2)
    first, second = not_stored(book.data_dir)
    assert (first.rows, first.ongoing, second.rows, second.ongoing) == (1, True, 1, False)
    assert second.start == first.end == CHECKPOINT_SECONDS


def test_an_overflow_ends_when_the_bursts_stop(book):
    book.count_bytes(Cause.HANDOFF_OVERFLOW, 4096, 1.0)
    book.count_span(Cause.HANDOFF_OVERFLOW, 100, 159, 9, 60, 1.1)
    book.tick(1.0 + QUIET_SECONDS - 0.5, writable=True)
    assert Cause.HANDOFF_OVERFLOW in book.open
    book.tick(1.1 + QUIET_SECONDS, writable=True)
    (entry,) = not_stored(book.data_dir)
    assert (entry.cause, entry.rows, entry.bytes, entry.counters) == (
        "handoff_overflow",
        60,
        4096,
        [[100, 159, 9]],
    )


def test_an_episode_that_cost_nothing_is_not_written(book):
    book.episode(Cause.DISK_FULL, 1.0, "full")
    assert book.end(Cause.DISK_FULL, 2.0).rows == 0
    assert list(not_stored(book.data_dir)) == []
