"""A LazyFS-like FUSE file system: a passthrough that loses, on command, what was not fsynced.

``python -m tests.powercut.lazyfs BACKING MOUNTPOINT --control SOCKET`` mounts BACKING at
MOUNTPOINT (libfuse through mfusepy) and serves a control socket. Processes see a normal file
system; BACKING always holds the *visible* names and the *durable* bytes, and this process
holds in memory what a power cut would take away. The idea and the fault vocabulary follow
LazyFS (Ramos et al., "When amnesia strikes", VLDB 2024: a FUSE layer with its own page cache,
flushed only by fsync, cleared on command).

What is modelled
- **File data.** Every ``write`` and ``truncate`` of a regular file (``O_APPEND``, ``pwrite``,
  ``ftruncate``, ``open(O_TRUNC)`` alike) is applied to an in-memory copy of that inode and
  kept in order as a pending operation; reads, ``stat`` sizes and mtimes come from the copy.
  ``fsync``/``fdatasync`` of any handle of the inode writes its pending operations to the
  backing file (the inode, not the name: they follow it across renames and unlinks).
- **Directory entries** (POSIX, strictly): ``create``, ``mkdir``, ``unlink``, ``rmdir``,
  ``rename``, ``symlink`` and ``link`` happen at once in BACKING and are journaled; an entry
  change becomes durable only when every directory it touched has been fsynced since (both
  parents for a rename across directories). What an unlink or a rename-over removes waits in
  ``BACKING/.lazyfs/`` until then, so a cut can put it back. ``fsync`` of a file does *not*
  make its name durable (ext4 and XFS happen to do that; POSIX does not promise it).
- **sync(2)** reaches no FUSE server (the kernel sends FUSE_SYNCFS to virtiofs only), so the
  control socket has a ``sync`` command: everything becomes durable. The harness makes the
  services' ``os.sync()`` call it (``tests/powercut/shim/sitecustomize.py``).
- **A cut** (``cut drop``): every pending write is dropped and the un-synced directory changes
  are undone newest first; from then on every operation fails with EIO (the machine is off)
  until the file system is unmounted and mounted again on the same BACKING. ``cut torn SEED``
  is a power cut after some write-back: each file keeps a random ordered prefix of its pending
  operations (the first one not kept may be torn at a random byte), and the journal keeps a
  random prefix of its entry changes (metadata journals commit in order).
- A clean unmount without a cut is a clean shutdown: everything pending is flushed.

What is simplified
- Modes, owners and times (``chmod``, ``chown``, ``utimens``) are durable at once.
- Write-back is never spontaneous: unsynced data stays pending until fsync, sync or a cut
  (a kernel writes dirty pages back after ~30 s; ``torn`` cuts stand for that).
- Files are not torn inside: a kept operation is whole or cut at one byte, never reordered.
- Entries journaled below a folder that is later renamed are undone by their old path (correct
  when the folder's rename is undone too, which comes first; fieldgate never renames folders).
- Hard links are passed through and journaled as a new name; data follows the inode.
- One lock serialises every operation: correct and thread-safe, not fast (fine at kHz rates).

Control protocol (one line in, one JSON line out, on the unix socket): ``ping``, ``sync``,
``report`` (what is pending), ``cut drop`` / ``cut torn SEED`` (what was lost), ``stats``.
"""

from __future__ import annotations

import argparse
import errno
import functools
import itertools
import json
import logging
import os
import random
import shutil
import socket
import stat
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("lazyfs")

HIDDEN = ".lazyfs"  # in BACKING: entries an un-synced unlink or rename-over removed


@dataclass
class Pending:
    """One inode's writes not yet durable: the visible bytes and the operations in order."""

    fd: int  # our own descriptor of the backing inode
    content: bytearray
    path: str  # where it was first written (for reports)
    since: float  # wall time of the first un-synced operation
    mtime_ns: int
    ops: list[tuple] = field(default_factory=list)  # ("write", offset, data) | ("truncate", n)

    @property
    def pending_bytes(self) -> int:
        return sum(len(op[2]) if op[0] == "write" else 0 for op in self.ops)


