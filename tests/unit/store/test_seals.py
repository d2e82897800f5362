"""Seal records beside batches: they go where their batch goes, and none is left behind."""

import datetime as dt

from gateway.core.seal import SealRecord
from gateway.store import cleanup
from gateway.store.layout import DataDir
from gateway.store.marks import quarantine_batch
from gateway.store.seals import read_seal, seal_path, write_seal

RECORD = SealRecord("0" * 64, 30, 1, 0, 0, 1.0, 1.0, ("seq", "received_at", "f0"))


def batch(data_dir: DataDir, day="2024/05/01", name="000000000000-000000000000.csv"):
    path = data_dir.batches / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"seq,received_at,f0\n0,1.000000,7\n")
    write_seal(path, RECORD)
    return path


def test_a_record_reads_back_as_written_and_nothing_else_reads_as_one(tmp_path):
    path = batch(DataDir(tmp_path))
    assert read_seal(path) == RECORD
    for other in (b"", b"{", b'{"version": 1}', b'{"version": 1, "columns": "ab"}'):
        seal_path(path).write_bytes(other)
        assert read_seal(path) is None
    bad_type = RECORD.to_bytes().replace(b'"rows": 1', b'"rows": "1"')
    seal_path(path).write_bytes(bad_type)
    assert read_seal(path) is None


def test_a_quarantined_batch_takes_no_record_along_and_leaves_none_behind(tmp_path):
    data_dir = DataDir(tmp_path)
    path = batch(data_dir)
    relpath = data_dir.relative_path(path)
    quarantine_batch(data_dir, relpath, {"key": "q/k", "reason": "test"})
    assert not path.exists() and not seal_path(path).exists()
    assert (data_dir.quarantined_batches / relpath).exists()


def test_a_past_day_holding_only_orphan_records_and_marks_is_removed(tmp_path):
    data_dir = DataDir(tmp_path)
    gone = batch(data_dir)
    gone.with_name(gone.name + ".touched").write_text("{}")
    gone.unlink()  # an interrupted deletion: the record and the mark are left
    kept = batch(data_dir, day="2024/05/02")
    now = dt.datetime(2024, 5, 10, tzinfo=dt.UTC).timestamp()
    cleanup._remove_empty_day_folders(data_dir, now)
    assert not gone.parent.exists()
    assert kept.exists() and seal_path(kept).exists()
