"""Watching data dirs for sealed batches: inotify wakes the uploader, a rescan backs it up.

inotify comes from ``inotify_simple``: a maintained, ~100-line ctypes wrapper of the three
Linux calls that hands out a plain file descriptor, so waiting is one ``select`` over it and a
wake-up pipe (signals). ``watchdog`` would add an observer thread per tree, and ``pyinotify``
is unmaintained. Events are only hints: the scan decides what is pending, so a missed event
(queue overflow, a folder created between scans) costs at most one rescan interval.
"""

from __future__ import annotations

import os
import select
from pathlib import Path

from inotify_simple import INotify
from inotify_simple import flags as f

from gateway.core.keys import SEALED_SUFFIX
from gateway.store.layout import BATCHES, DataDir

_DIR_MASK = f.CREATE | f.MOVED_TO | f.DELETE_SELF | f.MOVE_SELF | f.ONLYDIR


class Watcher:
    """inotify on the root, each ``batches/`` tree and its day folders; wakes on new names."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inotify = INotify()
        self._watched: dict[int, tuple[Path, str]] = {}
        self._paths: set[Path] = set()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    def wake(self) -> None:
        """Safe from a signal handler: makes a pending :meth:`wait` return."""
        try:
            os.write(self._wake_write, b"!")
        except BlockingIOError:
            pass  # the pipe is full: a wake-up is already pending

    def watch_tree(self, data_dirs: list[DataDir]) -> None:
        """Watch what exists now; later folders are added as their creation is seen."""
        self._add(self.root, "root")
        for data_dir in data_dirs:
            self._add(data_dir.root, "data_dir")
            self._add_tree(data_dir.batches)

    def _add_tree(self, folder: Path) -> None:
        for sub, _, _ in os.walk(folder):
            self._add(Path(sub), BATCHES)

    def _add(self, path: Path, kind: str) -> None:
        if path in self._paths:
            return
        try:
            wd = self.inotify.add_watch(path, _DIR_MASK)
        except OSError:  # gone already, or ENOSPC (out of watches): the rescan still works
            return
        self._watched[wd] = (path, kind)
        self._paths.add(path)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s; True when something (a new batch, a folder) may be new."""
        ready, _, _ = select.select([self.inotify.fileno(), self._wake_read], [], [], timeout)
        woken = False
        if self._wake_read in ready:
            os.read(self._wake_read, 4096)
            woken = True
        if self.inotify.fileno() in ready:
            for event in self.inotify.read(timeout=0):
                if event.mask & f.Q_OVERFLOW:
                    woken = True
                    continue
                if event.mask & f.IGNORED:
                    self._forget(event.wd)
                    continue
                path, kind = self._watched.get(event.wd, (None, None))
                if path is None:
                    continue
                if event.mask & f.ISDIR:
                    folder = path / event.name
                    if kind == BATCHES or (kind == "data_dir" and event.name == BATCHES):
                        self._add_tree(folder)  # with what was made before the watch was on
                        woken = True
                    elif kind == "root" and event.name == BATCHES:  # root is a data dir
                        self._add_tree(folder)
                        woken = True
                    elif kind == "root":  # perhaps a new monitor's data dir
                        self._add(folder, "data_dir")
                        self._add_tree(DataDir(folder).batches)
                        woken = True
                elif kind == BATCHES and event.name.endswith(SEALED_SUFFIX):  # a .part sealed
                    woken = True
        return woken

    def _forget(self, wd: int) -> None:
        path, _ = self._watched.pop(wd, (None, None))
        self._paths.discard(path)

    def close(self) -> None:
        self.inotify.close()
        os.close(self._wake_read)
        os.close(self._wake_write)
