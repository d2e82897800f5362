"""The reader's book of rows it read but did not store: episodes by cause, logged and written.

Each cause has at most one open :class:`~gateway.core.not_stored.Episode`. The service says
when one ends (the disk takes writes again, the limit clears); an overflow or a run of rejected
lines the quarantine cannot keep ends after ``QUIET_SECONDS`` without another. An ending
episode is logged as an error (``rows_not_stored``: cause, rows, device counters, the ``seq``
they fell before, a hint) and appended to ``state/not_stored.jsonl``. One still going after
``CHECKPOINT_SECONDS`` is written as it stands and goes on in a new entry, so a reader killed
during a day-long fault loses at most that much of the account. When the disk refuses the
entry (it is full: that is often why rows were not stored), the entry waits in memory, the log
says so, and it is written when a write goes through again.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.core.not_stored import HINTS, Cause, Episode
from gateway.logs import log_event
from gateway.store.layout import DataDir
from gateway.store.ledgers import NotStoredRecord, not_stored

log = logging.getLogger("gateway.reader")

#: An open episode is written (and continued in a new entry) this often while it lasts.
CHECKPOINT_SECONDS = 60.0
#: Overflows and unkept rejections come in bursts: one ends this long after the last.
QUIET_SECONDS = 5.0
BURSTY = (Cause.HANDOFF_OVERFLOW, Cause.REJECTED_NOT_KEPT)
#: Entries kept in memory while the disk refuses them; past this the oldest go (the log
#: already holds each in full).
MAX_PENDING = 1000


@dataclass(frozen=True, slots=True)
class DiskFault:
    """Why the disk refuses writes, since when (Unix time), and what it said."""

    cause: Cause
    error: str
    since: float


class NotStoredBook:
    """Open episodes by cause, and the entries the disk has not taken yet."""

    def __init__(self, data_dir: DataDir | None, rows_by_cause: dict[str, int]) -> None:
        self.data_dir = data_dir  # None: mode demo, nothing is written
        self.rows_by_cause = rows_by_cause  # this run's totals, published in the status
        self.open: dict[Cause, Episode] = {}
        self._pieces_since: dict[Cause, float] = {}  # when each open entry began
        self._touched: dict[Cause, float] = {}  # the last time each open episode grew
        self.pending: deque[NotStoredRecord] = deque()
        self.pending_dropped = 0
        self.entries_written = 0

    # -- counting -------------------------------------------------------------------------

    def episode(self, cause: Cause, at: float, error: str = "") -> Episode:
        """The open episode of ``cause``, begun at ``at`` if there was none."""
        episode = self.open.get(cause)
        if episode is None:
            episode = self.open[cause] = Episode(cause, at, at, error)
            self._pieces_since[cause] = at
        elif error and not episode.error:
            episode.error = error
        self._touched[cause] = at
        return episode

    def count_rows(
        self,
        cause: Cause,
        rows: int,
        counters: Sequence[int] | None,
        next_seq: int | None,
        at: float,
        error: str = "",
    ) -> None:
        self.episode(cause, at, error).add_rows(counters, rows, next_seq, at)
        self.rows_by_cause[cause] = self.rows_by_cause.get(cause, 0) + rows

    def count_span(
        self, cause: Cause, first: int, last: int, next_seq: int | None, rows: int, at: float
    ) -> None:
        self.episode(cause, at).add_span(first, last, next_seq, rows, at)
        self.rows_by_cause[cause] = self.rows_by_cause.get(cause, 0) + rows

    def count_bytes(self, cause: Cause, dropped: int, at: float) -> None:
        episode = self.episode(cause, at)
        episode.bytes += dropped
        episode.end = max(episode.end, at)

    # -- ending and writing -----------------------------------------------------------------

    def end(self, cause: Cause, at: float) -> Episode | None:
        """End the open episode of ``cause`` (if any): log it, write it (or keep it)."""
        episode = self.open.pop(cause, None)
        self._pieces_since.pop(cause, None)
        self._touched.pop(cause, None)
        if episode is None:
            return None
        episode.end = max(episode.end, at)
        if episode.lost_anything:
            self._record(episode, ongoing=False, at=at)
        return episode

    def tick(self, at: float, writable: bool) -> None:
        """End quiet bursts, checkpoint long episodes, and (``writable``: the disk is not known
        to refuse writes) write what waits."""
        for cause in [c for c in BURSTY if c in self.open]:
            if at - self._touched[cause] >= QUIET_SECONDS:
                self.end(cause, at)
        for cause, since in list(self._pieces_since.items()):
            if at - since >= CHECKPOINT_SECONDS:
                self._checkpoint(cause, at)
        if writable and self.pending:
            self.write_pending(at)

    def end_all(self, at: float) -> None:
        """A clean stop: every open episode ends now, and one last try to write them."""
        for cause in list(self.open):
            self.end(cause, at)
        if self.pending:
            self.write_pending(at)
        for record in self.pending:
            log_event(log, logging.ERROR, "not_stored_entry_lost", **_fields(record))
        if self.pending:
            log_event(
                log,
                logging.ERROR,
                "not_stored_ledger_incomplete",
                entries=len(self.pending),
                hint="the disk refused them; each is in the log above (rows_not_stored)",
            )

    def write_pending(self, at: float) -> bool:
        """Write the entries that wait, oldest first; True when none is left."""
        if self.data_dir is None:
            self.pending.clear()
            return True
        ledger = not_stored(self.data_dir)
        written = 0
        delayed = 0.0
        while self.pending:
            record = self.pending[0].written(at)
            try:
                ledger.append(record)
            except OSError:
                break
            self.pending.popleft()
            written += 1
            delayed = max(delayed, at - record.end)
        self.entries_written += written
        if written:
            log_event(
                log,
                logging.WARNING,
                "not_stored_recorded_late",
                entries=written,
                delayed_s=round(delayed, 1),
                waiting=len(self.pending),
            )
        return not self.pending

    def _checkpoint(self, cause: Cause, at: float) -> None:
        episode = self.open[cause]
        episode.end = at  # this entry covers the episode so far; the next one goes on from here
        if episode.lost_anything:
            self._record(episode, ongoing=True, at=at)
        self.open[cause] = Episode(cause, at, at, episode.error)
        self._pieces_since[cause] = at

    def _record(self, episode: Episode, *, ongoing: bool, at: float) -> None:
        record = NotStoredRecord.of(episode, ongoing=ongoing, written_at=at)
        log_event(
            log,
            logging.WARNING if episode.cause is Cause.REJECTED_NOT_KEPT else logging.ERROR,
            "rows_not_stored",
            **_fields(record),
            hint=HINTS[episode.cause],
        )
        if self.data_dir is None:
            return
        if self.pending:  # keep the order: older entries first
            self._keep(record)
            return
        try:
            not_stored(self.data_dir).append(record)
        except OSError as error:
            self._keep(record)
            log_event(
                log,
                logging.ERROR,
                "not_stored_ledger_deferred",
                error=str(error),
                waiting=len(self.pending),
                hint="kept in memory and written when the disk takes writes again; "
                "the line above has it in full",
            )
            return
        self.entries_written += 1

    def _keep(self, record: NotStoredRecord) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.pending.popleft()
            self.pending_dropped += 1
        self.pending.append(record)


def _fields(record: NotStoredRecord) -> dict:
    """An entry as a log line's fields: counters as ``first-last`` spans, times in UTC."""
    spans = record.counters
    return {
        "cause": record.cause,
        "rows": record.rows,
        "bytes": record.bytes or None,
        "counters": ",".join(f"{a}-{b}" for a, b, _ in spans) if spans else None,
        "next_seq": spans[0][2] if spans else None,
        "start": _utc(record.start),
        "end": _utc(record.end),
        "seconds": round(record.end - record.start, 3),
        "ongoing": record.ongoing or None,
        "error": record.error or None,
    }


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
