"""The LazyFS layer keeps exactly what an fsync made durable, and loses the rest at a cut."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gateway.store.durable import PART, commit, fsync_dir, make_dirs, write_atomic
from tests.powercut.lazyfs import control

SHIM = Path(__file__).parent / "shim"


def write(path: Path, data: bytes, *, fsync: bool, flags: int = 0) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def test_an_unsynced_write_vanishes_after_a_cut_and_its_file_stays_empty(lazy):
    path = lazy.mnt / "a"
    write(path, b"unsynced", fsync=False)
    fsync_dir(lazy.mnt)  # the name is durable, the bytes are not
    assert path.read_bytes() == b"unsynced"
    assert path.stat().st_size == 8
    lost = lazy.power_cut()
    assert path.read_bytes() == b""
    (entry,) = lost["files"]
    assert (entry["path"], entry["visible_bytes"], entry["durable_bytes"]) == ("a", 8, 0)


def test_an_fsynced_write_survives_and_only_what_came_after_is_lost(lazy):
    path = lazy.mnt / "a"
    write(path, b"kept,", fsync=True)
    fsync_dir(lazy.mnt)
    write(path, b"lost", fsync=False, flags=os.O_APPEND)
    assert path.read_bytes() == b"kept,lost"
    lazy.power_cut()
    assert path.read_bytes() == b"kept,"


def test_a_created_file_without_a_folder_fsync_is_gone_even_when_its_bytes_were_fsynced(lazy):
    write(lazy.mnt / "a", b"synced bytes, unsynced name", fsync=True)
    lazy.power_cut()
    assert not (lazy.mnt / "a").exists()


def test_a_rename_without_a_folder_fsync_reverts(lazy):
    write(lazy.mnt / "a.part", b"data", fsync=True)
    fsync_dir(lazy.mnt)
    os.replace(lazy.mnt / "a.part", lazy.mnt / "a")
    assert sorted(os.listdir(lazy.mnt)) == ["a"]
    lazy.power_cut()
    assert sorted(os.listdir(lazy.mnt)) == ["a.part"]
    assert (lazy.mnt / "a.part").read_bytes() == b"data"


def test_a_rename_over_a_file_without_a_folder_fsync_brings_both_back(lazy):
    write(lazy.mnt / "a", b"old", fsync=True)
    write(lazy.mnt / "a.part", b"new", fsync=True)
    fsync_dir(lazy.mnt)
    os.replace(lazy.mnt / "a.part", lazy.mnt / "a")
    assert (lazy.mnt / "a").read_bytes() == b"new"
    lazy.power_cut()
    assert (lazy.mnt / "a").read_bytes() == b"old"
    assert (lazy.mnt / "a.part").read_bytes() == b"new"


def test_the_stores_durable_commit_survives_and_a_non_durable_one_does_not(lazy):
    write_atomic(lazy.mnt / "durable.json", b'{"next_seq": 5}')
    write_atomic(lazy.mnt / "status.json", b'{"first": 1}')
    write_atomic(lazy.mnt / "status.json", b'{"second": 2}', durable=False)
    lazy.power_cut()
    assert (lazy.mnt / "durable.json").read_bytes() == b'{"next_seq": 5}'
    assert (lazy.mnt / "status.json").read_bytes() == b'{"first": 1}'
    assert sorted(os.listdir(lazy.mnt)) == ["durable.json", "status.json"]


def test_commit_of_a_fsynced_part_survives(lazy):
    folder = lazy.mnt / "batches" / "2026" / "01" / "02"
    make_dirs(folder)
    part = folder / f"0{PART}"
    write(part, b"seq,received_at,f0\n0,1.0,a\n", fsync=True)
    commit(part, folder / "0-0.csv")
    lazy.power_cut()
    assert os.listdir(folder) == ["0-0.csv"]
    assert (folder / "0-0.csv").read_bytes() == b"seq,received_at,f0\n0,1.0,a\n"


def test_an_unlink_without_a_folder_fsync_comes_back_with_its_durable_bytes(lazy):
    write(lazy.mnt / "a", b"durable", fsync=True)
    fsync_dir(lazy.mnt)
    write(lazy.mnt / "a", b"+pending", fsync=False, flags=os.O_APPEND)
    (lazy.mnt / "a").unlink()
    assert not (lazy.mnt / "a").exists()
    lazy.power_cut()
    assert (lazy.mnt / "a").read_bytes() == b"durable"


def test_an_unlink_after_a_folder_fsync_is_final(lazy):
    write(lazy.mnt / "a", b"durable", fsync=True)
    fsync_dir(lazy.mnt)
    (lazy.mnt / "a").unlink()
    fsync_dir(lazy.mnt)
    lazy.power_cut()
    assert os.listdir(lazy.mnt) == []


def test_a_folder_whose_creation_was_not_made_durable_takes_its_contents_with_it(lazy):
    (lazy.mnt / "new").mkdir()
    write(lazy.mnt / "new" / "a", b"x", fsync=True)
    fsync_dir(lazy.mnt / "new")  # the file's name is durable inside a folder that is not
    lazy.power_cut()
    assert os.listdir(lazy.mnt) == []


def test_o_append_from_two_handles_lands_at_the_end_and_only_the_fsynced_part_stays(lazy):
    path = lazy.mnt / "log"
    write(path, b"", fsync=True)
    fsync_dir(lazy.mnt)
    first = os.open(path, os.O_WRONLY | os.O_APPEND)
    second = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(first, b"1")
        os.write(second, b"2")
        os.write(first, b"3")
        os.fsync(second)  # an fsync of any handle makes the inode's writes durable
        os.write(second, b"4")
    finally:
        os.close(first)
        os.close(second)
    assert path.read_bytes() == b"1234"
    lazy.power_cut()
    assert path.read_bytes() == b"123"


def test_ftruncate_and_pwrite_are_pending_until_fsync(lazy):
    path = lazy.mnt / "f"
    write(path, b"0123456789", fsync=True)
    fsync_dir(lazy.mnt)
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, 4)
        os.pwrite(fd, b"AB", 6)  # past the end: a hole of zeros
        assert os.pread(fd, 100, 0) == b"0123\0\0AB"
        assert os.fstat(fd).st_size == 8
        os.fsync(fd)
        os.ftruncate(fd, 2)
        os.pwrite(fd, b"Z", 0)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"Z1"
    lazy.power_cut()
    assert path.read_bytes() == b"0123\0\0AB"


def test_open_with_o_trunc_is_a_pending_truncate(lazy):
    path = lazy.mnt / "f"
    write(path, b"durable", fsync=True)
    fsync_dir(lazy.mnt)
    with open(path, "wb") as file:  # O_TRUNC, then a write, never fsynced
        file.write(b"new")
    assert path.read_bytes() == b"new"
    lazy.power_cut()
    assert path.read_bytes() == b"durable"


def test_the_sync_command_makes_everything_durable(lazy):
    (lazy.mnt / "d").mkdir()
    write(lazy.mnt / "d" / "a", b"x", fsync=False)
    os.replace(lazy.mnt / "d" / "a", lazy.mnt / "d" / "b")
    lazy.mount.sync()
    lost = lazy.power_cut()
    assert (lost["files"], lost["dir_ops"]) == ([], [])
    assert (lazy.mnt / "d" / "b").read_bytes() == b"x"


def test_os_sync_in_a_process_with_the_shim_reaches_the_file_system(lazy):
    script = (
        "import os\n"
        f"fd = os.open({str(lazy.mnt / 'a')!r}, os.O_WRONLY | os.O_CREAT, 0o644)\n"
        "os.write(fd, b'synced by sync(2)')\n"
        "os.close(fd)\n"
        "os.sync()\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SHIM), os.environ.get("PYTHONPATH", "")]),
        "FIELDGATE_LAZYFS_CONTROL": str(lazy.mount.control_path),
    }
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    lazy.power_cut()
    assert (lazy.mnt / "a").read_bytes() == b"synced by sync(2)"


def test_a_clean_unmount_is_a_clean_shutdown(lazy):
    write(lazy.mnt / "a", b"never fsynced", fsync=False)
    assert lazy.mount.unmount() == 0
    lazy.mount.start()
    assert (lazy.mnt / "a").read_bytes() == b"never fsynced"


def test_after_a_cut_every_operation_fails_until_the_next_mount(lazy):
    write(lazy.mnt / "a", b"x", fsync=True)
    lazy.mount.cut()
    with pytest.raises(OSError) as error:
        os.listdir(lazy.mnt)
    assert error.value.errno == 5  # EIO: the power is off
    assert lazy.mount.unmount() == 0
    lazy.mount.start()
    assert os.listdir(lazy.mnt) == []


def test_a_torn_cut_keeps_a_prefix_of_what_each_file_was_written(lazy):
    path = lazy.mnt / "rows"
    write(path, b"", fsync=True)
    fsync_dir(lazy.mnt)
    rows = [b"row %03d\n" % i for i in range(50)]
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    for row in rows:
        os.write(fd, row)
    os.close(fd)
    seen = set()
    for seed in range(6):
        lost = lazy.power_cut("torn", seed)
        kept = path.read_bytes()
        assert b"".join(rows).startswith(kept)
        seen.add(len(kept))
        (entry,) = lost["kept_files"] or [{"kept_ops": 0}]
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.ftruncate(fd, 0)
        os.fsync(fd)
        for row in rows:
            os.write(fd, row)
        os.close(fd)
    assert len(seen) > 1  # the prefixes differ from seed to seed


def test_scratch_files_created_and_removed_unsynced_leave_no_journal(lazy):
    scratch = lazy.mnt / "scratch"
    scratch.mkdir()
    fsync_dir(lazy.mnt)
    for i in range(20):
        write_atomic(scratch / f"f{i}", b"x", durable=False)
        (scratch / f"f{i}").unlink()
    report = control(lazy.mount.control_path, "report")
    assert report["dir_ops"] == []
    assert report["files"] == []


def test_concurrent_writers_see_their_own_bytes_and_fsync_keeps_them(lazy):
    def writer(index: int) -> None:
        path = lazy.mnt / f"w{index}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for n in range(200):
                os.write(fd, b"%d:%d\n" % (index, n))
            os.fsync(fd)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fsync_dir(lazy.mnt)
    lazy.power_cut()
    for index in range(6):
        expected = b"".join(b"%d:%d\n" % (index, n) for n in range(200))
        assert (lazy.mnt / f"w{index}").read_bytes() == expected


def test_a_durable_folder_removal_takes_the_pending_changes_inside_it_along(lazy):
    work = lazy.mnt / "work"
    (work / "day").mkdir(parents=True)
    fsync_dir(lazy.mnt)
    fsync_dir(work)
    write(work / "day" / "a", b"x", fsync=True)
    fsync_dir(work / "day")
    (work / "day" / "a").unlink()  # pending in day/
    (work / "day").rmdir()  # pending in work/
    work.rmdir()  # pending in the root
    (work / "day").mkdir(parents=True)  # a new work/day, made durable below
    fsync_dir(lazy.mnt)
    fsync_dir(work)
    lost = lazy.power_cut()
    assert lost["anomalies"] == []
    assert os.listdir(work) == ["day"] and os.listdir(work / "day") == []
