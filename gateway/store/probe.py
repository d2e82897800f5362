"""Does the data dir take writes again? A look at the file system, then one small write.

The reader calls :func:`probe_writable` every few hundred milliseconds while its disk refuses
writes, instead of trying rows: cheap (a ``statvfs``; the write only once that looks hopeful),
and it never leaves a partial row or an empty batch behind.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from gateway.store.durable import make_dirs
from gateway.store.layout import DataDir

#: Free space below which storing does not resume: a few seconds of rows at kHz rates, so a
#: disk with a block or two free does not flap between storing and failing.
MIN_FREE_BYTES = 256 * 1024
PROBE_BYTES = 4096  # one block: a write that needs room, not just an inode


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def probe_writable(data_dir: DataDir) -> None:
    """Return when the data dir takes a write now; raise ``OSError`` (its errno says why:
    ENOSPC, EROFS, EIO, ...) when it does not."""
    where = _existing(data_dir.root)
    stats = os.statvfs(where)
    if stats.f_flag & os.ST_RDONLY:
        raise OSError(errno.EROFS, "Read-only file system (the mount is read-only)", str(where))
    blocks = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail  # root may use the reserve
    free = blocks * stats.f_frsize
    if free < MIN_FREE_BYTES:
        raise OSError(
            errno.ENOSPC,
            f"No space left on device ({free} bytes free, storing waits for {MIN_FREE_BYTES})",
            str(where),
        )
    make_dirs(data_dir.state)
    path = data_dir.probe_file
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, bytes(PROBE_BYTES))
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
