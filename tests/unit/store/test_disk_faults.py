"""The store on a disk that refuses: whole appends or none, no .part left, recovery seen ahead."""

import errno
import os

import pytest

import gateway.store.durable
import gateway.store.probe
from gateway.core.batching import BatchPolicy
from gateway.store.batchstore import BatchStore
from gateway.store.durable import append_whole, write_atomic
from gateway.store.layout import DataDir
from gateway.store.probe import MIN_FREE_BYTES, probe_writable
from gateway.store.recovery import look_ahead


class ShortWrites:
    """os.write that writes ``room`` bytes, then fails with ENOSPC (a disk filling up)."""

    def __init__(self, monkeypatch, room):
        self.room = room
        real = os.write

        def write(fd, data):
            if self.room <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            written = real(fd, bytes(data[: self.room]))
            self.room -= written
            return written

        monkeypatch.setattr(gateway.store.durable.os, "write", write)


def test_an_append_the_disk_cuts_short_is_taken_back_whole(tmp_path, monkeypatch):
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b'{"a": 1}\n')
    ShortWrites(monkeypatch, room=5)
    with pytest.raises(OSError, match="No space left"):
        append_whole(path, b'{"b": 2}\n', durable=True)
    assert path.read_bytes() == b'{"a": 1}\n'


def test_an_append_after_a_torn_last_line_starts_on_a_line_of_its_own(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": ')  # a power cut mid-line
    append_whole(path, b'{"c": 3}\n', durable=False)
    assert path.read_bytes().splitlines()[-1] == b'{"c": 3}'


def test_a_failed_atomic_write_leaves_no_part(tmp_path, monkeypatch):
    path = tmp_path / "identity.json"

    def refuse(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gateway.store.durable.os, "fsync", refuse)
    with pytest.raises(OSError):
        write_atomic(path, b"{}")
    assert list(tmp_path.iterdir()) == []


def test_look_ahead_sees_what_recovery_will_find_without_writing(tmp_path):
    data_dir = DataDir(tmp_path / "data")
    store = BatchStore(data_dir, BatchPolicy(100, 1 << 20, 60.0))
    store.recover()
    store.use_columns(["f0", "f1"], 0.0)
    store.append([b"7,0.5", b"8,0.6", b"9,0.7"], 1_700_000_000.0, 0.0)  # left open: a crash
    before = sorted(p.name for p in data_dir.root.rglob("*"))
    outlook = look_ahead(data_dir)
    assert sorted(p.name for p in data_dir.root.rglob("*")) == before
    assert (outlook.next_seq, outlook.leftover_parts) == (3, 1)
    assert outlook.newest_row.endswith(b",9,0.7")
    assert BatchStore(data_dir, BatchPolicy(100, 1 << 20, 60.0)).recover().next_seq == 3


def test_a_probe_says_why_the_disk_refuses(tmp_path, monkeypatch):
    data_dir = DataDir(tmp_path / "data")
    probe_writable(data_dir)  # a disk with room: no error, nothing left behind
    assert not data_dir.probe_file.exists()

    class Stats:
        f_flag = os.ST_RDONLY
        f_bfree = f_bavail = 10**6
        f_frsize = 4096

    monkeypatch.setattr(gateway.store.probe.os, "statvfs", lambda path: Stats)
    with pytest.raises(OSError) as refused:
        probe_writable(data_dir)
    assert refused.value.errno == errno.EROFS
    Stats.f_flag, Stats.f_bfree, Stats.f_bavail = 0, 3, 3
    with pytest.raises(OSError) as refused:
        probe_writable(data_dir)
    assert refused.value.errno == errno.ENOSPC
    assert f"12288 bytes free, storing waits for {MIN_FREE_BYTES}" in str(refused.value)