@dataclass
class DirOp:
    """An entry change not yet durable, and how to undo it."""

    id: int
    kind: str  # create | mkdir | unlink | rmdir | rename
    path: str  # backing path: the entry made (create, mkdir), removed (unlink, rmdir), moved
    ino: int  # the inode the entry names
    dirs: set[int]  # directories (inode numbers) whose fsync it still waits for
    target: str | None = None  # rename: the new path
    grave: str | None = None  # where the removed (or replaced) entry waits
    at: float = 0.0

    def describe(self, root: str) -> dict:
        entry = {"kind": self.kind, "path": os.path.relpath(self.path, root)}
        if self.target:
            entry["target"] = os.path.relpath(self.target, root)
        if self.kind == "rename" and self.grave:
            entry["replaced"] = True
        return entry


@dataclass
class Handle:
    fd: int
    ino: int
    append: bool
    path: str  # where it was opened (for reports; may be stale after a rename)


class PowerIsOff(OSError):
    def __init__(self) -> None:
        super().__init__(errno.EIO, "the power was cut: unmount and mount again")


def _operation(method):
    """Serialise, refuse after a cut, and turn our own bugs into EIO (counted, logged)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._mutex:
            if self.cut_done:
                raise PowerIsOff()
            try:
                return method(self, *args, **kwargs)
            except OSError:
                raise
            except Exception:
                self.internal_errors += 1
                log.error(
                    "internal error in %s%r:\n%s", method.__name__, args, traceback.format_exc()
                )
                raise OSError(errno.EIO, "lazyfs internal error") from None

    return wrapper


class LazyFS:
    """The operations (mfusepy's ``Operations`` protocol) over ``root``."""

    use_ns = True
    flag_nopath = True  # with flag_nullpath_ok: handle-based calls may come without a path
    flag_nullpath_ok = True

    def __init__(self, root: str, *, fsync_backing: bool = False) -> None:
        self.root = os.path.realpath(root)
        self.grave_dir = os.path.join(self.root, HIDDEN)
        self.fsync_backing = fsync_backing
        self._mutex = threading.RLock()  # not `lock`: that name is a FUSE operation
        self.pending: dict[int, Pending] = {}
        self.handles: dict[int, Handle] = {}
        self.dir_handles: dict[int, int] = {}  # fh -> descriptor of the backing folder
        self.open_count: dict[int, int] = {}
        self.journal: list[DirOp] = []
        self.cut_done = False
        self.internal_errors = 0
        self.counts = {"fsync": 0, "fsyncdir": 0, "sync": 0, "writes": 0, "dir_ops": 0}
        self._ids = itertools.count(1)
        self._fhs = itertools.count(1)
        self._clear_graves()
        self.root_ino = os.lstat(self.root).st_ino

    # -- paths -------------------------------------------------------------------------------

    def _full(self, path: str) -> str:
        if path is None:
            raise OSError(errno.ENOENT, "no path")
        relative = path.lstrip("/")
        if relative == HIDDEN or relative.startswith(HIDDEN + "/"):
            raise OSError(errno.ENOENT, path)
        return os.path.join(self.root, relative)

    def _parent_ino(self, full: str) -> int:
        return os.lstat(os.path.dirname(full)).st_ino

    def _new_grave(self) -> str:
        return os.path.join(self.grave_dir, f"{next(self._ids):08d}")

    def _clear_graves(self) -> None:
        """Leftovers of a lazyfs that died without a cut or an unmount: their journal is gone,
        so they are treated as removed for good (said in the log)."""
        if os.path.isdir(self.grave_dir):
            leftovers = os.listdir(self.grave_dir)
            if leftovers:
                log.warning("removing %d entries a dead lazyfs left in %s", len(leftovers), HIDDEN)
            shutil.rmtree(self.grave_dir)
        os.mkdir(self.grave_dir)

    # -- pending data ------------------------------------------------------------------------

    def _pending_for(self, ino: int, fd: int, path: str) -> Pending:
        pending = self.pending.get(ino)
        if pending is None:
            own = os.dup(fd)
            size = os.fstat(own).st_size
            content = bytearray(os.pread(own, size, 0)) if size else bytearray()
            pending = Pending(own, content, path, time.time(), time.time_ns())
            self.pending[ino] = pending
        return pending

    def _apply(self, fd: int, op: tuple, limit: int | None = None) -> None:
        if op[0] == "write":
            data = op[2] if limit is None else op[2][:limit]
            if data:
                os.pwrite(fd, data, op[1])
        else:
            os.ftruncate(fd, op[1])

    def _flush(self, ino: int) -> None:
        pending = self.pending.pop(ino, None)
        if pending is None:
            return
        try:
            for op in pending.ops:
                self._apply(pending.fd, op)
            if self.fsync_backing:
                os.fsync(pending.fd)
        finally:
            os.close(pending.fd)

    def _drop(self, ino: int) -> None:
        pending = self.pending.pop(ino, None)
        if pending is not None:
            os.close(pending.fd)

    def _forget_if_gone(self, ino: int, fd: int) -> None:
        """An inode with no name left and no handle: its pending data can never be read."""
        if self.open_count.get(ino, 0) == 0 and os.fstat(fd).st_nlink == 0:
            self._drop(ino)

    # -- the journal -------------------------------------------------------------------------

    def _journal(self, kind: str, path: str, ino: int, dirs: set[int], **extra) -> None:
        self.counts["dir_ops"] += 1
        self.journal.append(DirOp(next(self._ids), kind, path, ino, dirs, at=time.time(), **extra))

    def _make_durable(self, op: DirOp) -> None:
        if op.grave is None:
            return
        if os.path.isdir(op.grave) and not os.path.islink(op.grave):
            shutil.rmtree(op.grave, ignore_errors=True)
        else:
            try:
                os.unlink(op.grave)
            except FileNotFoundError:
                pass

    def _dir_synced(self, ino: int) -> None:
        synced = {ino}
        while synced:
            keep, removed = [], set()
            for op in self.journal:
                op.dirs -= synced
                if op.dirs:
                    keep.append(op)
                else:
                    self._make_durable(op)
                    if op.kind == "rmdir":
                        removed.add(op.ino)
            self.journal = keep
            # A folder whose removal is durable takes its pending entry changes with it: no
            # fsync can reach them any more, and no cut can bring them back.
            synced = removed

    def _compact_removal(self, ino: int, parent: int) -> bool:
        """An entry that never became durable and is removed again leaves no trace: drop its
        journal entries instead of keeping a grave (else un-synced scratch folders grow the
        journal without bound). Only when the inode was made by a pending create or mkdir and
        only created or renamed within this one folder, never over another entry."""
        ops = [op for op in self.journal if op.ino == ino]
        if not ops or ops[0].kind not in ("create", "mkdir"):
            return False
        for op in ops:
            if op.kind not in ("create", "mkdir", "rename") or op.dirs != {parent} or op.grave:
                return False
        if ops[0].kind == "mkdir" and any(ino in op.dirs for op in self.journal):
            return False
        drop = {op.id for op in ops}
        self.journal = [op for op in self.journal if op.id not in drop]
        return True

    def _undo(self, op: DirOp) -> str | None:
        """Undo one entry change; a description when the state was not what it made."""

        def names(path: str) -> int | None:
            try:
                return os.lstat(path).st_ino
            except FileNotFoundError:
                return None

        if op.kind in ("create", "mkdir"):
            if names(op.path) != op.ino:
                return f"{op.kind} {op.path}: no longer there"
            if op.kind == "mkdir":
                shutil.rmtree(op.path)
            else:
                os.unlink(op.path)
        elif op.kind in ("unlink", "rmdir"):
            if names(op.path) is not None:
                return f"{op.kind} {op.path}: the name is taken"
            os.rename(op.grave, op.path)
        elif op.kind == "rename":
            if names(op.target) != op.ino or names(op.path) is not None:
                return f"rename {op.path} -> {op.target}: moved on since"
            os.rename(op.target, op.path)
            if op.grave:
                os.rename(op.grave, op.target)
        return None

    # -- control -----------------------------------------------------------------------------

    def report(self) -> dict:
        """What a cut now would take: pending data per file, un-synced entry changes."""
        with self._mutex:
            now = time.time()
            files = []
            for ino, pending in self.pending.items():
                durable = os.fstat(pending.fd).st_size
                files.append(
                    {
                        "path": os.path.relpath(pending.path, self.root),
                        "ino": ino,
                        "visible_bytes": len(pending.content),
                        "durable_bytes": durable,
                        "pending_ops": len(pending.ops),
                        "pending_bytes": pending.pending_bytes,
                        "pending_since": pending.since,
                        "unsynced_seconds": round(now - pending.since, 3),
                    }
                )
            return {
                "at": now,
                "files": sorted(files, key=lambda f: f["path"]),
                "dir_ops": [op.describe(self.root) for op in self.journal],
                "internal_errors": self.internal_errors,
                "counts": dict(self.counts),
            }

    def sync_all(self) -> None:
        with self._mutex:
            if self.cut_done:
                raise PowerIsOff()
            for ino in list(self.pending):
                self._flush(ino)
            for op in self.journal:
                self._make_durable(op)
            self.journal = []
            self.counts["sync"] += 1

    def cut(self, mode: str = "drop", seed: int = 0) -> dict:
        """Lose what a power cut loses now; the file system stays dead until remounted."""
        with self._mutex:
            if self.cut_done:
                raise PowerIsOff()
            lost = self.report()
            rng = random.Random(seed)
            kept_files = []
            for ino, pending in list(self.pending.items()):
                if mode == "torn" and pending.ops:
                    keep = rng.randint(0, len(pending.ops))
                    for op in pending.ops[:keep]:
                        self._apply(pending.fd, op)
                    torn = None
                    following = pending.ops[keep] if keep < len(pending.ops) else None
                    if following and following[0] == "write" and rng.random() < 0.5:
                        torn = rng.randint(0, len(following[2]) - 1)
                        self._apply(pending.fd, following, torn)
                    kept_files.append(
                        {
                            "ino": ino,
                            "kept_ops": keep,
                            "torn_at": torn,
                            "durable_bytes": os.fstat(pending.fd).st_size,
                        }
                    )
                self._drop(ino)
            keep_ops = rng.randint(0, len(self.journal)) if mode == "torn" else 0
            for op in self.journal[:keep_ops]:
                self._make_durable(op)
            anomalies = []
            for op in reversed(self.journal[keep_ops:]):
                try:
                    problem = self._undo(op)
                except OSError as error:
                    problem = f"{op.kind} {op.path}: {error}"
                if problem:
                    anomalies.append(problem)
                    log.warning("cut: cannot undo %s", problem)
            self.journal = []
            for handle in self.handles.values():
                os.close(handle.fd)
            self.handles.clear()
            for fd in self.dir_handles.values():
                os.close(fd)
            self.dir_handles.clear()
            self.open_count.clear()
            self.cut_done = True
            lost.update(
                mode=mode,
                seed=seed,
                kept_dir_ops=keep_ops,
                kept_files=kept_files,
                anomalies=anomalies,
            )
            return lost

    def destroy(self, path) -> None:
        """Unmount: a clean shutdown flushes everything (nothing is left after a cut)."""
        with self._mutex:
            if not self.cut_done:
                for ino in list(self.pending):
                    self._flush(ino)
                for op in self.journal:
                    self._make_durable(op)
                self.journal = []

    # -- metadata ----------------------------------------------------------------------------

    @_operation
    def getattr(self, path, fh=None):
        handle = self.handles.get(fh) if fh is not None else None
        st = os.fstat(handle.fd) if handle else os.lstat(self._full(path))
        attrs = {
            "st_mode": st.st_mode,
            "st_nlink": st.st_nlink,
            "st_uid": st.st_uid,
            "st_gid": st.st_gid,
            "st_size": st.st_size,
            "st_blocks": st.st_blocks,
            "st_atime": st.st_atime_ns,
            "st_mtime": st.st_mtime_ns,
            "st_ctime": st.st_ctime_ns,
            "st_ino": st.st_ino,
        }
        pending = self.pending.get(st.st_ino) if stat.S_ISREG(st.st_mode) else None
        if pending is not None:
            attrs["st_size"] = len(pending.content)
            attrs["st_blocks"] = (len(pending.content) + 511) // 512
            attrs["st_mtime"] = attrs["st_ctime"] = pending.mtime_ns
        return attrs

    @_operation
    def opendir(self, path):
        fd = os.open(self._full(path), os.O_RDONLY | os.O_DIRECTORY)
        fh = next(self._fhs)
        self.dir_handles[fh] = fd
        return fh

    def releasedir(self, path, fh):
        with self._mutex:
            fd = self.dir_handles.pop(fh, None)
            if fd is not None:
                os.close(fd)
            return 0

    @_operation
    def readdir(self, path, fh):
        fd = self.dir_handles[fh]
        names = os.listdir(fd)
        if os.fstat(fd).st_ino == self.root_ino:
            names = [name for name in names if name != HIDDEN]
        return [".", "..", *names]

    @_operation
    def readlink(self, path):
        return os.readlink(self._full(path))

    @_operation
    def statfs(self, path):
        st = os.statvfs(self.root)
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files")
        return {key: getattr(st, key) for key in (*keys, "f_flag", "f_frsize", "f_namemax")}

    # mfusepy passes no handle to these: on an open file they come without a path (ignored).

    @_operation
    def chmod(self, path, mode):
        if path is not None:
            os.chmod(self._full(path), mode)
        return 0

    @_operation
    def chown(self, path, uid, gid):
        if path is not None:
            os.lchown(self._full(path), uid, gid)
        return 0

    @_operation
    def utimens(self, path, times=None):
        if path is None:
            return 0
        full = self._full(path)
        if times is None:
            os.utime(full, follow_symlinks=False)
        else:
            os.utime(full, ns=tuple(times), follow_symlinks=False)
            st = os.lstat(full)
            pending = self.pending.get(st.st_ino)
            if pending is not None:
                pending.mtime_ns = times[1]
        return 0

    # -- entries -----------------------------------------------------------------------------

    @_operation
    def mkdir(self, path, mode):
        full = self._full(path)
        os.mkdir(full, mode)
        self._journal("mkdir", full, os.lstat(full).st_ino, {self._parent_ino(full)})
        return 0

    @_operation
    def rmdir(self, path):
        full = self._full(path)
        st = os.lstat(full)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, path)
        if os.listdir(full):
            raise OSError(errno.ENOTEMPTY, path)
        parent = self._parent_ino(full)
        if self._compact_removal(st.st_ino, parent):
            os.rmdir(full)
            return 0
        grave = self._new_grave()
        os.rename(full, grave)
        self._journal("rmdir", full, st.st_ino, {parent}, grave=grave)
        return 0

    @_operation
    def unlink(self, path):
        full = self._full(path)
        st = os.lstat(full)
        if stat.S_ISDIR(st.st_mode):
            raise OSError(errno.EISDIR, path)
        parent = self._parent_ino(full)
        if self._compact_removal(st.st_ino, parent):
            os.unlink(full)
            if st.st_nlink <= 1 and self.open_count.get(st.st_ino, 0) == 0:
                self._drop(st.st_ino)
            return 0
        grave = self._new_grave()
        os.rename(full, grave)
        self._journal("unlink", full, st.st_ino, {parent}, grave=grave)
        if st.st_ino in self.pending:
            self.pending[st.st_ino].path = f"{full} (unlinked)"
        return 0

    @_operation
    def rename(self, old, new):
        source, target = self._full(old), self._full(new)
        moved = os.lstat(source)
        grave = None
        try:
            replaced = os.lstat(target)
        except FileNotFoundError:
            replaced = None
        if replaced is not None:
            if replaced.st_ino == moved.st_ino:
                return 0  # two names of one inode: rename does nothing
            if stat.S_ISDIR(replaced.st_mode):
                if not stat.S_ISDIR(moved.st_mode):
                    raise OSError(errno.EISDIR, new)
                if os.listdir(target):
                    raise OSError(errno.ENOTEMPTY, new)
            elif stat.S_ISDIR(moved.st_mode):
                raise OSError(errno.ENOTDIR, new)
            grave = self._new_grave()
            os.rename(target, grave)
        try:
            os.rename(source, target)
        except OSError:
            if grave:
                os.rename(grave, target)
            raise
        dirs = {self._parent_ino(source), self._parent_ino(target)}
        self._journal("rename", source, moved.st_ino, dirs, target=target, grave=grave)
        if moved.st_ino in self.pending:
            self.pending[moved.st_ino].path = target
        if replaced is not None and replaced.st_ino in self.pending:
            self.pending[replaced.st_ino].path = f"{target} (replaced)"
        return 0

    @_operation
    def symlink(self, target, source):
        full = self._full(target)
        os.symlink(source, full)
        self._journal("create", full, os.lstat(full).st_ino, {self._parent_ino(full)})
        return 0

    @_operation
    def link(self, target, source):
        full = self._full(target)
        os.link(self._full(source), full)
        self._journal("create", full, os.lstat(full).st_ino, {self._parent_ino(full)})
        return 0

    @_operation
    def fsyncdir(self, path, datasync, fh):
        fd = self.dir_handles[fh]
        self._dir_synced(os.fstat(fd).st_ino)
        self.counts["fsyncdir"] += 1
        if self.fsync_backing:
            os.fsync(fd)
        return 0

    # -- files -------------------------------------------------------------------------------

    def _add_handle(self, fd: int, flags: int, path: str) -> int:
        ino = os.fstat(fd).st_ino
        fh = next(self._fhs)
        self.handles[fh] = Handle(fd, ino, bool(flags & os.O_APPEND), path)
        self.open_count[ino] = self.open_count.get(ino, 0) + 1
        return fh

    @_operation
    def create(self, path, mode, flags=os.O_WRONLY):
        full = self._full(path)
        try:
            fd = os.open(full, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            if flags & os.O_EXCL:
                raise
            return self._add_handle(os.open(full, os.O_RDWR), flags, full)
        self._journal("create", full, os.fstat(fd).st_ino, {self._parent_ino(full)})
        return self._add_handle(fd, flags, full)

    @_operation
    def open(self, path, flags):
        full = self._full(path)
        try:
            fd = os.open(full, os.O_RDWR)
        except IsADirectoryError:
            raise
        except PermissionError:
            fd = os.open(full, os.O_RDONLY)
        fh = self._add_handle(fd, flags, full)
        ino = self.handles[fh].ino
        # libfuse 3 asks for atomic O_TRUNC: no separate setattr comes.
        if flags & os.O_TRUNC and (ino in self.pending or os.fstat(fd).st_size):
            self._truncate(ino, fd, full, 0)
        return fh

    @_operation
    def read(self, path, size, offset, fh):
        handle = self.handles[fh]
        pending = self.pending.get(handle.ino)
        if pending is not None:
            return bytes(pending.content[offset : offset + size])
        return os.pread(handle.fd, size, offset)

    @_operation
    def write(self, path, data, offset, fh):
        handle = self.handles[fh]
        pending = self._pending_for(handle.ino, handle.fd, handle.path)
        content = pending.content
        if handle.append:
            offset = len(content)
        if offset > len(content):
            content.extend(b"\0" * (offset - len(content)))
        content[offset : offset + len(data)] = data
        pending.ops.append(("write", offset, bytes(data)))
        pending.mtime_ns = time.time_ns()
        self.counts["writes"] += 1
        return len(data)

    @_operation
    def truncate(self, path, length, fh=None):
        handle = self.handles.get(fh) if fh is not None else None
        if handle is not None:
            self._truncate(handle.ino, handle.fd, handle.path, length)
            return 0
        where = self._full(path)
        fd = os.open(where, os.O_RDWR)
        try:
            self._truncate(os.fstat(fd).st_ino, fd, where, length)
        finally:
            os.close(fd)
        return 0

    def _truncate(self, ino: int, fd: int, where: str, length: int) -> None:
        pending = self._pending_for(ino, fd, where)
        content = pending.content
        if length < len(content):
            del content[length:]
        else:
            content.extend(b"\0" * (length - len(content)))
        pending.ops.append(("truncate", length))
        pending.mtime_ns = time.time_ns()

    @_operation
    def flush(self, path, fh):
        return 0  # close() is not fsync()

    @_operation
    def fsync(self, path, datasync, fh):
        handle = self.handles[fh]
        self._flush(handle.ino)
        self.counts["fsync"] += 1
        if self.fsync_backing:
            os.fsync(handle.fd)
        return 0

    def release(self, path, fh):
        with self._mutex:
            handle = self.handles.pop(fh, None)
            if handle is None:
                return 0  # closed by a cut
            self.open_count[handle.ino] -= 1
            if not self.open_count[handle.ino]:
                del self.open_count[handle.ino]
            try:
                self._forget_if_gone(handle.ino, handle.fd)
            finally:
                os.close(handle.fd)
            return 0


# -- the control socket ---------------------------------------------------------------------------


def serve_control(fs: LazyFS, path: str) -> socket.socket:
    """Answer control commands on a unix socket, one thread per connection."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)

    def answer(line: str) -> dict:
        words = line.split()
        if not words:
            return {"ok": False, "error": "empty command"}
        command = words[0]
        try:
            if command == "ping":
                return {"ok": True, "pid": os.getpid()}
            if command == "sync":
                fs.sync_all()
                return {"ok": True}
            if command == "report":
                return {"ok": True, **fs.report()}
            if command == "stats":
                report = fs.report()
                return {"ok": True, "counts": report["counts"], "errors": fs.internal_errors}
            if command == "cut":
                mode = words[1] if len(words) > 1 else "drop"
                if mode not in ("drop", "torn"):
                    return {"ok": False, "error": f"cut mode {mode!r}: drop or torn"}
                seed = int(words[2]) if len(words) > 2 else 0
                return {"ok": True, **fs.cut(mode, seed)}
            return {"ok": False, "error": f"unknown command {command!r}"}
        except OSError as error:
            return {"ok": False, "error": str(error)}

    def connection(conn: socket.socket) -> None:
        with conn, conn.makefile("rw") as stream:
            for line in stream:
                stream.write(json.dumps(answer(line.strip())) + "\n")
                stream.flush()

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=connection, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, name="lazyfs-control", daemon=True).start()
    return server


def control(path: str | os.PathLike, command: str, timeout: float = 60) -> dict:
    """Send one control command; raise if the file system refused it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(os.fspath(path))
        conn.sendall(command.encode() + b"\n")
        line = conn.makefile().readline()
    if not line:
        raise ConnectionError(f"lazyfs closed the control socket on {command!r}")
    reply = json.loads(line)
    if not reply.get("ok"):
        raise RuntimeError(f"lazyfs refused {command!r}: {reply.get('error')}")
    return reply


# -- running it ---------------------------------------------------------------------------------


def _fuse_class():
    import mfusepy

    class FUSE(mfusepy.FUSE):
        """mfusepy drops two things libfuse 3 passes: ftruncate's handle and rename's flags."""

        def truncate_fuse_3(self, path, length, fip):
            fh = fip.contents.fh if fip else None
            decoded = None if path is None else path.decode(self.encoding, self.errors)
            return self.operations.truncate(decoded, length, fh)

        def rename_fuse_3(self, old, new, flags):
            if flags:
                return -errno.EINVAL  # RENAME_NOREPLACE / EXCHANGE: not modelled
            return self.rename_fuse_2(old, new)

    return FUSE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.powercut.lazyfs", description=__doc__)
    parser.add_argument("backing", type=Path)
    parser.add_argument("mountpoint", type=Path)
    parser.add_argument("--control", required=True, help="unix socket for ping/sync/report/cut")
    parser.add_argument(
        "--fsync-backing", action="store_true", help="also fsync BACKING when data is made durable"
    )
    parser.add_argument("--debug", action="store_true", help="libfuse's debug output")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s lazyfs %(levelname)s %(message)s"
    )
    args.backing.mkdir(parents=True, exist_ok=True)
    args.mountpoint.mkdir(parents=True, exist_ok=True)
    fs = LazyFS(str(args.backing), fsync_backing=args.fsync_backing)
    server = serve_control(fs, args.control)
    log.info("mounting %s at %s (control %s)", args.backing, args.mountpoint, args.control)
    try:
        _fuse_class()(
            fs,
            str(args.mountpoint),
            foreground=True,
            nothreads=False,
            debug=args.debug,
            hard_remove=True,  # no .fuse_hidden files: unlinks are ours to journal
            fsname="lazyfs",
            subtype="lazyfs",
        )
    finally:
        server.close()
        try:
            os.unlink(args.control)
        except FileNotFoundError:
            pass
    log.info(
        "unmounted %s: counts %s, internal errors %d, cut %s",
        args.mountpoint,
        fs.counts,
        fs.internal_errors,
        fs.cut_done,
    )
    return 1 if fs.internal_errors else 0


if __name__ == "__main__":
    sys.exit(main())
