"""Committing files the durable way: write ``NAME.part``, fsync, rename, fsync the folder.

A rename is atomic, but only an fsync of the folder makes it survive a power cut; an fsync of
the file before the rename makes sure the name never points at bytes still in the page cache.
"""

from __future__ import annotations

import os
from pathlib import Path

PART = ".part"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """Create ``path`` and its parents, fsyncing each parent whose entries changed."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        fsync_dir(folder.parent)


def commit(part: Path, final: Path) -> None:
    """Rename a written, fsynced ``part`` to ``final`` and make the rename durable."""
    os.replace(part, final)
    fsync_dir(final.parent)


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: readers see the old bytes or the new, never a mix.

    Never commits after an exception, and removes its ``.part`` then (on a full disk an empty
    one would hold an inode, and look like a write in progress).
    """
    part = path.with_name(path.name + PART)
    try:
        with open(part, "wb") as file:
            file.write(data)
            if durable:
                file.flush()
                os.fsync(file.fileno())
    except BaseException:
        _remove_quietly(part)
        raise
    if durable:
        commit(part, path)
    else:
        os.replace(part, path)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only file system: there is nothing we could remove anyway


def append_whole(path: Path, data: bytes, *, durable: bool) -> None:
    """Append ``data`` to ``path`` entirely or not at all (a file of lines stays lines).

    A short or failed write on a full disk is cut back off; a last line a power cut left
    without its newline gets one first, so the new line is not glued to it.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)  # read: the last byte
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass  # read-only now: what was written stays, and readers skip a torn line
            raise
    finally:
        os.close(fd)
    if durable and size == 0:
        fsync_dir(path.parent)


def overwrite_in_place(path: Path, data: bytes) -> bool:
    """Rewrite ``path`` inside the blocks it already has; for status files on a full disk.

    Readers may see a torn file for a moment, so only for data they re-read anyway. ``data`` is
    padded with spaces to the old size (trailing spaces are harmless in JSON). Returns False
    when the file is missing or too small to hold ``data``.
    """
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        if size < len(data):
            return False
        os.pwrite(fd, data.ljust(size, b" "), 0)
        return True
    finally:
        os.close(fd)
