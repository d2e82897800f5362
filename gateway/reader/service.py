"""The reader service: a thin shell that moves hand-off events into the intake, the store and
the stream, and keeps its state in two explicit machines (:mod:`gateway.core.reader_state`).

Two threads and a helper process. A small relay process (:mod:`gateway.reader.relay`) drains
the device into a pipe; :class:`PortReader` only reads that into a bounded :class:`Handoff`. This
loop (the main thread, where signals land) decodes, numbers and stores rows, seals batches by
size and age, fsyncs on schedule, publishes counters and pings the systemd watchdog. On
SIGTERM or SIGINT it stops the port thread, stores what was handed over, keeps the unfinished
line for the next start, seals the open batch and exits 0.

A disk fault never ends it. Full, read-only or failing, the disk refuses a write: the reader
keeps reading the port, counts what it cannot store by cause (:mod:`gateway.reader.not_stored`
logs and records each episode), tries no row until a probe write every ``PROBE_SECONDS`` goes
through, then stores again. The same holds at start: recovery of the data dir waits for the
disk, and the rows read meanwhile are counted.
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
from gateway.core.not_stored import HINTS, Cause, cause_of, record_counters
from gateway.core.reader_state import (
    DISK_REFUSING,
    PortEvent,
    PortMachine,
    PortState,
    StorageEvent,
    StorageMachine,
    StorageState,
)
from gateway.core.records import leading_counter, make_codec
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
from gateway.reader.not_stored import DiskFault, NotStoredBook
from gateway.reader.port import open_port
from gateway.reader.portreader import PortReader
from gateway.reader.resume import Found, leave_fragment, look, resume, take_start_fragment
from gateway.reader.sink import NullSink, StreamSink
from gateway.settings import Settings
from gateway.store.batchstore import BatchStore
from gateway.store.layout import DataDir
from gateway.store.ledgers import Identity, publish_status, write_identity
from gateway.store.probe import probe_writable

log = logging.getLogger("gateway.reader")

# The writer takes at most this much from the hand-off at a time (then decodes it in pieces).
TAKE_MAX_BYTES = 1 << 20
#: While the disk refuses writes, a probe write this often (a statvfs first): storing resumes
#: within about this long of the disk taking writes again.
PROBE_SECONDS = 0.5


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
        self.not_stored = NotStoredBook(
            self.data_dir if self.stores_files else None, self.counters.not_stored_by_cause
        )
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
        self.found: Found | None = None  # what the data dir said at start (read only)
        self.fault: DiskFault | None = None  # while the storage machine is in DISK_REFUSING
        self._next_probe = 0.0
        self._overflow_at: float | None = None  # an overflow whose device gap is still to come
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
            gather_seconds=self._gather_seconds(),
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
            storage=self.storage_machine.state.name,
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
        self._look()
        self._fragment = take_start_fragment(self.data_dir, self.settings.port)
        self.cleanup = CleanupLoop(self.settings)
        self.cleanup.start()
        self._recover(time.monotonic())

    def _look(self) -> bool:
        """Read what the data dir says (the seq to continue at, the newest device counter)."""
        try:
            self.found = look(self.settings, self.data_dir)
        except OSError as error:
            self._disk_refused(error, time.monotonic())
            return False
        self.next_seq = self.found.next_seq
        if self.intake.tracker.last is None:
            self.intake.tracker.last = self.found.last_device_counter
        return True

    def _recover(self, now: float) -> None:
        """Recover the data dir and record this run; on a disk that refuses, wait (RECOVERING)
        and count rows until a probe goes through."""
        if self.found is None and not self._look():
            return
        detected = self.detected.format if self.detected is not None else None
        try:
            resumed = resume(
                self.settings,
                self.data_dir,
                self.found,
                self._started_at,
                line_format=detected,
                clock_synced=self.clock.synced,
            )
        except OSError as error:
            self._disk_refused(error, now)
            return
        self.store = resumed.store
        self.next_seq = resumed.store.next_seq
        self.storage_machine.process(StorageEvent.RECOVERED)
        self._disk_took_writes("recovered_late")

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
        if self.stores_files:
            leave_fragment(self.data_dir, self.settings.port, self.intake.framer.take_pending())
        if self.store is not None:
            try:
                self.store.close(now)
            except OSError as error:
                log_event(
                    log,
                    logging.ERROR,
                    "seal_at_stop_failed",
                    error=str(error),
                    hint="the next start seals the open batch (recovery)",
                )
        self.not_stored.end_all(time.time())
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
        if self.storage_machine.state in DISK_REFUSING:
            waits.append(max(0.0, self._next_probe - now))
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
        refusing = self.storage_machine.state in DISK_REFUSING
        if refusing and now >= self._next_probe:
            self._probe(now)
            refusing = self.storage_machine.state in DISK_REFUSING
        if self.store is not None and not refusing:
            self._follow_disk_limit()
            try:
                self.store.tick(now)
            except OSError as error:
                self._disk_refused(error, now)
        self.not_stored.tick(time.time(), writable=not refusing)
        self._publish_status(now)
        self.notifier.watchdog(now)
        if self.port_reader is not None:
            self.port_reader.gather(self._gather_seconds())

    def _gather_seconds(self) -> float:
        """How long the port gathers a trickle: longer while nobody draws the rows at once."""
        settings = self.settings
        return settings.gather_seconds if self.sink.watched else settings.gather_unwatched_seconds

    def _dispatch(self, event: HandoffEvent) -> None:
        match event:
            case Data(at=at, data=data):
                self.counters.bytes_read += len(data)
                self._take(self.intake.feed(data, at))
            case PortOpened():
                self._port_opened(event)
            case PortLost():
                self._port_lost(event)
            case Overflow(at=at, dropped_bytes=dropped_bytes):
                # Totals are counted by the hand-off; here the stream has a hole, and the
                # next line may be the tail of one whose head was dropped. The next device
                # gap is the overflow's: the book records it with the bytes.
                self.counters.partial_bytes_dropped += self.intake.stream_interrupted()
                self.not_stored.count_bytes(Cause.HANDOFF_OVERFLOW, dropped_bytes, at)
                self._overflow_at = at
                log_event(
                    log,
                    logging.ERROR,
                    "handoff_overflow",
                    dropped_bytes=dropped_bytes,
                    queue_bytes=self.settings.queue_bytes,
                    hint=HINTS[Cause.HANDOFF_OVERFLOW],
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
            self.sink.port_outage(outage["seconds"])  # the live view breaks its line there
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
        if intake.rejections and self.stores_files:
            self._quarantine(intake.rejections)
        self.rejections.observe(time.monotonic(), intake.accepted, refused)
        for index, run in enumerate(intake.runs):
            counters.rows_accepted += len(run.records)
            if self.stores_files:
                first_seq, stored = self._append(run)
            else:
                first_seq, stored = self.next_seq, len(run.records)
            if stored:
                self.next_seq = first_seq + stored
                self.shape = run.shape
                gaps = [
                    (event.index, event.missing)
                    for event in intake.events
                    if isinstance(event, DeviceGap) and event.run == index and event.index < stored
                ]
                self.sink.publish(first_seq, run.records[:stored], run.received_at, run.shape, gaps)
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
                if self.store is not None:  # audit and report read the rows by it
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
        """Store a run; return the seq of its first row and how many rows were stored. Rows
        not stored are counted by cause, with their device counters."""
        if self.storage_machine.state is StorageState.RECOVERING:
            self._not_stored(self.fault.cause, run, 0)
            return self.next_seq, 0
        match self._follow_disk_limit():
            case StorageState.REFUSING | StorageState.REFUSING_AND_FAILING:
                self._not_stored(Cause.DISK_LIMIT, run, 0)
                return self.store.next_seq, 0
            case StorageState.FAILING:
                self._not_stored(self.fault.cause, run, 0)
                return self.store.next_seq, 0
        store = self.store
        now = time.monotonic()
        first_seq = store.next_seq
        try:
            store.use_columns(run.shape.names, now)  # a new shape seals the open batch
            store.append(run.records, run.received_at, now)
        except OSError as error:
            stored = store.next_seq - first_seq
            self._disk_refused(error, now)
            self._not_stored(self.fault.cause, run, stored)
            return first_seq, stored
        self.storage_machine.process(StorageEvent.ROWS_STORED)
        return first_seq, len(run.records)

    def _follow_disk_limit(self) -> StorageState:
        """Tell the storage machine what cleanup last found; log a change. The state after."""
        limit = self.cleanup is not None and self.cleanup.stop_accepting
        event = StorageEvent.DISK_LIMIT_REACHED if limit else StorageEvent.DISK_LIMIT_CLEARED
        change = self.storage_machine.process(event)
        if not change.changed:
            return change.after
        if limit:  # storing stops now: say so once, not for every refused row
            log_event(
                log,
                logging.ERROR,
                "storing_stopped_disk_limit",
                on_full=self.settings.on_full,
                next_seq=self.store.next_seq,
                hint=HINTS[Cause.DISK_LIMIT],
            )
        else:
            episode = self.not_stored.end(Cause.DISK_LIMIT, time.time())
            log_event(
                log,
                logging.WARNING,
                "storing_resumed" if change.after is StorageState.STORING else "disk_limit_cleared",
                next_seq=self.store.next_seq,
                rows_refused_full=self.counters.rows_refused_full,
                rows_refused=episode.rows if episode else 0,
                state=change.after.name,
            )
        return change.after

    def _not_stored(self, cause: Cause, run: Accepted, stored: int) -> None:
        """Count the rows of ``run`` from ``stored`` on as not stored for ``cause``."""
        records = run.records[stored:] if stored else run.records
        if not records:
            return
        if cause is Cause.DISK_LIMIT:
            self.counters.rows_refused_full += len(records)
        else:
            self.counters.rows_not_stored += len(records)
        index = run.shape.counter_field
        self.not_stored.count_rows(
            cause,
            len(records),
            record_counters(records, index) if index is not None else None,
            self._next_seq_known(),
            run.received_at or time.time(),
            self.fault.error if self.fault and cause is self.fault.cause else "",
        )

    def _quarantine(self, rejections: list) -> None:
        """Keep rejected lines; those the quarantine cannot keep are counted, with why."""
        if self.storage_machine.state in DISK_REFUSING:
            self._rejected_not_kept(rejections, f"{self.fault.cause}: {self.fault.error}")
            return
        try:
            kept = self.store.quarantine.add(rejections)
        except OSError as error:
            self._disk_refused(error, time.monotonic())
            self._rejected_not_kept(rejections, f"{self.fault.cause}: {error}")
            return
        if not kept:
            budget = self.store.quarantine.max_day_bytes
            self._rejected_not_kept(rejections, f"the day's budget of {budget} bytes is spent")

    def _rejected_not_kept(self, rejections: list, why: str) -> None:
        line_format = self.detected.format if self.detected else self.settings.line_format
        counters = [leading_counter(line_format, r.line) for r in rejections]
        self.not_stored.count_rows(
            Cause.REJECTED_NOT_KEPT,
            len(rejections),
            [c for c in counters if c is not None],
            self._next_seq_known(),
            rejections[-1].received_at or time.time(),
            why,
        )

    def _next_seq_known(self) -> int | None:
        """The seq the next stored row will get; None while the data dir could not be read."""
        if self.store is not None:
            return self.store.next_seq
        return self.next_seq if self.found is not None else None

    # -- disk faults ------------------------------------------------------------------------

    def _disk_refused(self, error: OSError, now: float) -> None:
        """A write (or recovery) failed: stop writing, count rows by the cause, probe."""
        cause = cause_of(error)
        change = self.storage_machine.process(StorageEvent.WRITE_FAILED)
        self.counters.store_errors += 1
        self._next_probe = now + PROBE_SECONDS
        if self.fault is not None and self.fault.cause is cause and not change.changed:
            return  # nothing new to say
        wall = time.time()
        if self.fault is not None and self.fault.cause is not cause:
            self.not_stored.end(self.fault.cause, wall)
        self.fault = DiskFault(cause, str(error), wall)
        self.not_stored.episode(cause, wall, str(error))
        if self.cleanup is not None:
            self.cleanup.check_now()  # the disk may be full: free what the policy allows
        recovering = self.storage_machine.state is StorageState.RECOVERING
        log_event(
            log,
            logging.ERROR,
            "recovery_waits" if recovering else "store_failed",
            cause=cause,
            error=str(error),
            next_seq=self.store.next_seq if self.store is not None else self.next_seq,
            leftover_parts=self.found.leftover_parts if recovering and self.found else None,
            probe_s=PROBE_SECONDS,
            hint=HINTS[cause],
        )

    def _probe(self, now: float) -> None:
        """While the disk refuses: does it take a write now? Then recover, or store again."""
        self._next_probe = now + PROBE_SECONDS
        try:
            probe_writable(self.data_dir)
        except OSError as error:
            if cause_of(error) is not self.fault.cause:  # e.g. full, then read-only
                self._disk_refused(error, now)
            return
        if self.storage_machine.state is StorageState.RECOVERING:
            self._recover(now)
            return
        self.storage_machine.process(StorageEvent.DISK_WRITABLE)
        self._disk_took_writes("store_recovered")

    def _disk_took_writes(self, event: str) -> None:
        """The fault is over: end its episode, say how long it lasted and what it cost."""
        fault, self.fault = self.fault, None
        if fault is None:
            return
        wall = time.time()
        episode = self.not_stored.end(fault.cause, wall)
        if self.cleanup is not None and self.cleanup.stop_accepting:
            self.cleanup.check_now()  # the limit too may have cleared with the space
        self.not_stored.write_pending(wall)
        if self.detected is not None:  # what auto found while the disk refused
            self._write_identity(self.detected.format)
        log_event(
            log,
            logging.WARNING,
            event,
            cause=fault.cause,
            lasted_s=round(wall - fault.since, 3),
            rows_not_stored=episode.rows if episode else 0,
            next_seq=self.store.next_seq if self.store is not None else self.next_seq,
            state=self.storage_machine.state.name,
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
                    if self._overflow_at is not None:  # the overflow's hole, not the wire's
                        self._overflow_at = None
                        gap["cause"] = str(Cause.HANDOFF_OVERFLOW)
                        self.not_stored.count_span(
                            Cause.HANDOFF_OVERFLOW,
                            event.after + 1,
                            event.after + event.missing,
                            seq if seq is not None else first_seq + stored,
                            event.missing,
                            at,
                        )
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
            fault=self.fault,
            book=self.not_stored,
            stream=self.sink.counters(),
            detected=self.detected,
            shape=self.shape,
            rejection_alert=self.rejections.active,
            clock=self.clock.status(),
        )

    def _not_storing_note(self) -> str:
        """For ``systemctl status``: what it shows first when rows are not stored."""
        state = self.storage_machine.state
        if state in (StorageState.STORING, StorageState.NOT_STORING):
            return ""
        if self.fault is None:
            return f"NOT STORING ({state.name}), "
        since = time.strftime("%H:%M:%S", time.localtime(self.fault.since))
        return f"NOT STORING ({state.name}: {self.fault.cause} since {since}), "

    def _publish_status(self, now: float, force: bool = False) -> None:
        if now < self._next_status and not force:
            return
        self._next_status = now + self.settings.status_seconds
        status = self.status()
        if force:
            status["running"] = False
        self.sink.publish_status(status)
        c = self.counters
        port_error = status.get("port_error")
        port_note = f"PORT NOT OPEN ({port_error['errno'] or 'error'}), " if port_error else ""
        self.notifier.status(
            f"{port_note}{self._not_storing_note()}seq {self.next_seq}, {c.rows_accepted} "
            f"accepted, {c.rows_rejected} rejected, {c.reconnects} reconnects"
        )
        if self.stores_files:
            publish_status(self.data_dir, "reader", status)
