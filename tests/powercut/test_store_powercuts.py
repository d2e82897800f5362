"""What real power cuts (the LazyFS layer, POSIX semantics) did to the store, now each a test:
a file's bytes survive only when its name (and its folder's name) was made durable too."""

from __future__ import annotations

import os
import time

from gateway.core.batching import BatchPolicy
from gateway.core.records import Rejection
from gateway.store.batchstore import BatchStore
from gateway.store.layout import DataDir
from gateway.store.ledgers import RunRecord, runs
from gateway.store.quarantine import Quarantine, read_rejections


def test_rows_survive_a_cut_when_another_process_made_the_data_dir_without_a_folder_fsync(lazy):
    # The uploader's pid file makes the data dir with a plain mkdir; when it starts first,
    # the reader's store found the folder there and never made its name durable: the first
    # power cut took the data dir away, fsynced batches and all.
    root = lazy.mnt / "data"
    root.mkdir()
    (root / "uploader.pid").write_text("123\n")
    store = BatchStore(DataDir(root), BatchPolicy(1000, 1 << 20, 60), fsync_seconds=1)
    store.recover()
    store.use_columns(["f0"], 0.0)
    store.append([b"a", b"b"], time.time(), 0.0)
    store.sync(0.0)
    lazy.power_cut()
    (part,) = (root / "batches").rglob("*.part")
    rows = part.read_bytes().splitlines()[1:]
    assert [row.rsplit(b",", 1)[1] for row in rows] == [b"a", b"b"]


def test_quarantined_lines_survive_a_cut_once_the_quarantine_is_synced(lazy):
    # The day's quarantine file was created without an fsync of quarantine/: its fsynced
    # lines vanished with its name at a cut, and the audit then blamed the wire for them.
    data_dir = DataDir(lazy.mnt / "data").ensure()
    quarantine = Quarantine(data_dir)
    quarantine.add([Rejection("bad_utf8", "detail", b"12,\xff", 4)], time.time())
    quarantine.sync()
    lazy.power_cut()
    assert [line.line for line in read_rejections(data_dir)] == [b"12,\xff"]


def test_a_reader_start_in_the_runs_ledger_survives_a_cut(lazy):
    # Run records were appended without fsync: a cut soon after a start took the record of
    # that start, and the audit blamed the wire for the device lines the restart cost.
    data_dir = DataDir(lazy.mnt / "data").ensure()
    runs(data_dir).append(RunRecord(1.0, os.getpid(), 1243))
    lazy.power_cut()
    assert [entry.first_seq for entry in runs(data_dir)] == [1243]
