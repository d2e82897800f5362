"""What the reader takes up from the data dir when it starts, and leaves there when it stops.

At start: recover the batch store (leftover ``.part`` files are cut to their last row and
sealed; ``seq`` continues after the highest row), record this run and the identity, and take
the unfinished line a clean stop left and the device counter of the newest stored row. At a
clean stop: leave the unfinished line for the next start.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from gateway.core.batchfile import device_field
from gateway.core.batching import BatchPolicy
from gateway.core.records import counter_field
from gateway.logs import log_event
from gateway.settings import Settings
from gateway.store.batchstore import BatchStore
from gateway.store.layout import DataDir
from gateway.store.ledgers import (
    Identity,
    RunRecord,
    read_identity,
    runs,
    save_fragment,
    take_fragment,
    write_identity,
)
from gateway.store.recovery import read_last_row, sealed_batches

log = logging.getLogger("gateway.reader")  # the reader's logger: its lines say "reader"


@dataclass(frozen=True, slots=True)
class Resumed:
    store: BatchStore  # recovered: its next_seq follows the highest stored row
    fragment: bytes  # the unfinished line the last clean stop left (may be empty)
    last_device_counter: int | None  # of the newest stored row: a gap across restarts shows


def resume(settings: Settings, data_dir: DataDir, clock_synced: bool | None = None) -> Resumed:
    """Recover the store and take up what the last run left; record this run (and whether the
    clock was synchronized as it began)."""
    store = BatchStore(
        data_dir,
        BatchPolicy(settings.batch_rows, settings.batch_bytes, settings.batch_seconds),
        fsync_seconds=settings.fsync_seconds,
        max_quarantine_bytes=settings.max_quarantine_bytes,
    )
    recovery = store.recover()
    if recovery.sealed or recovery.removed_empty or recovery.quarantined_tails:
        log_event(
            log,
            logging.WARNING,
            "recovery_done",
            sealed=len(recovery.sealed),
            removed_empty=len(recovery.removed_empty),
            tails_quarantined=len(recovery.quarantined_tails),
            next_seq=recovery.next_seq,
        )
    line_format = effective_format(settings.line_format, read_identity(data_dir))
    write_identity(data_dir, Identity(settings.gateway_id, settings.port, line_format))
    fragment = _take_fragment(data_dir, settings.port)
    last_counter = _last_device_counter(data_dir, counter_field(line_format))
    _record_run(
        data_dir,
        RunRecord(
            round(time.time(), 3),
            os.getpid(),
            recovery.next_seq,
            len(recovery.sealed),
            settings.port,
            clock_synced,
        ),
    )
    return Resumed(store, fragment, last_counter)


def effective_format(configured: str, previous: Identity | None) -> str:
    """The format the stored rows are in, as far as is known at start: the configured one, or
    under ``auto`` what the last run detected (until this run detects again)."""
    if configured != "auto" or previous is None or not previous.line_format:
        return configured
    return previous.line_format


def leave_fragment(data_dir: DataDir, port: str, fragment: bytes) -> None:
    """Keep the unfinished line for the next start (a clean stop loses nothing)."""
    if not fragment:
        return
    try:
        save_fragment(data_dir, port, fragment)
    except OSError as error:
        log_event(log, logging.WARNING, "fragment_not_saved", error=str(error))


def _take_fragment(data_dir: DataDir, port: str) -> bytes:
    try:
        return take_fragment(data_dir, port)
    except (ValueError, OSError) as error:
        log_event(log, logging.WARNING, "fragment_unreadable", error=str(error))
        return b""


def _record_run(data_dir: DataDir, entry: RunRecord) -> None:
    """Record this start: the audit tells a gap at a restart from one on the wire by it."""
    try:
        runs(data_dir).append(entry)
    except OSError as error:
        log_event(log, logging.WARNING, "run_not_recorded", error=str(error))


def _last_device_counter(data_dir: DataDir, counter_field: int | None) -> int | None:
    """The device counter of the newest stored row (csv-seq, json, nmea), or None."""
    batches = sealed_batches(data_dir) if counter_field is not None else []
    row = read_last_row(batches[-1].path) if batches else None
    try:
        return int(device_field(row, counter_field)) if row else None
    except (ValueError, IndexError):
        return None
