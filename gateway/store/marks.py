"""Upload marks ("touched") and moves to quarantine: what the uploader writes after a verify.

``<first>-<last>.csv.touched`` holds the JSON record of the verified object (key, size,
checksum, time). A day folder gets ``.touched`` when every batch in it is touched and no batch
can still be added to it. Only touched data is eligible for routine cleanup. A batch that
failed validation is uploaded under the quarantine prefix, then moved to
``quarantine/batches/`` with its reason beside it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.core.keys import BadName, parse_part_name
from gateway.core.upload_plan import days_to_mark, days_to_unmark
from gateway.logs import log_event
from gateway.store.durable import PART, fsync_dir, make_dirs, write_atomic
from gateway.store.layout import DataDir
from gateway.store.seals import remove_seal

if TYPE_CHECKING:  # recovery keeps upload marks out of its way: it imports this module
    from gateway.store.recovery import SealedBatch

log = logging.getLogger("gateway.store")

BATCH_MARK_SUFFIX = ".touched"
FOLDER_MARK = ".touched"
REASON_SUFFIX = ".reason.json"


def batch_mark(batch_path: Path) -> Path:
    return batch_path.with_name(batch_path.name + BATCH_MARK_SUFFIX)


def folder_mark(folder: Path) -> Path:
    return folder / FOLDER_MARK


def is_touched(batch_path: Path) -> bool:
    return batch_mark(batch_path).exists()


def is_orphan_mark(path: Path) -> bool:
    """A batch's mark whose batch is gone: the leftover of an interrupted deletion."""
    return (
        path.name.endswith(BATCH_MARK_SUFFIX)
        and path.name != FOLDER_MARK
        and not path.with_name(path.name.removesuffix(BATCH_MARK_SUFFIX)).exists()
    )


def mark_touched_files(records: Sequence[tuple[Path, dict]]) -> None:
    """Write the "uploaded and verified" mark beside each file: its bytes are durable before
    its name (one sync for all), and the names before the call returns."""
    if not records:
        return
    written = []
    for target, record in records:
        path = batch_mark(target)
        part = path.with_name(path.name + PART)
        part.write_bytes(json.dumps(record, indent=1).encode())
        written.append((part, path))
    os.sync()
    for part, path in written:
        os.replace(part, path)
    for folder in {path.parent for _, path in written}:
        fsync_dir(folder)


def mark_touched(data_dir: DataDir, records: Sequence[tuple[str, dict]]) -> None:
    """Write the sidecars that say "uploaded and verified": what cleanup trusts.

    ``records`` pairs a batch's path under ``batches/`` with the record of its object. A
    chunk's marks are made durable together: every mark's bytes are written under a temporary
    name, one sync flushes them all, then the renames and one fsync per folder make the names
    durable. (A mark's name appears only with its bytes on disk; two fsyncs per mark cost more
    than the upload of a small batch on an SD card.)
    """
    mark_touched_files([(data_dir.batch_path(relpath), record) for relpath, record in records])


def remove_unfinished_marks(data_dir: DataDir) -> int:
    """Remove marks an earlier uploader began but never renamed into place (its own
    ``.touched.part`` files: the reader's recovery leaves every .part but its own alone)."""
    removed = 0
    for folder in (data_dir.batches, data_dir.quarantine):
        for path in folder.rglob(f"*{BATCH_MARK_SUFFIX}{PART}"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def quarantine_batch(data_dir: DataDir, relpath: str, record: dict) -> Path:
    """Move an invalid batch out of ``batches/`` with its reason beside it.

    The reason is written first and the move is the last step, so an interruption leaves the
    batch where it was and the whole step is simply done again.
    """
    source = data_dir.batch_path(relpath)
    target = data_dir.quarantined_batches / relpath
    make_dirs(target.parent)
    write_atomic(
        target.with_name(target.name + REASON_SUFFIX), json.dumps(record, indent=1).encode()
    )
    try:
        os.replace(source, target)
    except FileNotFoundError:
        if not target.exists():
            raise
    fsync_dir(target.parent)
    fsync_dir(source.parent)
    remove_seal(source)  # the record went with the batch's bytes: quarantine keeps the reason
    log_event(
        log,
        logging.WARNING,
        "batch_quarantined",
        batch=relpath,
        key=record["key"],
        reason=record["reason"],
    )
    return target


def _holds_open_batch(folder: Path) -> bool:
    """A reader's open batch is in the folder (looked at by name; never opened)."""
    for path in folder.glob(f"*{PART}"):
        try:
            parse_part_name(path.name)
            return True
        except BadName:
            continue
    return False


def update_day_marks(
    data_dir: DataDir,
    pending: Iterable[SealedBatch],
    touched: Iterable[SealedBatch],
    now: float,
) -> tuple[list[dt.date], list[dt.date]]:
    """Mark day folders whose batches are all touched and whose day is over; unmark a marked
    folder that holds an untouched batch again. Returns (marked, unmarked) days."""
    pending, touched = list(pending), list(touched)
    batches = [(b.name.day, False) for b in pending] + [(b.name.day, True) for b in touched]
    folders = {b.name.day: b.path.parent for b in (*pending, *touched)}
    already = [day for day, folder in folders.items() if folder_mark(folder).exists()]
    open_days = [day for day, folder in folders.items() if _holds_open_batch(folder)]
    marked = days_to_mark(batches, already, now, open_days)
    for day in marked:
        count = sum(1 for b in touched if b.name.day == day)
        record = {"day": day.isoformat(), "batches": count, "marked_at": round(now, 3)}
        write_atomic(folder_mark(folders[day]), json.dumps(record).encode())
        log_event(log, logging.INFO, "day_marked", data_dir=str(data_dir.root), day=str(day))
    unmarked = days_to_unmark(batches, already)
    for day in unmarked:
        folder_mark(folders[day]).unlink(missing_ok=True)
        fsync_dir(folders[day])
        log_event(log, logging.WARNING, "day_unmarked", data_dir=str(data_dir.root), day=str(day))
    return marked, unmarked
