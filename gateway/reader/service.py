"""The reader service: a thin shell that moves hand-off events into the intake, the store and
the stream, and keeps its state in two explicit machines (:mod:`gateway.core.reader_state`).

Two threads and a helper process. A small relay process (:mod:`gateway.reader.relay`) drains
the device into a pipe; :class:`PortReader` only reads that into a bounded :class:`Handoff`. This
loop (the main thread, where signals land) decodes, numbers and stores rows, seals batches by
size and age, fsyncs on schedule, publishes counters and pings the systemd watchdog. On
SIGTERM or SIGINT it stops the port thread, stores what was handed over, keeps the unfinished
line for the next start, seals the open batch and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from gateway.core.codec import Reason, Shape
from gateway.core.framing import TERMINATORS, LineFramer
from gateway.core.intake import (
    Accepted,
    CounterReset,
    CounterTracker,
    DeviceGap,
    FormatDetected,
    Intake,
    LineIntake,
    ShapeChanged,
    ShapeLearned,
)
from gateway.core.reader_state import (
    PortEvent,
    PortMachine,
    PortState,
    StorageEvent,
    StorageMachine,
)
from gateway.core.records import make_codec
from gateway.core.rejection_watch import Alert, Cleared, RejectionWatch
from gateway.logs import log_event
from gateway.notify import Notifier
from gateway.reader.cleanup_loop import CleanupLoop
from gateway.reader.clock import ClockWatch
from gateway.reader.counters import ReaderCounters, RecentEvents, reader_status
from gateway.reader.handoff import (
    Data,
    Handoff,
    HandoffEvent,
    Overflow,
    PortLost,
    PortOpened,
    coalesce,
)
from gateway.reader.port import open_port
from gateway.reader.portreader import PortReader
from gateway.reader.resume import leave_fragment, resume
from gateway.reader.sink import NullSink, StreamSink
from gateway.settings import Settings
from gateway.store.batchstore import BatchStore
from gateway.store.layout import DataDir
from gateway.store.ledgers import Identity, publish_status, write_identity

log = logging.getLogger("gateway.reader")

# The writer takes at most this much from the hand-off at a time (then decodes it in pieces).
TAKE_MAX_BYTES = 1 << 20


class ReaderService:
    """The reader's main loop. Its state is ``port_machine`` and ``storage_machine``; the rest
    is what it counts (``counters``, ``recent``) and the parts it drives."""

    def __init__(self, settings: Settings, sink: StreamSink | None = None) -> None:
        self.settings = settings
        self.stores_files = settings.mode in ("full", "local")
        self.sink = sink or NullSink()
        self.data_dir = DataDir(settings.data_dir)
        self.port_machine = PortMachine()
        self.storage_machine = StorageMachine(self.stores_files)
        self.counters = ReaderCounters()
        self.recent = RecentEvents()
        self.notifier = Notifier()
        self.handoff = Handoff(settings.queue_bytes)
        framer = LineFramer(TERMINATORS[settings.line_terminator], settings.max_line_bytes)
        codec = make_codec(
            settings.line_format,
            settings.field_count or None,
            numeric=settings.numeric_fields,
            sentence=settings.nmea_sentence,
            names=settings.field_names,
            delimiter=settings.delimiter,
        )
        self.intake = LineIntake(framer, codec, CounterTracker())
        self.rejections = RejectionWatch(settings.line_format)
        self.detected: FormatDetected | None = None  # what auto decided, for the status
        self.shape: Shape | None = None  # of the rows stored (or streamed) last
        self.store: BatchStore | None = None
        self.cleanup: CleanupLoop | None = None
        self.port_reader: PortReader | None = None
        self.clock = ClockWatch(self.data_dir if self.stores_files else None)
        self.next_seq = 0
        # Set by a signal handler, which may interrupt the loop anywhere: the loop reads it,
        # and only the loop changes the state machines.
        self._stop_requested = threading.Event()
        self._fragment = b""  # the unfinished line the last clean stop left, for the first open
        self._outage_began: PortLost | None = None  # while the port is lost
        self._started_at = time.time()
        self._next_status = 0.0

    # -- life cycle -------------------------------------------------------------------------

    def request_stop(self, signum: int | None = None, frame=None) -> None:
        """Stop at the loop's next turn. A signal handler: it sets a flag and never blocks."""
        self._stop_requested.set()
        self.handoff.wake()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        hang = threading.Event()
        if self.settings.test_hooks:
            signal.signal(signal.SIGUSR2, lambda signum, frame: hang.set())
        self.clock.start()
        self._start_store()
        settings = self.settings
        reader = PortReader(
            lambda: open_port(
                settings.port,
                baud=settings.baud,
                bytesize=settings.bytesize,
                parity=settings.parity,
                stopbits=settings.stopbits,
                flow_control=settings.flow_control,
            ),
            self.handoff,
            name=settings.port,
            max_backoff=settings.reconnect_max_seconds,
        )
        self.port_reader = reader
        reader.start()
        log_event(
            log,
            logging.INFO,
            "reader_started",
            port=settings.port,
            mode=settings.mode,
            format=settings.line_format,
            next_seq=self.next_seq,
            pid=os.getpid(),
        )
        self.notifier.ready(f"reading {settings.port}")
        try:
            while not self._stop_requested.is_set():
                if hang.is_set():
                    log_event(log, logging.WARNING, "test_hook_hanging_main_loop")
                    while True:  # no watchdog pings from here on; systemd must step in
                        time.sleep(3600)
                now = time.monotonic()
                taken = self.handoff.take(self._wait_seconds(now), TAKE_MAX_BYTES)
                for event in coalesce(taken):
                    self._dispatch(event)
                self._on_tick(time.monotonic())
        finally:
            self._shutdown(reader)
        return 0

    def _start_store(self) -> None:
        if not self.stores_files:
            return
        resumed = resume(self.settings, self.data_dir, clock_synced=self.clock.synced)
        self.store = resumed.store
        self.next_seq = resumed.store.next_seq
        self._fragment = resumed.fragment
        self.intake.tracker.last = resumed.last_device_counter
        self.cleanup = CleanupLoop(self.settings)
        self.cleanup.start()

    def _shutdown(self, reader: PortReader) -> None:
        self.notifier.stopping()
        self.clock.stop()
        if self.cleanup is not None:
            self.cleanup.stop()
        reader.stop()
        reader.join(timeout=5)
        # What the port thread handed over before it stopped, port events included, is
        # handled as in the loop; only then is the port closed for good, and lines held while
        # the shape was being learned are decided and stored: a clean stop loses nothing.
        for event in coalesce(self.handoff.take(0)):
            self._dispatch(event)
        self.port_machine.process(PortEvent.CLOSED)
        self._take(self.intake.flush(time.time()))
        now = time.monotonic()
        if self.store is not None:
            leave_fragment(self.data_dir, self.settings.port, self.intake.framer.take_pending())
            try:
                self.store.close(now)
            except OSError as error:
                log_event(log, logging.ERROR, "seal_at_stop_failed", error=str(error))
        self.port_machine.process(PortEvent.FINISHED)
        self._publish_status(now, force=True)  # before the sink closes: the site hears "stopped"
        self.sink.close()
        log_event(
            log,
            logging.INFO,
            "reader_stopped",
            next_seq=self.next_seq,
            rows_accepted=self.counters.rows_accepted,
        )

    # -- the loop ---------------------------------------------------------------------------

    def _wait_seconds(self, now: float) -> float:
        waits = [0.25, max(0.0, self._next_status - now)]
        if self.store is not None:
            due = self.store.seconds_until_due(now)
            if due is not None:
                waits.append(due)
        watchdog = self.notifier.seconds_until_watchdog(now)
        if watchdog is not None:
            waits.append(watchdog)
        return max(0.001, min(waits))

    def _on_tick(self, now: float) -> None:
        self._take(self.intake.release_overdue(time.time()))
        self._watch_rejections(now)
        self.clock.tick()
        if self.store is not None:
            try:
                self.store.tick(now)
            except OSError as error:
                self._store_failed(error, rows=0)
        self._publish_status(now)
        self.notifier.watchdog(now)

    def _dispatch(self, event: HandoffEvent) -> None:
        match event:
            case Data(at=at, data=data):
                self.counters.bytes_read += len(data)
                self._take(self.intake.feed(data, at))
            case PortOpened():
                self._port_opened(event)
            case PortLost():
                self._port_lost(event)
            case Overflow(dropped_bytes=dropped_bytes):
                # Totals are counted by the hand-off; here the stream has a hole, and the
                # next line may be the tail of one whose head was dropped.
                self.counters.partial_bytes_dropped += self.intake.stream_interrupted()
                log_event(
                    log,
                    logging.ERROR,
                    "handoff_overflow",
                    dropped_bytes=dropped_bytes,
                    queue_bytes=self.settings.queue_bytes,
                )
            case _:
                raise TypeError(f"not a hand-off event: {event!r}")

    def _port_opened(self, opened: PortOpened) -> None:
        change = self.port_machine.process(PortEvent.OPENED)
        if change.before is PortState.PORT_LOST:  # a reconnect: the outage ends
            self.counters.reconnects += 1
            self.intake.port_opened()
            outage = self.recent.add_outage(self._outage_began, back_at=opened.at)
            self._outage_began = None
            log_event(log, logging.WARNING, "port_back", port=opened.port, **outage)
        else:  # the first open: the line a clean stop left unfinished may continue here
            fragment, self._fragment = self._fragment, b""
            self.intake.port_opened(fragment)
            log_event(
                log,
                logging.INFO,
                "port_opened",
                port=opened.port,
                resumed_fragment_bytes=len(fragment),
            )

    def _port_lost(self, lost: PortLost) -> None:
        self.port_machine.process(PortEvent.LOST)
        self._outage_began = lost
        dropped = self.intake.port_lost()
        self.counters.partial_bytes_dropped += dropped
        self.counters.port_outages += 1
        log_event(
            log,
            logging.WARNING,
            "port_lost",
            port=self.settings.port,
            error=lost.error,
            partial_bytes_dropped=dropped,
        )

    def _take(self, intake: Intake) -> None:
        """Count, quarantine, store and stream what the intake completed."""
        counters = self.counters
        counters.lines_read += intake.accepted + len(intake.rejections)
        for event in intake.events:
            self._note(event)
        # A header line names columns: kept with the rejected lines (every byte the device
        # sent is kept), but it is no refusal.
        refused = [r for r in intake.rejections if r.reason is not Reason.HEADER]
        counters.header_lines += len(intake.rejections) - len(refused)
        if refused:
            counters.rows_rejected += len(refused)
            by_reason = counters.rejected_by_reason
            for rejection in refused:
                by_reason[rejection.reason] = by_reason.get(rejection.reason, 0) + 1
        if intake.rejections and self.store is not None:
            try:
                self.store.quarantine.add(intake.rejections)
            except OSError as error:
                self._store_failed(error, rows=0)
        self.rejections.observe(time.monotonic(), intake.accepted, refused)
        for index, run in enumerate(intake.runs):
            counters.rows_accepted += len(run.records)
            if self.store is not None:
                first_seq, stored = self._append(run)
            else:
                first_seq, stored = self.next_seq, len(run.records)
            if stored:
                self.next_seq = first_seq + stored
                self.shape = run.shape
                self.sink.publish(first_seq, run.records[:stored], run.received_at, run.shape)
            self._record_counter_events(intake, index, first_seq, stored, run.received_at)

    def _note(self, event) -> None:
        """Log what the intake learned about the stream (counter events go with their rows)."""
        match event:
            case FormatDetected():
                self.detected = event
                log_event(
                    log,
                    logging.INFO,
                    "format_detected",
                    format=event.format,
                    evidence=event.evidence,
                    lines=event.lines_examined,
                )
                if self.stores_files:  # audit and report read the rows by it
                    self._write_identity(event.format)
            case ShapeLearned(shape=shape, evidence=evidence):
                log_event(
                    log,
                    logging.INFO,
                    "shape_learned",
                    format=shape.format,
                    columns=",".join(shape.names),
                    evidence=evidence,
                )
            case ShapeChanged(old=old, new=new, evidence=evidence):
                log_event(
                    log,
                    logging.WARNING,
                    "shape_changed",
                    old_columns=",".join(old.names),
                    new_columns=",".join(new.names),
                    evidence=evidence,
                    hint="the device restarted or changed its output; a new batch begins",
                )

    def _write_identity(self, line_format: str) -> None:
        settings = self.settings
        try:
            write_identity(self.data_dir, Identity(settings.gateway_id, settings.port, line_format))
        except OSError as error:
            log_event(log, logging.WARNING, "identity_not_written", error=str(error))

    def _watch_rejections(self, now: float) -> None:
        match self.rejections.check(now):
            case Alert() as alert:
                log_event(
                    log,
                    logging.WARNING,
                    "lines_rejected_high",
                    share=f"{alert.share:.1%}",
                    rejected=alert.rejected,
                    lines=alert.lines,
                    window_s=alert.window_seconds,
                    reasons=",".join(f"{reason}:{count}" for reason, count in alert.top_reasons),
                    format=self.settings.line_format,
                    hint=alert.hint,
                )
            case Cleared() as cleared:
                log_event(
                    log,
                    logging.INFO,
                    "lines_rejected_normal",
                    share=f"{cleared.share:.1%}",
                    lasted_s=round(cleared.lasted_seconds, 1),
                )

    def _append(self, run: Accepted) -> tuple[int, int]:
        """Store a run; return the seq of its first row and how many rows were stored."""
        store = self.store
        records = run.records
        if self.cleanup is not None and self.cleanup.stop_accepting:
            change = self.storage_machine.process(StorageEvent.DISK_LIMIT_REACHED)
            self.counters.rows_refused_full += len(records)
            if change.changed:  # storing stops now: say so once, not for every refused row
                log_event(
                    log,
                    logging.ERROR,
                    "storing_stopped_disk_limit",
                    on_full=self.settings.on_full,
                    next_seq=store.next_seq,
                    hint="upload or free space; see gateway cleanup --dry-run",
                )
            return store.next_seq, 0
        if self.storage_machine.process(StorageEvent.DISK_LIMIT_CLEARED).changed:
            log_event(
                log,
                logging.WARNING,
                "storing_resumed",
                next_seq=store.next_seq,
                rows_refused_full=self.counters.rows_refused_full,
            )
        now = time.monotonic()
        first_seq = store.next_seq
        try:
            store.use_columns(run.shape.names, now)  # a new shape seals the open batch
            store.append(records, run.received_at, now)
        except OSError as error:
            stored = store.next_seq - first_seq
            self._store_failed(error, rows=len(records) - stored)
            return first_seq, stored
        if self.storage_machine.process(StorageEvent.ROWS_STORED).changed:  # after failures
            log_event(log, logging.WARNING, "store_recovered", next_seq=store.next_seq)
        return first_seq, len(records)

    def _store_failed(self, error: OSError, rows: int) -> None:
        change = self.storage_machine.process(StorageEvent.WRITE_FAILED)
        self.counters.store_errors += 1
        self.counters.rows_not_stored += rows
        if change.changed:  # the first failed write since one worked: say so once
            if self.cleanup is not None:
                self.cleanup.check_now()  # the disk may be full: free what the policy allows
            log_event(
                log,
                logging.ERROR,
                "store_failed",
                error=str(error),
                rows_lost=rows,
                next_seq=self.store.next_seq if self.store else None,
            )

    def _record_counter_events(
        self, intake: Intake, run: int, first_seq: int, stored: int, at: float
    ) -> None:
        for event in intake.events:
            if not isinstance(event, DeviceGap | CounterReset) or event.run != run:
                continue
            seq = first_seq + event.index if event.index < stored else None
            match event:
                case DeviceGap():
                    self.counters.device_gaps += 1
                    self.counters.device_lines_lost += event.missing
                    gap = self.recent.add_gap(event, seq, at)
                    log_event(log, logging.WARNING, "device_gap", **gap)
                case CounterReset():
                    self.counters.counter_resets += 1
                    log_event(
                        log,
                        logging.WARNING,
                        "device_counter_reset",
                        seq=seq,
                        last=event.last,
                        first=event.first,
                    )

    # -- status -----------------------------------------------------------------------------

    def status(self) -> dict:
        return reader_status(
            self.settings,
            self.counters,
            self.recent,
            started_at=self._started_at,
            running=not self._stop_requested.is_set(),
            port_state=self.port_machine.state,
            storage_state=self.storage_machine.state,
            next_seq=self.next_seq,
            handoff=self.handoff,
            port_reader=self.port_reader,
            store=self.store,
            cleanup=self.cleanup,
            stream=self.sink.counters(),
            detected=self.detected,
            shape=self.shape,
            rejection_alert=self.rejections.active,
            clock=self.clock.status(),
        )

    def _publish_status(self, now: float, force: bool = False) -> None:
        if now < self._next_status and not force:
            return
        self._next_status = now + self.settings.status_seconds
        status = self.status()
        if force:
            status["running"] = False
        self.sink.publish_status(status)
        c = self.counters
        self.notifier.status(
            f"seq {self.next_seq}, {c.rows_accepted} accepted, {c.rows_rejected} rejected, "
            f"{c.reconnects} reconnects"
        )
        if self.stores_files:
            publish_status(self.data_dir, "reader", status)
