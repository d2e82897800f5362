"""The live stream: a :class:`StreamSink` that sends decimated frames to the site's ingest socket.

``publish`` runs in the reader's writing loop: it appends to a bounded queue under a lock and
returns (when the queue holds more than ``GATEWAY_STREAM_QUEUE_ROWS`` rows the oldest publish
is dropped and counted). Everything else (parsing floats, min/max decimation, JSON, the
network) happens in this module's own thread, on its own event loop, so a slow or absent site
never slows serial reading.

The thread builds frames as soon as the reader publishes rows, at most
``GATEWAY_STREAM_FRAME_RATE`` times a second, whether or not the site is reachable (a frame
waits for no timer, and a quiet stream wakes nobody); frames wait in a second bounded queue
(drop-oldest, counted) and go out as soon as a connection is up. Connecting retries forever
with jittered exponential backoff; a refusal that needs an operator (wrong or revoked token,
unknown gateway) waits the longest delay. The protocol is docs/stream-protocol.md.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import websockets
from websockets.asyncio.client import connect

from gateway.core.backoff import Backoff, Jitter
from gateway.core.codec import Shape
from gateway.core.decimate import Decimator, Drawing
from gateway.core.stream_protocol import CLOSE_CODES_NEEDING_AN_OPERATOR, PROTOCOL_VERSION
from gateway.logs import log_event
from gateway.reader.sink import streams
from gateway.settings import Settings

log = logging.getLogger("gateway.stream")

INVENTORY_SECONDS = 30.0  # walking the batch dir for the upload backlog is not free on a Pi
STABLE_SECONDS = 30.0  # a connection that lasted this long resets the backoff


def _json(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


class StreamClient:
    """Call :meth:`start` once; then the reader's ``publish*`` calls; :meth:`close` at the end."""

    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.url = settings.stream_url
        self.rng = rng or random.Random()
        self._lock = threading.Lock()
        # (first_seq, records, received_at, shape, gaps, None) per publish, or
        # (0, (), 0.0, None, (), seconds) where the port was away.
        self._pending: collections.deque[tuple] = collections.deque()
        self._shape: Shape | None = None  # of the rows streamed last (the channels' names)
        self._pending_rows = 0
        self._armed = False  # the stream thread waits for rows: publish() must wake it
        self._published: asyncio.Event | None = None
        self._reader_status: dict | None = None
        self._decimator = Decimator(Drawing(1, 2), settings.stream_points_per_second)
        self._frames: collections.deque = collections.deque()
        self._stats = collections.Counter()
        self._connected = False
        self._last_error = ""
        self._last_close_code: int | None = None
        self._thread = threading.Thread(target=self._run, name="stream", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._started = threading.Event()
        self._status_due = True
        self._heartbeat_rate: tuple[float, int] | None = None
        self._backlog: dict | None = None
        self._backlog_at = float("-inf")

    # -- the StreamSink protocol (reader's thread) -----------------------------------------

    def publish(
        self,
        first_seq: int,
        records: Sequence[bytes],
        received_at: float,
        shape: Shape,
        gaps: Sequence[tuple[int, int]] = (),
    ) -> None:
        with self._lock:
            self._pending.append((first_seq, records, received_at, shape, gaps, None))
            self._pending_rows += len(records)
            while self._pending_rows > self.settings.stream_queue_rows and len(self._pending) > 1:
                # A publish dropped is a hole in seq, which the viewer shows as a gap itself;
                # an outage waiting in the queue is kept (it has no rows).
                oldest = next(i for i, entry in enumerate(self._pending) if entry[5] is None)
                if oldest == len(self._pending) - 1:
                    break  # only the newest rows are left
                dropped = self._pending[oldest]
                del self._pending[oldest]
                self._pending_rows -= len(dropped[1])
                self._stats["rows_dropped"] += len(dropped[1])
                lost = sum(missing for _, missing in dropped[4])
                if lost:  # the device gap in them still reaches the viewer, with the next rows
                    # (there are some: the publish just appended is the newest entry)
                    following = next(
                        i for i in range(oldest, len(self._pending)) if self._pending[i][5] is None
                    )
                    entry = self._pending[following]
                    self._pending[following] = (*entry[:4], [(0, lost), *entry[4]], None)
            wake, self._armed = self._armed, False
        if wake:  # at most once per frame: a write to the loop's wake-up pipe, never a wait
            self._signal_rows()

    def port_outage(self, seconds: float) -> None:
        with self._lock:
            self._pending.append((0, (), 0.0, None, (), seconds))
            wake, self._armed = self._armed, False
        if wake:  # the outage is drawn as soon as it is known, like rows
            self._signal_rows()

    def _signal_rows(self) -> None:
        """Wake the stream thread's tick loop (it waits for rows when there were none)."""
        try:
            self._loop.call_soon_threadsafe(self._published.set)
        except RuntimeError:
            pass  # the loop already ended

    def publish_status(self, status: dict) -> None:
        self._reader_status = status  # replaced, never queued

    def counters(self) -> dict:
        stats = self._stats
        return {
            "url": self.url,
            "connected": self._connected,
            "connects": stats["connects"],
            "connect_failures": stats["connect_failures"],
            "rows_in": self._decimator.samples_in,
            "rows_unparsed": self._decimator.unparsed,
            "rows_dropped": stats["rows_dropped"],
            "frames_built": stats["frames_built"],
            "frames_sent": stats["frames_sent"],
            "frames_dropped": stats["frames_dropped"],
            "bytes_sent": stats["bytes_sent"],
            "status_sent": stats["status_sent"],
            "last_error": self._last_error,
            "last_close_code": self._last_close_code,
        }

    def start(self) -> StreamClient:
        self._thread.start()
        self._started.wait(10)
        return self

    def close(self, timeout: float = 3.0) -> None:
        """Send what is ready (briefly), close the socket, end the thread."""
        if self._loop is not None and self._stopping is not None:
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:
                pass  # the loop already ended
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the stream thread ------------------------------------------------------------------

    def _run(self) -> None:
        # The standard library's loop: at 25 messages a second uvloop saves no CPU that could be
        # measured here (StreamClient alone, 8 ch x 1 kHz: 2.20-2.40 % of a core with it,
        # 2.40-2.49 % without), and costs the reader 2.3 MiB.
        with asyncio.Runner() as runner:
            runner.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._published = asyncio.Event()
        self._started.set()
        ticker = asyncio.create_task(self._tick_loop())
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        connection = asyncio.create_task(self._connection_loop())
        await self._stopping.wait()
        ticker.cancel()
        heartbeat.cancel()
        self._build_frames()  # what the reader published last
        self._wake.set()
        try:
            await asyncio.wait_for(connection, timeout=1.5)
        except (TimeoutError, asyncio.CancelledError):
            pass
        except Exception as error:  # the thread must end quietly whatever happened
            log_event(log, logging.WARNING, "stream_stop_error", error=repr(error))

    async def _tick_loop(self) -> None:
        """Frames as soon as rows come, at most ``stream_frame_rate`` a second, rather than on
        a timer that a read then waited for (up to a frame period). Read to viewer at 8
        channels x 1 kHz (bench/web's serial_to_viewer, 2 runs): p99 44-46 ms, max 47-56,
        against 48, 72-80 on the timer."""
        period = 1.0 / self.settings.stream_frame_rate
        while True:
            with self._lock:
                wait = self._armed = not self._pending
            if wait:
                await self._published.wait()
                self._published.clear()
            self._build_frames()
            self._wake.set()
            await asyncio.sleep(period)

    async def _heartbeat_loop(self) -> None:
        while True:
            self._status_due = True
            self._wake.set()
            await asyncio.sleep(self.settings.stream_heartbeat_seconds)

    def _build_frames(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, collections.deque()
            self._pending_rows = 0
        decimator = self._decimator
        for first_seq, records, received_at, shape, gaps, outage_seconds in pending:
            if outage_seconds is not None:
                decimator.port_outage(outage_seconds)
                continue
            if shape != self._shape:
                self._shape = shape
                decimator.draw(Drawing.of(shape))
            decimator.add(first_seq, records, received_at, gaps)
        limit = self.settings.stream_queue_frames
        for frame in decimator.take_frames():
            self._stats["frames_built"] += 1
            if len(self._frames) >= limit:
                self._frames.popleft()
                self._stats["frames_dropped"] += 1
            self._frames.append(frame)

    async def _connection_loop(self) -> None:
        settings = self.settings
        delays = None
        headers = {
            "Authorization": f"Bearer {settings.stream_token}",
            "X-Fieldgate-Gateway": settings.gateway_id,
        }
        while not self._stopping.is_set():
            started = time.monotonic()
            close_code = None
            try:
                async with connect(
                    self.url,
                    additional_headers=headers,
                    open_timeout=10,
                    ping_interval=10,
                    ping_timeout=10,
                    close_timeout=1,
                    max_size=1 << 20,
                    user_agent_header="fieldgate-gateway",
                    proxy=None,
                ) as socket:
                    await self._session(socket)
                    return  # stopping
            except websockets.ConnectionClosed as closed:
                close_code = closed.rcvd.code if closed.rcvd else None
                reason = closed.rcvd.reason if closed.rcvd else ""
                self._note_failure(f"closed {close_code} {reason}".strip(), close_code)
            except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as e:
                self._note_failure(f"{type(e).__name__}: {e}", None)
            except Exception as error:  # whatever it was, the stream keeps trying
                self._note_failure(f"unexpected {error!r}", None)
                log.exception("stream_session_failed")
            finally:
                self._connected = False
            if self._stopping.is_set():
                return
            if delays is None or time.monotonic() - started > STABLE_SECONDS:
                cap = settings.stream_reconnect_max_seconds
                delays = Backoff(min(1.0, cap), cap, Jitter.EQUAL).delays(self.rng.random)
            delay = next(delays)
            if close_code in CLOSE_CODES_NEEDING_AN_OPERATOR:
                delay = settings.stream_reconnect_max_seconds * (0.5 + self.rng.random() / 2)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except TimeoutError:
                pass

    def _note_failure(self, error: str, close_code: int | None) -> None:
        self._stats["connect_failures"] += 1
        self._last_close_code = close_code
        if error != self._last_error:  # log a change, not every retry
            log_event(log, logging.WARNING, "stream_unavailable", url=self.url, error=error)
        self._last_error = error

    async def _session(self, socket) -> None:
        self._connected = True
        self._stats["connects"] += 1
        log_event(log, logging.INFO, "stream_connected", url=self.url)
        self._last_error = ""
        await self._send(socket, self._hello())
        self._status_due = True
        incoming = asyncio.create_task(self._read_incoming(socket))
        # The socket closing wakes the loop as a new frame does: one waiter, not a new task
        # and an asyncio.wait per frame (a third of this thread's time at 25 frames a second).
        incoming.add_done_callback(lambda _: self._wake.set())
        try:
            while True:
                self._wake.clear()
                stopping = self._stopping.is_set()
                if self._status_due or stopping:
                    self._status_due = False
                    await self._send(socket, await self._status_message())
                    self._stats["status_sent"] += 1
                while self._frames:
                    frame = self._frames.popleft()
                    await self._send(socket, frame.as_message(time.time()))
                    self._stats["frames_sent"] += 1
                if stopping:
                    await socket.close()
                    return
                if incoming.done():
                    incoming.result()  # raises the ConnectionClosed that ended it
                await self._wake.wait()
        finally:
            incoming.cancel()

    async def _send(self, socket, message: dict) -> None:
        text = _json(message)
        self._stats["bytes_sent"] += len(text)
        await socket.send(text)

    async def _read_incoming(self, socket) -> None:
        """Read until the socket closes; ends by raising its ConnectionClosed (with the code)."""
        while True:
            text = await socket.recv()  # the site's welcome; nothing else is expected
            log_event(log, logging.DEBUG, "stream_message", text=str(text)[:200])

    def _hello(self) -> dict:
        return {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "gateway": self.settings.gateway_id,
            # What the rows are, once known (auto has decided); else what was configured.
            "format": self._shape.format if self._shape else self.settings.line_format,
            "frame_rate": self.settings.stream_frame_rate,
            "points_per_second": self.settings.stream_points_per_second,
        }

    async def _status_message(self) -> dict:
        settings = self.settings
        now = time.monotonic()
        samples = self._decimator.samples_in
        rate = None
        if self._heartbeat_rate is not None:
            then, before = self._heartbeat_rate
            if now > then:
                rate = round((samples - before) / (now - then), 1)
        self._heartbeat_rate = (now, samples)
        status = {
            "reader": self._reader_status,
            "stream": self.counters(),
            "sample_rate": rate,
            "channels": self._channel_names(),
            "disk_free": None,
            "disk_total": None,
            "upload_backlog": None,
            "uploader": None,
        }
        if settings.mode == "full":
            status.update(await asyncio.to_thread(self._disk_and_uploads, now))
        return {"type": "status", "at": round(time.time(), 3), "status": status}

    def _channel_names(self) -> list[str] | None:
        shape = self._shape
        if shape is None:
            return None
        return Drawing.of(shape).channel_names(shape) or None

    def _disk_and_uploads(self, now: float) -> dict:
        """Disk space, the upload backlog (its inventory at most every INVENTORY_SECONDS, its
        age at each status) and the uploader's outcome from the status it publishes."""
        from gateway.store.inventory import disk_space, take_inventory
        from gateway.store.layout import DataDir
        from gateway.store.ledgers import read_status

        data_dir = DataDir(Path(self.settings.data_dir))
        found: dict = {"upload_backlog": self._backlog_now()}
        try:
            found["disk_free"], found["disk_total"] = disk_space(data_dir.root)[:2]
            if now - self._backlog_at >= INVENTORY_SECONDS:
                self._backlog_at = now
                inventory = take_inventory(data_dir)
                self._backlog = {
                    "batches": inventory.pending_batches,
                    "bytes": inventory.pending_bytes,
                    "oldest_at": inventory.oldest_pending_at,
                }
                found["upload_backlog"] = self._backlog_now()
            found["uploader"] = uploader_outcome(read_status(data_dir, "uploader"), time.time())
        except OSError as error:
            log_event(log, logging.WARNING, "stream_inventory_failed", error=str(error))
        return found

    def _backlog_now(self) -> dict | None:
        if self._backlog is None:
            return None
        oldest = self._backlog["oldest_at"]
        age = max(0.0, round(time.time() - oldest, 1)) if oldest else 0.0
        return {**self._backlog, "age_seconds": age}


def uploader_outcome(document: dict | None, now: float) -> dict | None:
    """What the site shows of the uploader's published status (``uploader/tally.py``'s keys):
    whether it runs, how old its status is, batches failing, its last error and success."""
    if document is None:
        return None
    error = document.get("last_error")
    success = document.get("last_success")
    return {
        "running": bool(document.get("running")),
        "once": bool(document.get("once")),  # `uploader --once` from a timer: exits between runs
        "age_seconds": round(max(0.0, now - document.get("updated_at", 0.0)), 1),
        "failing": (document.get("counters") or {}).get("failed", 0),
        "last_error": {
            "at": error.get("at"),
            "error": str(error.get("error", ""))[:300],
            "attempts": error.get("attempts"),
        }
        if error
        else None,
        "last_success_at": success.get("at") if success else None,
    }


def make_sink(settings: Settings):
    """The reader's sink: a started :class:`StreamClient` in modes full and demo when
    ``GATEWAY_STREAM_URL`` is set, else ``None`` (the reader's default streams nothing)."""
    if streams(settings.mode, settings.stream_url):
        return StreamClient(settings).start()
    return None
