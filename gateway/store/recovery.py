"""Recovery at start: every leftover ``.part`` becomes a sealed batch, never thrown away.

A ``.part`` is cut back to its last complete row (what follows goes to quarantine), then
sealed under its final name. Every step can be interrupted and redone: the cut-off tail is
written under a fixed name before the file is truncated, truncation to the same length is
harmless twice, and the rename is the last step. So on a full or read-only disk recovery can
fail half-way and run again later: :func:`look_ahead` tells, without writing anything, the
``seq`` it will continue at and the newest row, so rows can be counted in the meantime.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from gateway.core.batchfile import check_batch
from gateway.core.keys import (
    SEALED_SUFFIX,
    BadName,
    BatchName,
    parse_day_folder,
    parse_part_name,
    parse_relative_path,
)
from gateway.logs import log_event
from gateway.store.durable import PART, commit, fsync_dir
from gateway.store.layout import DataDir
from gateway.store.ledgers import read_seq_floor
from gateway.store.quarantine import Quarantine

log = logging.getLogger("gateway.store")


@dataclass(frozen=True)
class SealedBatch:
    name: BatchName
    path: Path
    size: int


@dataclass
class Recovery:
    sealed: list[SealedBatch] = field(default_factory=list)
    removed_empty: list[Path] = field(default_factory=list)
    quarantined_tails: list[Path] = field(default_factory=list)
    sealed_segments: list[Path] = field(default_factory=list)  # of rejected lines
    next_seq: int = 0


def sealed_batches(data_dir: DataDir) -> list[SealedBatch]:
    """Every sealed batch under ``batches/``, in ``seq`` order."""
    found = []
    for path in data_dir.batches.rglob(f"*{SEALED_SUFFIX}"):
        try:
            name = parse_relative_path(data_dir.relative_path(path))
        except BadName:
            continue
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # removed by cleanup while we looked
            continue
        found.append(SealedBatch(name, path, size))
    found.sort(key=lambda batch: batch.name.first_seq)
    return found


@dataclass(frozen=True, slots=True)
class Outlook:
    """What :func:`recover` will find, seen without writing."""

    next_seq: int
    newest_row: bytes | None  # the newest complete row, sealed or in a leftover .part
    leftover_parts: int


def look_ahead(data_dir: DataDir) -> Outlook:
    """The ``seq`` recovery will continue at and the newest complete row; reads only, so it
    works on a full or read-only disk (``OSError`` only when the disk cannot be read)."""
    sealed = sealed_batches(data_dir) if data_dir.batches.is_dir() else []
    highest = max((b.name.last_seq for b in sealed), default=-1)
    newest_row = read_last_row(sealed[-1].path) if sealed else None
    parts = []
    for path in data_dir.batches.rglob(f"*{PART}") if data_dir.batches.is_dir() else []:
        try:
            parts.append((parse_part_name(path.name), path))
        except BadName:
            continue  # an upload mark being written
    for first_seq, path in sorted(parts):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        check = check_batch(data, expected_first_seq=first_seq)
        if check.rows and check.last_seq > highest:
            highest = check.last_seq
            newest_row = data[: check.good_bytes].rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return Outlook(max(read_seq_floor(data_dir), highest + 1), newest_row, len(parts))


def recover(data_dir: DataDir, quarantine: Quarantine) -> Recovery:
    """Seal every leftover ``.part``; return what was done and the next ``seq`` to use."""
    result = Recovery()
    for path in sorted(data_dir.batches.rglob(f"*{PART}")):
        try:
            first_seq = parse_part_name(path.name)
        except BadName:
            # Not an open batch: e.g. an upload mark the uploader is writing right now. Its
            # owner finishes or removes it; the reader must not race it.
            continue
        sealed = _recover_part(path, first_seq, data_dir, quarantine, result)
        if sealed:
            result.sealed.append(sealed)
    highest = max((b.name.last_seq for b in sealed_batches(data_dir)), default=-1)
    result.next_seq = max(read_seq_floor(data_dir), highest + 1)
    return result


def _recover_part(
    path: Path, first_seq: int, data_dir: DataDir, quarantine: Quarantine, result: Recovery
) -> SealedBatch | None:
    data = path.read_bytes()
    check = check_batch(data, expected_first_seq=first_seq)
    if check.good_bytes < len(data):
        tail = quarantine.save_recovered_tail(f"{path.name}.tail", data[check.good_bytes :])
        result.quarantined_tails.append(tail)
        log_event(
            log,
            logging.WARNING,
            "recovery_tail_quarantined",
            part=str(path),
            kept_bytes=check.good_bytes,
            tail_bytes=len(data) - check.good_bytes,
            problem=check.problem,
            tail=str(tail),
        )
    if check.rows == 0:
        path.unlink()
        fsync_dir(path.parent)
        result.removed_empty.append(path)
        log_event(log, logging.INFO, "recovery_removed_empty_part", part=str(path))
        return None
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, check.good_bytes)
        os.fsync(fd)
    finally:
        os.close(fd)
    day = parse_day_folder(data_dir.relative_path(path.parent))
    name = BatchName(day, first_seq, check.last_seq)
    final = path.with_name(name.file_name)
    commit(path, final)
    log_event(
        log,
        logging.WARNING,
        "recovered_part",
        part=str(path),
        batch=str(final),
        rows=check.rows,
        first_seq=first_seq,
        last_seq=check.last_seq,
    )
    return SealedBatch(name, final, check.good_bytes)


def read_last_row(path: Path, max_bytes: int = 65536) -> bytes | None:
    """The last complete row of a batch file (without its newline), or None."""
    with open(path, "rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - max_bytes))
        tail = file.read()
    lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
    last = lines[-1]
    if (len(lines) == 1 and size > len(tail)) or last.startswith(b"seq,"):
        return None
    return last or None
