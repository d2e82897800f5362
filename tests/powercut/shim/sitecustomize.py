"""Loaded by every Python process the power-cut campaign starts (this folder is first on its
PYTHONPATH): makes ``os.sync()`` reach the LazyFS layer.

sync(2) sends no request to a FUSE server (the kernel asks only virtiofs to sync), so without
this a LazyFS mount would treat ``os.sync()`` as a no-op, which no real disk does. With
``FIELDGATE_LAZYFS_CONTROL`` set, ``os.sync()`` does the real sync, then asks the file system
to make everything durable, and raises ``OSError(EIO)`` if it cannot (never a silent no-op).
"""

import os

_CONTROL = os.environ.get("FIELDGATE_LAZYFS_CONTROL")

if _CONTROL:
    import errno
    import socket

    _real_sync = os.sync

    def _sync_through_lazyfs() -> None:
        _real_sync()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(60)
                conn.connect(_CONTROL)
                conn.sendall(b"sync\n")
                reply = conn.makefile().readline()
        except OSError as error:
            raise OSError(errno.EIO, f"sync through lazyfs failed: {error}") from None
        if '"ok": true' not in reply:
            raise OSError(errno.EIO, f"sync through lazyfs failed: {reply.strip()}")

    os.sync = _sync_through_lazyfs
