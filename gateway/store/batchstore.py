"""The batch store: rows in, sealed ``.csv`` batches out, committed the durable way.

The open batch is ``batches/YYYY/MM/DD/<first>.part``. Rows reach the kernel with one
``write`` per append (so a killed process loses nothing it appended) and the disk with an
``fsync`` every ``fsync_seconds``. Sealing fsyncs the file, writes its seal record (what the
uploader would otherwise parse the rows again to learn: ``gateway/core/seal.py``), renames it to
``<first>-<last>.csv`` and fsyncs the folder; then the seq floor in ``state/seq.json`` moves.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.core.batchfile import (
    format_block,
    format_rows,
    header_columns,
    header_row,
    received_at_text,
)
from gateway.core.batching import Batcher, BatchPolicy
from gateway.core.keys import BatchName, day_folder, day_of, part_name
from gateway.core.seal import SealRecord
from gateway.logs import log_event
from gateway.store.durable import commit, fsync_dir, make_dirs
from gateway.store.layout import DataDir
from gateway.store.ledgers import write_seq_floor
from gateway.store.quarantine import Quarantine, recover_segments
from gateway.store.recovery import Recovery, SealedBatch, recover
from gateway.store.seals import write_seal

log = logging.getLogger("gateway.store")


@dataclass
class _OpenBatch:
    path: Path
    fd: int
    first_seq: int
    day: object
    size: int
    columns: tuple[str, ...]  # the header's
    rows: int = 0
    dirty: bool = False
    # for the seal record: the bytes written so far, and the rows' received_at range
    hasher: object = field(default_factory=hashlib.sha256)
    earliest: float = float("inf")
    latest: float = float("-inf")

    def received(self, stamp: bytes) -> None:
        at = float(stamp)  # as the rows read: validation parses the same text
        self.earliest = min(self.earliest, at)
        self.latest = max(self.latest, at)


class BatchStore:
    """Append rows, seal batches by policy, recover leftovers. Not thread-safe: one writer."""

    def __init__(
        self,
        data_dir: DataDir,
        policy: BatchPolicy,
        *,
        fsync_seconds: float = 1.0,
        max_quarantine_bytes: int = 64 << 20,
    ):
        self.data_dir = data_dir.ensure()
        # One day's rejected lines may use half the budget; cleanup trims older days. Their
        # segments seal on the batches' schedule, so they reach S3 with them.
        self.quarantine = Quarantine(
            data_dir,
            max_day_bytes=max_quarantine_bytes // 2,
            seal_seconds=policy.max_seconds,
        )
        self.batcher = Batcher(policy)
        self.fsync_seconds = fsync_seconds
        self.next_seq: int | None = None
        self.columns: tuple[str, ...] | None = None
        self._open: _OpenBatch | None = None
        self._last_sync: float | None = None
        self.sealed_total = 0  # batches sealed by this store since it started

    def recover(self) -> Recovery:
        """Seal every leftover ``.part``; must run before the first append."""
        result = recover(self.data_dir, self.quarantine)
        result.sealed_segments = recover_segments(self.data_dir)
        self.next_seq = result.next_seq
        return result

    def use_columns(self, names: Sequence[str], now: float) -> list[SealedBatch]:
        """Set the device column names; seals the open batch if they changed."""
        names = tuple(names)
        sealed = []
        if self._open is not None and names != self.columns:
            sealed.append(self._seal(now))
        self.columns = names
        return [batch for batch in sealed if batch]

    def append(self, records: Sequence[bytes], received_at: float, now: float) -> list[SealedBatch]:
        """Number and store records; return the batches that filled up and were sealed.

        On ``OSError`` (a full disk) the rows before the failure are stored (``next_seq`` says
        how many) and no partial row is left behind.
        """
        if self.next_seq is None:
            raise RuntimeError("recover() must run before the first append")
        if self.columns is None:
            raise RuntimeError("use_columns() must run before the first append")
        stamp = received_at_text(received_at)
        sealed = []
        batcher = self.batcher
        if records and self._open is None:
            self._open_batch(received_at, now)
        if records and not batcher.full and batcher.rows + len(records) <= batcher.policy.max_rows:
            # The usual case: all of them go into the open batch; one write, no row list.
            data = format_block(self.next_seq, stamp, records)
            if batcher.bytes + len(data) < batcher.policy.max_bytes:
                self._write(data)
                self._open.received(stamp)
                self._open.rows += len(records)
                self.next_seq += len(records)
                if batcher.add(len(records), len(data), now):
                    sealed.append(self._seal(now))
                return [batch for batch in sealed if batch]
        rows = format_rows(self.next_seq, stamp, records)
        sizes = list(map(len, rows))
        start = 0
        while start < len(rows):
            if self._open is None:
                self._open_batch(received_at, now)
            count = self.batcher.fill(sizes[start:])
            end = start + count
            nbytes = sum(sizes[start:end])
            self._write(b"".join(rows[start:end]))
            self._open.received(stamp)
            self._open.rows += count
            self.next_seq += count
            start = end
            if self.batcher.add(count, nbytes, now):
                sealed.append(self._seal(now))
        return [batch for batch in sealed if batch]

    def tick(self, now: float) -> list[SealedBatch]:
        """Seal the open batch when it is old enough; fsync it when that is due."""
        self.quarantine.tick(now)
        if self._open is not None and self.batcher.due(now):
            batch = self._seal(now)
            return [batch] if batch else []
        if self._last_sync is None or now - self._last_sync >= self.fsync_seconds:
            self.sync(now)
        return []

    def seconds_until_due(self, now: float) -> float | None:
        return self.batcher.seconds_until_due(now)

    def sync(self, now: float) -> None:
        """Make what was appended durable (bounds what a power cut can lose)."""
        if self._open is not None and self._open.dirty:
            os.fsync(self._open.fd)
            self._open.dirty = False
        self.quarantine.sync()
        self._last_sync = now

    def close(self, now: float) -> list[SealedBatch]:
        """Seal what is open (clean stop)."""
        batch = self._seal(now) if self._open is not None else None
        self.quarantine.close()
        return [batch] if batch else []

    @property
    def open_rows(self) -> int:
        return self._open.rows if self._open else 0

    def _open_batch(self, received_at: float, now: float) -> None:
        day = day_of(received_at)
        folder = self.data_dir.batches / day_folder(day)
        make_dirs(folder)
        path = folder / part_name(self.next_seq)
        # O_APPEND: after a failed write is cut back, the next write lands at the new end
        # (a plain offset would stay past it and leave a hole of zero bytes).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        header = header_row(self.columns)
        self._open = _OpenBatch(path, fd, self.next_seq, day, 0, header_columns(header[:-1]))
        try:
            self._write(header)
            fsync_dir(folder)  # the .part's name survives a power cut too
        except OSError:
            self._discard_open()
            raise

    def _discard_open(self) -> None:
        """Remove an open batch that holds no row (its header alone is not data)."""
        batch, self._open = self._open, None
        os.close(batch.fd)
        batch.path.unlink(missing_ok=True)
        self.batcher.sealed()

    def _write(self, data: bytes) -> None:
        """Write all of ``data`` or, on error, cut the file back so no partial row stays."""
        batch = self._open
        view = memoryview(data)
        try:
            while view:
                written = os.write(batch.fd, view)
                view = view[written:]
        except OSError:
            try:
                os.ftruncate(batch.fd, batch.size)
            except OSError:
                log.exception("cannot cut %s back to %d bytes", batch.path, batch.size)
            raise
        batch.size += len(data)
        batch.hasher.update(data)
        batch.dirty = True

    def _seal(self, now: float) -> SealedBatch | None:
        batch = self._open
        if batch.rows == 0:
            self._discard_open()
            return None
        name = BatchName(batch.day, batch.first_seq, batch.first_seq + batch.rows - 1)
        final = batch.path.with_name(name.file_name)
        os.fsync(batch.fd)
        os.close(batch.fd)
        self._open = None
        self._write_seal(batch, name, final)
        commit(batch.path, final)
        self.batcher.sealed()
        self.sealed_total += 1
        try:
            write_seq_floor(self.data_dir, self.next_seq)
        except OSError as error:  # the batch is safe; the floor only matters after cleanup
            log_event(log, logging.WARNING, "seq_floor_not_written", error=str(error))
        self._last_sync = now
        log_event(
            log,
            logging.INFO,
            "batch_sealed",
            batch=name.relative_path,
            rows=batch.rows,
            bytes=batch.size,
            first_seq=name.first_seq,
            last_seq=name.last_seq,
        )
        return SealedBatch(name, final, batch.size)

    def _write_seal(self, batch: _OpenBatch, name: BatchName, final: Path) -> None:
        """The batch's seal record, before the rename that seals it; without one (a full
        disk) the uploader validates the batch row by row, so a failure only costs time."""
        record = SealRecord(
            batch.hasher.hexdigest(),
            batch.size,
            batch.rows,
            name.first_seq,
            name.last_seq,
            batch.earliest,
            batch.latest,
            batch.columns,
        )
        try:
            write_seal(final, record)
        except OSError as error:
            log_event(
                log,
                logging.WARNING,
                "seal_record_not_written",
                batch=name.relative_path,
                error=str(error),
                hint="the uploader validates this batch row by row instead (slower, not unsafe)",
            )
