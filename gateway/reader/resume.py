"""What the reader takes up from the data dir when it starts, and leaves there when it stops.

At start, in two steps, because a disk can be full or read-only when a reader starts (a reboot
after the card filled). :func:`look` only reads: the ``seq`` to continue at and the device
counter of the newest stored row, so rows can be counted truthfully from the first one.
:func:`resume` writes: it recovers the batch store (leftover ``.part`` files are cut to their
last row and sealed), records the identity and this run. It raises ``OSError`` when the disk
refuses, and may simply be called again later: every step is idempotent. The unfinished line
a clean stop left is taken at once, or not at all. At a clean stop: leave the unfinished line
for the next start.
"""

from __future__ import annotations

import logging
import os
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
from gateway.store.recovery import Recovery, look_ahead

log = logging.getLogger("gateway.reader")  # the reader's logger: its lines say "reader"


@dataclass(frozen=True, slots=True)
class Found:
    """What the data dir says at start, read without writing."""

    next_seq: int  # the seq recovery continues at
    last_device_counter: int | None  # of the newest stored row: a gap across restarts shows
    line_format: str  # the configured one, or under auto what the last run detected
    leftover_parts: int


@dataclass(frozen=True, slots=True)
class Resumed:
    store: BatchStore  # recovered: its next_seq follows the highest stored row
    recovery: Recovery


def look(settings: Settings, data_dir: DataDir) -> Found:
    """What the reader needs before its first row, reading only (a full or read-only disk
    will do). ``OSError`` only when the data dir cannot be read at all."""
    line_format = effective_format(settings.line_format, read_identity(data_dir))
    outlook = look_ahead(data_dir)
    return Found(
        outlook.next_seq,
        _device_counter(outlook.newest_row, counter_field(line_format)),
        line_format,
        outlook.leftover_parts,
    )


def resume(
    settings: Settings,
    data_dir: DataDir,
    found: Found,
    started_at: float,
    *,
    line_format: str | None = None,
    clock_synced: bool | None = None,
) -> Resumed:
    """Recover the store and record this run (started at ``started_at``; ``line_format``: what
    auto detected meanwhile; ``clock_synced``: whether the clock was synchronized as it began).
    Raises ``OSError`` when the disk refuses a write; call it again when the disk takes
    writes."""
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
    if recovery.next_seq != found.next_seq:  # a bug, or a data dir changed under us
        log_event(
            log,
            logging.ERROR,
            "recovery_seq_differs",
            looked=found.next_seq,
            recovered=recovery.next_seq,
        )
    write_identity(
        data_dir, Identity(settings.gateway_id, settings.port, line_format or found.line_format)
    )
    # Durable: the audit tells a gap at a restart from one on the wire by this record.
    runs(data_dir).append(
        RunRecord(
            round(started_at, 3),
            os.getpid(),
            recovery.next_seq,
            len(recovery.sealed),
            settings.port,
            clock_synced,
        )
    )
    return Resumed(store, recovery)


def effective_format(configured: str, previous: Identity | None) -> str:
    """The format the stored rows are in, as far as is known at start: the configured one, or
    under ``auto`` what the last run detected (until this run detects again)."""
    if configured != "auto" or previous is None or not previous.line_format:
        return configured
    return previous.line_format


def take_start_fragment(data_dir: DataDir, port: str) -> bytes:
    """The unfinished line the last clean stop left, if it can be taken: a fragment that cannot
    be removed (a read-only data dir) is not used, or a later start would use it twice."""
    try:
        return take_fragment(data_dir, port)
    except ValueError as error:
        log_event(log, logging.WARNING, "fragment_unreadable", error=str(error))
    except OSError as error:
        log_event(
            log,
            logging.WARNING,
            "fragment_not_taken",
            error=str(error),
            hint="the data dir refuses writes; the first line read may be a cut one",
        )
    return b""


def leave_fragment(data_dir: DataDir, port: str, fragment: bytes) -> None:
    """Keep the unfinished line for the next start (a clean stop loses nothing)."""
    if not fragment:
        return
    try:
        save_fragment(data_dir, port, fragment)
    except OSError as error:
        log_event(
            log,
            logging.WARNING,
            "fragment_not_saved",
            error=str(error),
            bytes=len(fragment),
        )


def _device_counter(row: bytes | None, counter_field: int | None) -> int | None:
    """The device counter of a stored row (csv-seq, json, nmea), or None."""
    if row is None or counter_field is None:
        return None
    try:
        return int(device_field(row, counter_field))
    except (ValueError, IndexError):
        return None
