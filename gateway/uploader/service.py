"""The uploader service: scan, run the DAG over what is pending, mark days, wait, repeat.

The main thread runs the loop and the Luigi worker; signals only set flags and wake the wait.
A heartbeat thread publishes the uploader's status (per data dir) and pings the
systemd watchdog while the loop makes progress.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gateway.core.backoff import Backoff, RetryState
from gateway.core.upload_plan import make_chunks
from gateway.logs import log_event
from gateway.notify import Notifier
from gateway.settings import Settings
from gateway.store.inventory import pending_batches
from gateway.store.layout import DataDir, discover_data_dirs
from gateway.store.ledgers import gateway_id_of, publish_status
from gateway.store.marks import remove_unfinished_marks, update_day_marks
from gateway.store.watch import Watcher
from gateway.store.workspace import UploadWorkspace, boot_id
from gateway.uploader import s3, steps, tasks
from gateway.uploader.parallel import DaskMapper
from gateway.uploader.progress import Progress

log = logging.getLogger("gateway.uploader")

STUCK_SECONDS = 300.0  # no progress for this long: stop pinging the watchdog


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


class UploaderService:
    def __init__(self, settings: Settings, *, once: bool = False, reload=None) -> None:
        if not settings.s3_bucket:
            raise ValueError("GATEWAY_S3_BUCKET is not set: the uploader needs a bucket")
        self.settings = settings
        self.once = once
        self._reload_settings = reload
        self.root = Path(settings.data_dir)
        self.notifier = Notifier()
        self.stop = threading.Event()
        self._reload = threading.Event()
        self._lock = threading.Lock()
        self.counters: dict[str, UploaderCounters] = {}
        self.last_error: dict[str, dict] = {}
        self.last_success: dict[str, dict] = {}
        self.retries: dict[tuple[str, str], RetryState] = {}
        self.gave_up: set[tuple[str, str]] = set()
        self._rng = random.Random()
        self._started_at = time.time()
        self._last_activity = time.monotonic()
        self._data_dirs: list[DataDir] = []
        self.watcher = Watcher(self.root)
        self.progress = Progress(
            bar=sys.stderr.isatty(),
            interval=settings.upload_progress_seconds,
        )
        self._open_s3()

    # -- life cycle -------------------------------------------------------------------------

    def request_stop(self, signum=None, frame=None) -> None:
        self.stop.set()
        self.runtime.stop.set()
        self.watcher.wake()

    def request_reload(self, signum=None, frame=None) -> None:
        self._reload.set()
        self.watcher.wake()

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)

    def _open_s3(self) -> None:
        settings = self.settings
        client = s3.make_client(settings)
        self.runtime = steps.Runtime(
            client=client,
            uploads=s3.Uploads(client, settings.upload_threads),
            bucket=settings.s3_bucket,
            check_etag=settings.s3_verify_etag,
            report=self._report,
        )
        if self.stop.is_set():
            self.runtime.stop.set()
        self.mapper = DaskMapper(settings)
        tasks.RUNTIME = self.runtime
        tasks.MAPPER = self.mapper

    def _close_s3(self) -> None:
        self.runtime.uploads.close()
        self.mapper.close()

    def run(self) -> int:
        """Upload until stopped (or, with ``once``, until nothing is left); the exit status."""
        settings = self.settings
        log_event(
            log,
            logging.INFO,
            "uploader_started",
            data_dir=str(self.root),
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint=settings.s3_endpoint_url or "aws",
            compression=settings.upload_compression,
            dask=settings.dask_scheduler or settings.dask_mode,
            once=self.once,
            pid=os.getpid(),
        )
        heartbeat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        heartbeat.start()
        self.notifier.ready(f"uploading to {settings.s3_bucket}")
        status = 0
        try:
            status = self._loop()
        finally:
            self.notifier.stopping()
            self.stop.set()
            heartbeat.join(timeout=5)
            self._publish_status(final=True)
            self.progress.close()
            self._close_s3()
            self.watcher.close()
            log_event(log, logging.INFO, "uploader_stopped", status=status, **self._totals())
        return status

    def _loop(self) -> int:
        first = True
        while not self.stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self._apply_reload()
            self._touch()
            due, waiting = self._scan(first)
            first = False
            if due:
                self._run_cycle(due)
                continue  # rescan at once: more may have been sealed meanwhile
            if self.once and not waiting:
                return 1 if self.gave_up else 0
            timeout = self.settings.upload_rescan_seconds
            if waiting:
                timeout = min(timeout, max(0.05, min(waiting) - time.monotonic()))
            self.watcher.wait(timeout)
        return 0 if not self.gave_up else 1

    # -- scanning ---------------------------------------------------------------------------

    def _scan(self, first: bool) -> tuple[list, list[float]]:
        """What is due now per data dir, and when the batches in backoff are due."""
        now = time.monotonic()
        data_dirs = discover_data_dirs(self.root)
        new_dirs = [d for d in data_dirs if d not in self._data_dirs]
        self._data_dirs = data_dirs
        self.watcher.watch_tree(data_dirs)
        due, waiting, total_pending = [], [], 0
        for data_dir in data_dirs:
            key = str(data_dir.root)
            if first or data_dir in new_dirs:
                self._prepare(data_dir)
            pending, touched = pending_batches(data_dir)
            self._mark_days(data_dir, pending, touched)
            with self._lock:
                counters = self.counters.setdefault(key, UploaderCounters())
                counters.pending = len(pending)
            total_pending += len(pending)
            ready = []
            for batch in pending:
                relpath = batch.name.relative_path
                state = self.retries.get((key, relpath))
                if (key, relpath) in self.gave_up:
                    continue
                if state is None or state.due(now):
                    ready.append((relpath, batch.size))
                else:
                    waiting.append(state.not_before)
            if ready:
                gateway_id = gateway_id_of(data_dir, self.settings.gateway_id)
                due.append((data_dir, gateway_id, ready))
        self.progress.backlog(total_pending)
        return due, waiting

    def _prepare(self, data_dir: DataDir) -> None:
        """First sight of a data dir: drop derived state of an earlier boot or stale chunks."""
        if UploadWorkspace(data_dir).forget_after_reboot(boot_id()):
            log_event(log, logging.INFO, "uploader_state_reset", data_dir=str(data_dir.root))
        removed = remove_unfinished_marks(data_dir)
        if removed:
            log_event(log, logging.INFO, "unfinished_marks_removed", count=removed)

    def _mark_days(self, data_dir: DataDir, pending, touched) -> None:
        try:
            marked, unmarked = update_day_marks(data_dir, pending, touched, time.time())
        except OSError as error:
            log_event(log, logging.WARNING, "day_mark_failed", error=str(error))
            return
        if marked:
            with self._lock:
                self.counters.setdefault(str(data_dir.root), UploaderCounters()).days_marked += len(
                    marked
                )

    # -- one cycle --------------------------------------------------------------------------

    def _run_cycle(self, due: list[tuple[DataDir, str, list[tuple[str, int]]]]) -> None:
        settings = self.settings
        marks = []
        for data_dir, gateway_id, relpaths in due:
            chunks = make_chunks(
                str(data_dir.root),
                gateway_id,
                relpaths,
                settings.upload_chunk_batches,
                settings.upload_chunk_bytes,
            )
            UploadWorkspace(data_dir).forget_other_chunks(
                {c.chunk_id(settings.s3_prefix, settings.upload_compression) for c in chunks}
            )
            for chunk in chunks:
                marks.append(
                    tasks.Mark(
                        data_dir=chunk.data_dir,
                        gateway_id=chunk.gateway_id,
                        batches=list(chunk.batches),
                        bucket=settings.s3_bucket,
                        prefix=settings.s3_prefix,
                        compression=settings.upload_compression,
                        part_bytes=settings.upload_multipart_bytes,
                        gzip_level=settings.upload_gzip_level,
                    )
                )
        self._attempted = {(str(d.root), r) for d, _, rs in due for r, _ in rs}
        self._succeeded: set[tuple[str, str]] = set()
        ok = self._run_pipelines(marks)
        for mark in marks:  # finished chunks are done with; crashed ones stay to resume
            if mark.output().exists():
                steps.workspace(mark.data_dir).forget_chunk(mark.chunk_id)
        if not ok and not self.stop.is_set():
            # A task error (not an upload failure): back off every batch it left undone.
            for key in self._attempted - self._succeeded:
                if self.retries.get(key) is None or self.retries[key].due(time.monotonic()):
                    self._record_failure(key[0], key[1], "a task of its chunk failed (see log)")

    def _run_pipelines(self, marks: list) -> bool:
        """Run the chunks' DAGs in a few threads, each its own Luigi build, so one chunk's
        processing (CPU) overlaps another's upload (network); Luigi's own parallel workers
        would fork a process per task."""
        lanes = [
            marks[i :: self.settings.upload_pipelines]
            for i in range(self.settings.upload_pipelines)
        ]
        lanes = [lane for lane in lanes if lane]
        if len(lanes) <= 1:
            return tasks.run_dag(marks, self.settings.luigi_scheduler_url)
        results = [False] * len(lanes)

        def run(index: int) -> None:
            try:
                results[index] = tasks.run_dag(lanes[index], self.settings.luigi_scheduler_url)
            except Exception as error:  # noqa: BLE001 (reported; its batches back off)
                log_event(log, logging.ERROR, "pipeline_failed", error=repr(error))

        threads = [
            threading.Thread(target=run, args=(i,), name=f"lane-{i}") for i in range(len(lanes))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return all(results)

    # -- events from the tasks --------------------------------------------------------------

    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    def _report(self, event: str, data_dir: str, batch: str, **fields) -> None:
        self._touch()
        if event == "sent":
            return
        if event == "already_there":
            with self._lock:
                self.counters.setdefault(data_dir, UploaderCounters()).already_there += 1
            log_event(log, logging.INFO, "object_already_there", batch=batch, key=fields["key"])
            return
        if event == "failed":
            self._record_failure(data_dir, batch, fields["error"], key=fields.get("key"))
            return
        if event in ("uploaded", "quarantined"):
            key = (data_dir, batch)
            self._succeeded.add(key)
            with self._lock:
                counters = self.counters.setdefault(data_dir, UploaderCounters())
                if event == "uploaded":
                    counters.uploaded += 1
                    counters.bytes += fields["bytes"]
                else:
                    counters.quarantined += 1
                if self.retries.pop(key, None) is not None:
                    counters.failed = max(0, counters.failed - 1)
                counters.pending = max(0, counters.pending - 1)
                self.last_success[data_dir] = {
                    "at": round(time.time(), 3),
                    "batch": batch,
                    "key": fields["key"],
                }
            self.progress.advance(fields["bytes"])
            log_event(
                log,
                self.progress.batch_log_level if event == "uploaded" else logging.WARNING,
                f"batch_{event}",
                batch=batch,
                key=fields["key"],
                bytes=fields["bytes"],
                reason=fields.get("reason"),
            )

    def _record_failure(self, data_dir: str, batch: str, error: str, key: str | None = None):
        state_key = (data_dir, batch)
        now = time.monotonic()
        backoff = Backoff(
            self.settings.upload_retry_base_seconds, self.settings.upload_retry_max_seconds
        )
        with self._lock:
            counters = self.counters.setdefault(data_dir, UploaderCounters())
            state = self.retries.get(state_key)
            if state is None:
                state = self.retries[state_key] = RetryState()
                counters.failed += 1
            state.failed(error, now, backoff, self._rng.random())
            counters.failures += 1
            self.last_error[data_dir] = {
                "at": round(time.time(), 3),
                "batch": batch,
                "key": key,
                "error": error,
                "attempts": state.attempts,
            }
            if self.once and state.attempts >= self.settings.upload_once_attempts:
                self.gave_up.add(state_key)
        log_event(
            log,
            logging.WARNING,
            "upload_failed",
            batch=batch,
            key=key,
            error=error,
            attempt=state.attempts,
            retry_in=round(state.not_before - now, 2),
        )

    # -- settings reload --------------------------------------------------------------------

    def _apply_reload(self) -> None:
        if self._reload_settings is None:
            return
        try:
            fresh = self._reload_settings()
        except ValueError as error:
            log_event(log, logging.ERROR, "settings_reload_failed", error=str(error))
            return
        if fresh.data_dir != self.settings.data_dir:
            log_event(log, logging.WARNING, "data_dir_needs_restart", data_dir=str(fresh.data_dir))
            fresh = fresh.replace(data_dir=self.settings.data_dir)
        changed = sorted(
            name for name, value in asdict(fresh).items() if value != getattr(self.settings, name)
        )
        self._close_s3()
        self.settings = fresh
        logging.getLogger().setLevel(fresh.log_level.upper())
        self._open_s3()
        self.retries.clear()  # new settings (credentials, bucket) deserve an immediate try
        with self._lock:
            for counters in self.counters.values():
                counters.failed = 0
        log_event(log, logging.INFO, "settings_reloaded", changed=",".join(changed) or "nothing")

    # -- status -----------------------------------------------------------------------------

    def _totals(self) -> dict:
        with self._lock:
            total = UploaderCounters()
            for counters in self.counters.values():
                for name, value in asdict(counters).items():
                    setattr(total, name, getattr(total, name) + value)
        return asdict(total)

    def status(self, data_dir: str, final: bool = False) -> dict:
        with self._lock:
            counters = asdict(self.counters.get(data_dir, UploaderCounters()))
            last_error = self.last_error.get(data_dir)
            last_success = self.last_success.get(data_dir)
        return {
            "service": "uploader",
            "pid": os.getpid(),
            "started_at": round(self._started_at, 3),
            "updated_at": round(time.time(), 3),
            "running": not final,
            "once": self.once,
            "bucket": self.settings.s3_bucket,
            "prefix": self.settings.s3_prefix,
            "endpoint": self.settings.s3_endpoint_url or "aws",
            "counters": counters,
            "last_error": last_error,
            "last_success": last_success,
            "data_dirs": len(self._data_dirs),
        }

    def _publish_status(self, final: bool = False) -> None:
        for data_dir in list(self._data_dirs):
            key = str(data_dir.root)
            publish_status(data_dir, "uploader", self.status(key, final))
        totals = self._totals()
        self.notifier.status(
            f"{totals['uploaded']} uploaded, {totals['pending']} pending, "
            f"{totals['failed']} failing"
        )

    def _heartbeat(self) -> None:
        next_status = 0.0
        while not self.stop.wait(0.5):
            now = time.monotonic()
            if now >= next_status:
                next_status = now + self.settings.status_seconds
                self._publish_status()
            self.progress.tick(now)
            if now - self._last_activity < STUCK_SECONDS:
                self.notifier.watchdog(now)
