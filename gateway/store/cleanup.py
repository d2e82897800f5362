"""Cleanup: look at the data dirs, ask :mod:`gateway.core.retention` what to delete, delete it.

Runs inside the reader as a periodic check and as ``gateway cleanup [--dry-run]`` (for a
systemd timer). Several data dirs (one per monitor) on one file system share its free space,
so they are planned together. Every deletion of data that never reached S3 is appended to the
data dir's losses ledger and logged as an error with its seq range.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from gateway.core.keys import day_folder, day_of
from gateway.core.retention import Deletion, Item, Plan, RetentionPolicy, plan
from gateway.logs import log_event
from gateway.settings import Settings
from gateway.store.durable import PART
from gateway.store.inventory import disk_space
from gateway.store.layout import DataDir, discover_data_dirs
from gateway.store.ledgers import LossRecord, losses
from gateway.store.marks import (
    BATCH_MARK_SUFFIX,
    FOLDER_MARK,
    batch_mark,
    is_orphan_mark,
    is_touched,
)
from gateway.store.recovery import sealed_batches
from gateway.store.seals import is_orphan_seal, remove_seal

log = logging.getLogger("gateway.cleanup")


def policy_from(settings: Settings) -> RetentionPolicy:
    keep_bytes, keep_percent = settings.keep_free
    return RetentionPolicy(
        keep_free_bytes=keep_bytes,
        keep_free_percent=keep_percent,
        max_data_bytes=settings.max_data_bytes,
        retain_uploaded_seconds=settings.retain_uploaded_seconds,
        on_full=settings.on_full,
        max_quarantine_bytes=settings.max_quarantine_bytes,
    )


@dataclass
class CleanupResult:
    plans: list[Plan] = field(default_factory=list)
    deleted: list[Deletion] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def stop_accepting(self) -> bool:
        return any(p.stop_accepting for p in self.plans)

    def as_dict(self) -> dict:
        return {
            "stop_accepting": self.stop_accepting,
            "deletions": [
                {
                    "path": d.item.key,
                    "bytes": d.item.size,
                    "reason": d.reason,
                    "loss": d.loss,
                    "first_seq": d.item.first_seq,
                    "last_seq": d.item.last_seq,
                }
                for plan_ in self.plans
                for d in plan_.deletions
            ],
            "shortfall_bytes": sum(p.shortfall for p in self.plans),
            "errors": self.errors,
        }


def batch_items(data_dir: DataDir) -> list[Item]:
    """Sealed batches (with their marks) and finished quarantine files, as retention items."""
    items = []
    for batch in sealed_batches(data_dir):
        mark = batch_mark(batch.path)
        try:
            stat = batch.path.stat()
            mark_size = mark.stat().st_size if mark.exists() else None
        except FileNotFoundError:
            continue  # deleted meanwhile
        items.append(
            Item(
                str(batch.path),
                stat.st_size + (mark_size or 0),
                stat.st_mtime,
                mark_size is not None,
                "batch",
                batch.name.first_seq,
                batch.name.last_seq,
            )
        )
    if data_dir.quarantine.is_dir():
        for path in data_dir.quarantine.rglob("*"):
            # The open segment (.part) is the reader's; a mark goes with its file.
            if not path.is_file() or path.name.endswith((PART, BATCH_MARK_SUFFIX)):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            items.append(
                Item(str(path), stat.st_size, stat.st_mtime, is_touched(path), kind="quarantine")
            )
    return items


def run_cleanup(
    settings: Settings,
    *,
    dry_run: bool = False,
    now: float | None = None,
    was_stopping: bool = False,
) -> CleanupResult:
    """Plan and (unless ``dry_run``) delete. ``was_stopping``: the last run already said the
    limit stops storing, so a run that finds it still does says nothing new."""
    now = time.time() if now is None else now
    policy = policy_from(settings)
    groups: dict[int, list[DataDir]] = defaultdict(list)
    for data_dir in discover_data_dirs(settings.data_dir):
        if data_dir.root.exists():
            groups[os.stat(data_dir.root).st_dev].append(data_dir)
    result = CleanupResult()
    for data_dirs in groups.values():
        items = [item for data_dir in data_dirs for item in batch_items(data_dir)]
        free, total = disk_space(data_dirs[0].root)
        decided = plan(items, free, total, policy, now)
        result.plans.append(decided)
        if dry_run:
            continue
        for deletion in decided.deletions:
            if _delete(deletion, result):
                result.deleted.append(deletion)
                if deletion.loss:
                    _record_loss(deletion, now)
        for data_dir in data_dirs:
            try:
                _remove_empty_day_folders(data_dir, now)
            except OSError as error:  # a read-only data dir: nothing to tidy now
                result.errors.append(f"{data_dir.batches}: {error}")
    if result.stop_accepting and not was_stopping:
        shortfall = sum(p.shortfall for p in result.plans)
        log_event(
            log,
            logging.ERROR,
            "disk_limit_reached_stop_accepting",
            shortfall_bytes=shortfall,
            on_full=policy.on_full,
        )
    return result


def _delete(deletion: Deletion, result: CleanupResult) -> bool:
    path = Path(deletion.item.key)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as error:
        result.errors.append(f"{path}: {error}")
        return False
    batch_mark(path).unlink(missing_ok=True)  # after the data: an orphan mark is harmless
    remove_seal(path)
    level = logging.ERROR if deletion.loss else logging.INFO
    log_event(
        log,
        level,
        "data_dropped" if deletion.loss else "deleted",
        path=str(path),
        bytes=deletion.item.size,
        reason=deletion.reason,
        first_seq=deletion.item.first_seq,
        last_seq=deletion.item.last_seq,
    )
    return True


def _record_loss(deletion: Deletion, now: float) -> None:
    path = Path(deletion.item.key)
    data_dir = DataDir.holding(path) or DataDir(path.parent)
    item = deletion.item
    rows = (item.last_seq - item.first_seq + 1) if item.first_seq is not None else None
    entry = LossRecord(
        round(now, 3), path.name, item.first_seq, item.last_seq, rows, item.size, deletion.reason
    )
    losses(data_dir).append(entry, durable=True)


def _remove_empty_day_folders(data_dir: DataDir, now: float) -> None:
    """Drop day folders with nothing left (past days only), then empty months and years."""
    today = data_dir.batches / day_folder(day_of(now))
    for folder in sorted(data_dir.batches.glob("*/*/*"), reverse=True):
        if not folder.is_dir() or folder == today:
            continue
        leftovers = [p for p in folder.iterdir() if p.name != FOLDER_MARK]
        orphans = [p for p in leftovers if is_orphan_mark(p) or is_orphan_seal(p)]
        for orphan in orphans:
            orphan.unlink(missing_ok=True)
        if len(leftovers) == len(orphans):
            (folder / FOLDER_MARK).unlink(missing_ok=True)
            for empty in (folder, folder.parent, folder.parent.parent):
                try:
                    empty.rmdir()
                except OSError:
                    break
