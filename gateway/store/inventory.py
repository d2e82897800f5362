"""What the data dir holds: sealed, touched (uploaded), pending, open, quarantined, free."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from gateway.core.keys import BadName, parse_part_name
from gateway.store.durable import PART
from gateway.store.layout import DataDir
from gateway.store.marks import is_touched
from gateway.store.recovery import SealedBatch, sealed_batches


@dataclass
class Inventory:
    sealed_batches: int = 0
    sealed_bytes: int = 0
    touched_batches: int = 0
    touched_bytes: int = 0
    pending_batches: int = 0
    pending_bytes: int = 0
    open_batches: int = 0
    open_bytes: int = 0
    quarantine_files: int = 0
    quarantine_bytes: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    oldest_pending_at: float | None = None  # when the oldest batch not yet uploaded was sealed
    bytes_free: int | None = None
    bytes_total: int | None = None
    read_only: bool | None = None  # the data dir's file system is mounted read-only

    def as_dict(self) -> dict:
        return asdict(self)


def pending_batches(data_dir: DataDir) -> tuple[list[SealedBatch], list[SealedBatch]]:
    """(pending, touched) sealed batches in seq order; ``.part`` files are never looked at."""
    pending, touched = [], []
    for batch in sealed_batches(data_dir):
        (touched if is_touched(batch.path) else pending).append(batch)
    return pending, touched


def disk_space(path: Path) -> tuple[int, int]:
    """(free, total) bytes of the file system holding ``path`` (or its nearest parent)."""
    stats = _statvfs(path)
    return stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize


def _statvfs(path: Path) -> os.statvfs_result:
    while not path.exists() and path != path.parent:
        path = path.parent
    return os.statvfs(path)


def take_inventory(data_dir: DataDir) -> Inventory:
    inventory = Inventory()
    if data_dir.batches.exists():
        for batch in sealed_batches(data_dir):
            inventory.sealed_batches += 1
            inventory.sealed_bytes += batch.size
            if is_touched(batch.path):
                inventory.touched_batches += 1
                inventory.touched_bytes += batch.size
            else:
                inventory.pending_batches += 1
                inventory.pending_bytes += batch.size
                if inventory.oldest_pending_at is None:
                    try:
                        inventory.oldest_pending_at = batch.path.stat().st_mtime
                    except FileNotFoundError:
                        pass  # uploaded and cleaned up meanwhile
            if inventory.first_seq is None:
                inventory.first_seq = batch.name.first_seq
            inventory.last_seq = batch.name.last_seq
        for part in data_dir.batches.rglob(f"*{PART}"):
            try:
                parse_part_name(part.name)
            except BadName:
                continue
            inventory.open_batches += 1
            inventory.open_bytes += part.stat().st_size
    if data_dir.quarantine.exists():
        for path in data_dir.quarantine.rglob("*"):
            if path.is_file():
                inventory.quarantine_files += 1
                inventory.quarantine_bytes += path.stat().st_size
    inventory.bytes_free, inventory.bytes_total = disk_space(data_dir.root)
    inventory.read_only = bool(_statvfs(data_dir.root).f_flag & os.ST_RDONLY)
    return inventory
