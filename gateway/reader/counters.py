"""What the reader counts, and the status document it publishes from those counts.

``gateway status``, the site, hil and the soak campaigns read the document's keys: rename none.
"""

from __future__ import annotations

import collections
import os
import time
from dataclasses import asdict, dataclass, field

from gateway.core.codec import Shape
from gateway.core.intake import DeviceGap, FormatDetected
from gateway.core.not_stored import HINTS
from gateway.core.reader_state import PortState, StorageState
from gateway.core.rejection_watch import Alert
from gateway.reader.cleanup_loop import CleanupLoop
from gateway.reader.handoff import Handoff, PortLost
from gateway.reader.not_stored import DiskFault, NotStoredBook
from gateway.reader.portreader import PortReader
from gateway.settings import Settings
from gateway.store.batchstore import BatchStore

RECENT = 50  # events of each kind kept in the published status


@dataclass
class ReaderCounters:
    bytes_read: int = 0
    lines_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    header_lines: int = 0  # lines that named the columns: kept in quarantine, not rows
    device_gaps: int = 0
    device_lines_lost: int = 0
    counter_resets: int = 0
    partial_bytes_dropped: int = 0
    overflow_events: int = 0  # counted by the hand-off; copied in by reader_status()
    overflow_bytes: int = 0
    reconnects: int = 0
    port_outages: int = 0
    batches_sealed: int = 0  # counted by the store; copied in by reader_status()
    rows_not_stored: int = 0  # accepted, but the disk refused them (full, read-only, I/O error)
    rows_refused_full: int = 0  # accepted, but not stored: a disk limit with on_full=stop-accepting
    store_errors: int = 0
    # Every row (or line) not stored this run, by gateway.core.not_stored.Cause; the ledger
    # state/not_stored.jsonl keeps them across restarts.
    not_stored_by_cause: dict[str, int] = field(default_factory=dict)


class RecentEvents:
    """The last few device gaps and port outages, oldest first, as the status shows them."""

    def __init__(self) -> None:
        self.gaps: collections.deque[dict] = collections.deque(maxlen=RECENT)
        self.outages: collections.deque[dict] = collections.deque(maxlen=RECENT)

    def add_gap(self, gap: DeviceGap, seq: int | None, at: float) -> dict:
        """Record a device-side gap found at ``seq`` (None: that row was not stored)."""
        entry = {"seq": seq, "after": gap.after, "missing": gap.missing, "at": round(at, 3)}
        self.gaps.append(entry)
        return entry

    def add_outage(self, lost: PortLost, back_at: float) -> dict:
        """Record an outage from ``lost`` until the port opened again at ``back_at``."""
        entry = {
            "start": round(lost.at, 3),
            "end": round(back_at, 3),
            "seconds": round(back_at - lost.at, 3),
            "error": lost.error,
        }
        self.outages.append(entry)
        return entry


def reader_status(
    settings: Settings,
    counters: ReaderCounters,
    recent: RecentEvents,
    *,
    started_at: float,
    running: bool,
    port_state: PortState,
    storage_state: StorageState,
    next_seq: int,
    handoff: Handoff,
    port_reader: PortReader | None,
    store: BatchStore | None,
    cleanup: CleanupLoop | None,
    stream: dict,
    fault: DiskFault | None = None,
    book: NotStoredBook | None = None,
    detected: FormatDetected | None = None,
    shape: Shape | None = None,
    rejection_alert: Alert | None = None,
    clock: dict | None = None,
) -> dict:
    """The document the reader publishes: its counters and those its parts keep themselves."""
    counted = asdict(counters)
    counted["batches_sealed"] = store.sealed_total if store else 0
    counted["overflow_bytes"] = handoff.overflow_bytes
    counted["overflow_events"] = handoff.overflow_events
    counted["port_open_failures"] = port_reader.open_failures if port_reader is not None else 0
    return {
        "service": "reader",
        "pid": os.getpid(),
        "started_at": round(started_at, 3),
        "updated_at": round(time.time(), 3),
        "running": running,
        "port_state": port_state.name,
        "storage_state": storage_state.name,
        "mode": settings.mode,
        "port": settings.port,
        "port_open": port_reader.is_open if port_reader is not None else False,
        # Why the port cannot be opened, while it cannot (None otherwise).
        "port_error": port_reader.open_error_status() if port_reader is not None else None,
        "format": settings.line_format,
        "format_detected": {
            "format": detected.format,
            "evidence": detected.evidence,
            "lines_examined": detected.lines_examined,
        }
        if detected
        else None,
        "columns": list(shape.names) if shape else None,
        "rejection_alert": rejection_alert.as_dict() if rejection_alert else None,
        "clock": clock,
        "next_seq": next_seq,
        "open_batch_rows": store.open_rows if store else 0,
        "handoff_high_water_bytes": handoff.high_water_bytes,
        "port_hand_offs": port_reader.hand_offs if port_reader is not None else 0,
        "counters": counted,
        "stream": stream,
        "storing": storage_state in (StorageState.STORING, StorageState.NOT_STORING),
        # Why the disk refuses writes, while it does (None otherwise).
        "storage_fault": {
            "cause": str(fault.cause),
            "error": fault.error,
            "since": round(fault.since, 3),
            "hint": HINTS[fault.cause],
        }
        if fault is not None
        else None,
        # Entries of state/not_stored.jsonl the disk has not taken yet (kept in memory).
        "not_stored_waiting": len(book.pending) if book is not None else 0,
        "quarantine_entries_dropped": store.quarantine.dropped if store else 0,
        "cleanup": {
            "runs": cleanup.runs,
            "deleted": cleanup.deleted,
            "stop_accepting": cleanup.stop_accepting,
            "last_error": cleanup.last_error,
        }
        if cleanup
        else None,
        "recent_gaps": list(recent.gaps),
        "recent_outages": list(recent.outages),
    }
