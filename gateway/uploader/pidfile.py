"""A pid file held with ``flock``: one uploader per data dir, and no stale lock after a crash.

python-daemon takes any context manager as its ``pidfile``. Its usual companion,
``lockfile.PIDLockFile``, is deprecated and locks by creating a file, which a SIGKILL leaves
behind, so the next start would refuse until someone deletes it. An ``flock`` belongs to the
open file and the kernel drops it when the process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class AlreadyRunning(RuntimeError):
    """Another process holds the pid file's lock."""


class LockedPidFile:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`AlreadyRunning` naming the holder."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"the uploader is already running (pid {holder}; pid file {self.path} is locked)"
            ) from None
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def write_pid(self) -> None:
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink()  # while still locked, so no one else's file is removed
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> LockedPidFile:
        self.acquire()
        self.write_pid()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
