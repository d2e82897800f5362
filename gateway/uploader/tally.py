"""The uploader's counters and last outcomes per data dir, and the status document built from
them.

The service publishes the document in each data dir (``state/uploader.status.json``), where
``gateway status``, the site, hil and the soak tests read it: its keys are a contract. The
tally is updated from the pipelines' threads and read by the heartbeat, so every method takes
the lock.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, fields

from gateway.settings import Settings
from gateway.uploader.events import Quarantined, Uploaded


@dataclass
class UploaderCounters:
    uploaded: int = 0  # batches uploaded, verified and marked touched (since start)
    already_there: int = 0  # of those, found identical in S3 (a retry after a crash)
    bytes: int = 0  # object bytes verified
    pending: int = 0  # sealed batches not yet touched, at the last scan
    failed: int = 0  # batches whose last attempt failed
    failures: int = 0  # failed attempts in total
    quarantined: int = 0  # invalid batches moved to quarantine (and uploaded there)
    days_marked: int = 0
    rejected_files: int = 0  # files of rejected lines uploaded to the quarantine prefix


class Tally:
    def __init__(self) -> None:
        self._counters: dict[str, UploaderCounters] = {}
        self._last_error: dict[str, dict] = {}
        self._last_success: dict[str, dict] = {}
        self._lock = threading.Lock()

    def _of(self, data_dir: str) -> UploaderCounters:
        return self._counters.setdefault(data_dir, UploaderCounters())

    def scanned(self, data_dir: str, pending: int) -> None:
        with self._lock:
            self._of(data_dir).pending = pending

    def days_marked(self, data_dir: str, count: int) -> None:
        with self._lock:
            self._of(data_dir).days_marked += count

    def already_there(self, data_dir: str) -> None:
        with self._lock:
            self._of(data_dir).already_there += 1

    def failed(
        self, data_dir: str, batch: str, key: str | None, error: str, attempts: int, *, first: bool
    ) -> None:
        """An attempt failed; ``first`` when the batch was not failing before."""
        with self._lock:
            counters = self._of(data_dir)
            if first:
                counters.failed += 1
            counters.failures += 1
            self._last_error[data_dir] = {
                "at": round(time.time(), 3),
                "batch": batch,
                "key": key,
                "error": error,
                "attempts": attempts,
            }

    def done(self, event: Uploaded | Quarantined, *, was_failing: bool) -> None:
        """A batch was uploaded (or quarantined) for good."""
        with self._lock:
            counters = self._of(event.data_dir)
            if isinstance(event, Uploaded):
                counters.uploaded += 1
                counters.bytes += event.size
            else:
                counters.quarantined += 1
            if was_failing:
                counters.failed = max(0, counters.failed - 1)
            counters.pending = max(0, counters.pending - 1)
            self._last_success[event.data_dir] = {
                "at": round(time.time(), 3),
                "batch": event.batch,
                "key": event.key,
            }

    def rejected_uploaded(self, data_dir: str, size: int, was_failing: bool) -> None:
        """A file of rejected lines was uploaded, verified and marked."""
        with self._lock:
            counters = self._of(data_dir)
            counters.rejected_files += 1
            counters.bytes += size
            if was_failing:
                counters.failed = max(0, counters.failed - 1)

    def no_batch_failing(self) -> None:
        """Every failure was forgotten (new settings: every batch is tried at once)."""
        with self._lock:
            for counters in self._counters.values():
                counters.failed = 0

    def totals(self) -> dict:
        """Every counter summed over the data dirs."""
        with self._lock:
            return {
                field.name: sum(getattr(c, field.name) for c in self._counters.values())
                for field in fields(UploaderCounters)
            }

    def document(
        self,
        data_dir: str,
        *,
        settings: Settings,
        once: bool,
        started_at: float,
        running: bool,
        data_dirs: int,
        store: dict | None = None,
    ) -> dict:
        """The status the uploader publishes in ``data_dir``; ``store``: what the store was
        found to support and how objects are verified (None until the probe succeeds)."""
        with self._lock:
            counters = asdict(self._counters.get(data_dir, UploaderCounters()))
            last_error = self._last_error.get(data_dir)
            last_success = self._last_success.get(data_dir)
        return {
            "service": "uploader",
            "pid": os.getpid(),
            "started_at": round(started_at, 3),
            "updated_at": round(time.time(), 3),
            "running": running,
            "once": once,
            "bucket": settings.s3_bucket,
            "prefix": settings.s3_prefix,
            "endpoint": settings.s3_endpoint_url or "aws",
            "s3": store,
            "counters": counters,
            "last_error": last_error,
            "last_success": last_success,
            "data_dirs": data_dirs,
        }
