"""The uploader service: scan, run the DAG over what is pending, mark days, wait, repeat.

The main thread runs the loop, and the Luigi builds in a thread per pipeline; signals only set
flags and wake the wait. The steps report what happens to each batch as events, which the
service turns into retries (``retries.py``), counters (``tally.py``) and log lines. A
heartbeat thread publishes the uploader's status (per data dir) and pings the systemd watchdog
while the loop makes progress.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from gateway.core.backoff import Backoff
from gateway.core.upload_plan import make_chunks
from gateway.core.verification import StoreCapabilities
from gateway.logs import log_event
from gateway.notify import Notifier
from gateway.settings import Settings
from gateway.store.inventory import pending_batches
from gateway.store.layout import QUARANTINE, DataDir, discover_data_dirs
from gateway.store.ledgers import gateway_id_of, publish_status
from gateway.store.marks import remove_unfinished_marks, update_day_marks
from gateway.store.quarantine import RejectionFile, rejections_to_upload
from gateway.store.watch import Watcher
from gateway.store.workspace import UploadWorkspace, boot_id
from gateway.uploader import tasks
from gateway.uploader.events import AlreadyThere, Event, Failed, Quarantined, Sent, Uploaded
from gateway.uploader.memory import return_freed_memory
from gateway.uploader.probe import ProbeFailed, StoreReport, probe_store
from gateway.uploader.progress import Progress
from gateway.uploader.rejected import RejectedUploadFailed, upload_rejected
from gateway.uploader.retries import BatchRef, Retries
from gateway.uploader.runtime import TaskRuntime, verify_policy
from gateway.uploader.tally import Tally

log = logging.getLogger("gateway.uploader")

STUCK_SECONDS = 300.0  # no progress for this long: stop pinging the watchdog


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
        self.tally = Tally()
        self.retries = Retries(*self._retry_policy())
        self._succeeded: set[BatchRef] = set()  # this cycle's batches that went all the way
        self._started_at = time.time()
        self._last_activity = time.monotonic()
        self._data_dirs: list[DataDir] = []
        # What the store supports: None until the probe succeeds (nothing is uploaded before),
        # probed at start and after each reload, and again while work waits for it.
        self.store: StoreReport | None = None
        self._probe_soon = True
        self._probe_error = ""
        self.watcher = Watcher(self.root)
        self.progress = Progress(
            bar=sys.stderr.isatty(),
            interval=settings.upload_progress_seconds,
        )
        self._open_runtime()

    # -- life cycle -------------------------------------------------------------------------

    def request_stop(self, signum=None, frame=None) -> None:
        self.stop.set()  # the tasks' runtime shares this flag
        self.watcher.wake()

    def request_reload(self, signum=None, frame=None) -> None:
        self._reload.set()
        self.watcher.wake()

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)

    def _open_runtime(self) -> None:
        """S3 and Dask for the current settings, bound to the tasks until closed."""
        capabilities = self.store.capabilities if self.store else StoreCapabilities()
        self.runtime = TaskRuntime.open(
            self.settings, capabilities, stop=self.stop, emit=self._on_event
        )
        self._unbind = tasks.bind(self.runtime)

    def _close_runtime(self) -> None:
        self._unbind()
        self.runtime.close()

    def _retry_policy(self) -> tuple[Backoff, int | None]:
        """How long a failed batch waits, and after how many attempts ``--once`` gives up."""
        settings = self.settings
        backoff = Backoff(settings.upload_retry_base_seconds, settings.upload_retry_max_seconds)
        return backoff, settings.upload_once_attempts if self.once else None

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
            self._close_runtime()
            self.watcher.close()
            log_event(log, logging.INFO, "uploader_stopped", status=status, **self.tally.totals())
        return status

    def _loop(self) -> int:
        first = True
        trimmed = True
        while not self.stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self._apply_reload()
            self._touch()
            probed_now = self._probe_soon and self.store is None
            if probed_now:  # at start and after a reload, whether or not there is work
                self._probe_soon = False
                self._probe_store()
            due, waiting = self._scan(first)
            first = False
            rejected, rejected_waiting = self._scan_rejected()
            waiting += rejected_waiting
            unprobed = self.store is None
            if (due or rejected) and unprobed and (probed_now or not self._probe_store()):
                self._fail_unprobed(due, rejected)
                continue  # what failed now waits: the next scan says until when
            if rejected:
                self._upload_rejected(rejected)
                waiting += self._scan_rejected()[1]  # what failed just now waits too
            if due:
                self._run_cycle(due)
                trimmed = False
                continue  # rescan at once: more may have been sealed meanwhile
            if self.once and not waiting:
                return 1 if self.retries.any_given_up else 0
            if not trimmed:  # idle until the next batch: the cycle's heap goes back
                return_freed_memory()
                trimmed = True
            timeout = self.settings.upload_rescan_seconds
            if waiting:
                timeout = min(timeout, max(0.05, min(waiting) - time.monotonic()))
            self.watcher.wait(timeout)
        return 1 if self.retries.any_given_up else 0

    # -- the store ------------------------------------------------------------------------

    def _probe_store(self) -> bool:
        """Find what the store supports and rebuild the runtime to rely on it; whether that
        worked. Nothing is uploaded before: how an object is verified depends on it."""
        try:
            report = probe_store(self.settings)
        except ProbeFailed as error:
            self._probe_error = str(error)
            log_event(log, logging.WARNING, "s3_probe_failed", error=self._probe_error)
            return False
        self.store = report
        self._close_runtime()
        self._open_runtime()
        fields = self._store_fields()
        level = logging.WARNING if "unverifiable" in fields else logging.INFO
        log_event(log, level, "s3_capabilities", **fields)
        return True

    def _fail_unprobed(self, due, rejected: list[tuple[DataDir, RejectionFile]]) -> None:
        """The store could not be probed: each batch and file due fails with the reason (a
        missing bucket, wrong credentials, no answer) and backs off like any failure."""
        for data_dir, _, relpaths in due:
            for relpath, _ in relpaths:
                self._record_failure(str(data_dir.root), relpath, self._probe_error)
        for data_dir, file in rejected:
            self._record_failure(
                str(data_dir.root), f"{QUARANTINE}/{file.relpath}", self._probe_error
            )

    def _store_fields(self) -> dict:
        """What the probe found and how objects will be verified: the log line's fields and
        the status document's ``s3``."""
        store = self.store
        if store is None:
            return {}
        fields = store.as_dict()
        del fields["probed"]
        summary = verify_policy(self.settings, store.capabilities).summary()
        if summary["unverifiable"] is None:
            del summary["unverifiable"]
        return fields | summary

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
            self.tally.scanned(key, len(pending))
            total_pending += len(pending)
            ready = []
            for batch in pending:
                relpath = batch.name.relative_path
                if self.retries.given_up((key, relpath)):
                    continue
                not_before = self.retries.not_before((key, relpath))
                if now >= not_before:
                    ready.append((relpath, batch.size))
                else:
                    waiting.append(not_before)
            if ready:
                gateway_id = gateway_id_of(data_dir, self.settings.gateway_id)
                due.append((data_dir, gateway_id, ready))
        self.progress.backlog(total_pending)
        return due, waiting

    def _scan_rejected(self) -> tuple[list[tuple[DataDir, RejectionFile]], list[float]]:
        """Files of rejected lines due for upload now, and when those in backoff are due."""
        now = time.monotonic()
        due, waiting = [], []
        for data_dir in self._data_dirs:
            for file in rejections_to_upload(data_dir):
                key = (str(data_dir.root), f"{QUARANTINE}/{file.relpath}")
                if self.retries.given_up(key):
                    continue
                not_before = self.retries.not_before(key)
                if now >= not_before:
                    due.append((data_dir, file))
                else:
                    waiting.append(not_before)
        return due, waiting

    def _upload_rejected(self, due: list[tuple[DataDir, RejectionFile]]) -> None:
        """Rejected lines go up one file at a time (they are small), each verified, then
        marked; a failure backs off that file as it would a batch."""
        settings = self.settings
        for data_dir, file in due:
            if self.stop.is_set():
                return
            name = f"{QUARANTINE}/{file.relpath}"
            gateway_id = gateway_id_of(data_dir, settings.gateway_id)
            try:
                done = upload_rejected(
                    self.runtime.client,
                    settings.s3_bucket,
                    settings.s3_prefix,
                    gateway_id,
                    data_dir,
                    file,
                    gzip_level=settings.upload_gzip_level,
                    policy=self.runtime.policy,
                )
            except (RejectedUploadFailed, OSError) as error:
                self._record_failure(str(data_dir.root), name, str(error))
                continue
            self._touch()
            was_failing = self.retries.succeeded((str(data_dir.root), name))
            self.tally.rejected_uploaded(str(data_dir.root), done.size, was_failing)
            log_event(
                log,
                logging.INFO,
                "rejected_lines_uploaded",
                file=name,
                key=done.key,
                bytes=done.size,
                already_there=done.already_there,
            )

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
            self.tally.days_marked(str(data_dir.root), len(marked))

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
            chunk_marks = [tasks.mark_task(chunk, settings) for chunk in chunks]
            UploadWorkspace(data_dir).forget_other_chunks({mark.chunk_id for mark in chunk_marks})
            marks += chunk_marks
        attempted = {(str(d.root), r) for d, _, rs in due for r, _ in rs}
        self._succeeded = set()
        ok = tasks.run_pipelines(marks, settings.upload_pipelines, settings.luigi_scheduler_url)
        tasks.forget_finished(marks)
        self.runtime.copies.clear()  # a failed chunk's: it is processed again
        if not ok and not self.stop.is_set():
            # A task error (not an upload failure): back off every batch it left undone.
            for data_dir, batch in attempted - self._succeeded:
                if self.retries.not_before((data_dir, batch)) <= time.monotonic():
                    self._record_failure(data_dir, batch, "a task of its chunk failed (see log)")

    # -- events from the tasks --------------------------------------------------------------

    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    def _on_event(self, event: Event) -> None:
        """What a step reports, from a pipeline's thread."""
        self._touch()
        match event:
            case Sent():
                pass  # progress, which _touch has noted
            case AlreadyThere(data_dir, batch, key):
                self.tally.already_there(data_dir)
                log_event(log, logging.INFO, "object_already_there", batch=batch, key=key)
            case Failed(data_dir, batch, key, error):
                self._record_failure(data_dir, batch, error, key=key)
            case Uploaded(data_dir, batch, key, size):
                self._record_done(event)
                log_event(
                    log,
                    self.progress.batch_log_level,
                    "batch_uploaded",
                    batch=batch,
                    key=key,
                    bytes=size,
                )
            case Quarantined(data_dir, batch, key, size, reason):
                self._record_done(event)
                log_event(
                    log,
                    logging.WARNING,
                    "batch_quarantined",
                    batch=batch,
                    key=key,
                    bytes=size,
                    reason=reason,
                )

    def _record_done(self, event: Uploaded | Quarantined) -> None:
        batch = (event.data_dir, event.batch)
        self._succeeded.add(batch)
        self.tally.done(event, was_failing=self.retries.succeeded(batch))
        self.progress.advance(event.size)

    def _record_failure(self, data_dir: str, batch: str, error: str, key: str | None = None):
        now = time.monotonic()
        state, first = self.retries.failed((data_dir, batch), error, now)
        self.tally.failed(data_dir, batch, key, error, state.attempts, first=first)
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
        self._close_runtime()
        self.settings = fresh
        logging.getLogger().setLevel(fresh.log_level.upper())
        # The endpoint, bucket or credentials may have changed: probe the store again.
        self.store, self._probe_soon = None, True
        self._open_runtime()
        # New settings (credentials, bucket) deserve an immediate try.
        self.retries.retry_now(*self._retry_policy())
        self.tally.no_batch_failing()
        log_event(log, logging.INFO, "settings_reloaded", changed=",".join(changed) or "nothing")

    # -- status -----------------------------------------------------------------------------

    def _publish_status(self, final: bool = False) -> None:
        for data_dir in list(self._data_dirs):
            document = self.tally.document(
                str(data_dir.root),
                settings=self.settings,
                once=self.once,
                started_at=self._started_at,
                running=not final,
                data_dirs=len(self._data_dirs),
                store=self._store_fields() or None,
            )
            publish_status(data_dir, "uploader", document)
        totals = self.tally.totals()
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
