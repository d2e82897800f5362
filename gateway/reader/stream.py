"""The live stream: a :class:`StreamSink` that sends decimated frames to the site's ingest socket.

``publish`` runs in the reader's writing loop: it appends to a bounded queue under a lock and
returns (when the queue holds more than ``GATEWAY_STREAM_QUEUE_ROWS`` rows the oldest publish
is dropped and counted). Everything else (parsing floats, min/max decimation, JSON, the
network) happens in this module's own threads, so a slow or absent site never slows serial
reading:

* the *stream* thread builds frames as soon as the reader publishes rows, at most
  ``GATEWAY_STREAM_FRAME_RATE`` times a second, whether or not the site is reachable (a frame
  waits for no timer, and a quiet stream wakes nobody); frames wait in a second bounded queue
  (drop-oldest, counted) and this thread sends them, with the status every
  ``GATEWAY_STREAM_HEARTBEAT_SECONDS``, while a connection is up;
* the *stream-connect* thread connects (retrying forever with jittered exponential backoff; a
  refusal that needs an operator, such as a wrong or revoked token, waits the longest delay),
  says hello, hands the connection to the stream thread and reads it until it closes, so a
  close from the site is noticed and logged at once, with its code.

Both are plain threads on websockets' synchronous client: no event loop turns three times per
frame. StreamClient alone at 8 channels x 1 kHz, against a plain websockets server: 1.8-2.1 %
of a core this way, 2.6-2.7 % on an asyncio loop in its own thread (as before); and the reader
no longer imports asyncio (1.5 MiB).
The protocol is docs/stream-protocol.md.
"""

from __future__ import annotations

import collections
import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import websockets
from websockets.sync.client import connect

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
CLOSE_SECONDS = 1.0  # at stop: how long the site gets to answer the close
WELCOME_SECONDS = 5.0  # after hello: how long frames wait for the site's welcome


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
        self._wake = threading.Event()  # rows came (when armed), a connection came, or stop
        self._stopping = threading.Event()
        self._reader_status: dict | None = None
        self._decimator = Decimator(Drawing(1, 2), settings.stream_points_per_second)
        self._frames: collections.deque = collections.deque()
        self._stats = collections.Counter()
        self._socket = None  # the open connection, once hello went out (stream-connect's)
        # Whether anyone watches: the site says so ("watch" messages); one that does not, or
        # a new connection, counts as watched. Unwatched, publish() only counts the rows.
        self._watched = True
        # Frames as binary messages once this connection's site offers them (its welcome's
        # "frame_encodings"): the numbers' JSON was the costliest part of a frame.
        self._binary_frames = False
        self._connected = False
        self._last_error = ""
        self._last_close_code: int | None = None
        self._thread = threading.Thread(target=self._run, name="stream", daemon=True)
        self._connector = threading.Thread(
            target=self._connection_loop, name="stream-connect", daemon=True
        )
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
        if not self._watched:  # nobody would see the frames: the rows are in the batches
            self._stats["rows_unwatched"] += len(records)
            return
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
        if wake:  # at most once per frame, never a wait
            self._wake.set()

    def port_outage(self, seconds: float) -> None:
        if not self._watched:
            return
        with self._lock:
            self._pending.append((0, (), 0.0, None, (), seconds))
            wake, self._armed = self._armed, False
        if wake:  # the outage is drawn as soon as it is known, like rows
            self._wake.set()

    def publish_status(self, status: dict) -> None:
        self._reader_status = status  # replaced, never queued

    @property
    def watched(self) -> bool:
        """False once the site said no live view is open (until one opens)."""
        return self._watched

    def counters(self) -> dict:
        stats = self._stats
        return {
            "url": self.url,
            "connected": self._connected,
            "connects": stats["connects"],
            "connect_failures": stats["connect_failures"],
            "watched": self._watched,
            "frame_encoding": "binary" if self._binary_frames else "json",
            "rows_in": self._decimator.samples_in,
            "rows_unwatched": stats["rows_unwatched"],
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
        self._connector.start()
        return self

    def close(self, timeout: float = 3.0) -> None:
        """Send what is ready (briefly), close the socket, end the threads."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._connector.is_alive():  # it may be in the middle of a connect: not for long
            self._connector.join(CLOSE_SECONDS)

    # -- the stream thread: frames and heartbeats --------------------------------------------

    def _run(self) -> None:
        """Frames as soon as rows come, at most ``stream_frame_rate`` a second, rather than on
        a timer that a read then waited for (up to a frame period). Rows that come sooner than
        a period after the last frame wait for the rest of it; rows that come later (the
        relay's 50 ms gathers against 40 ms frames) go out at once, one wake-up each.

        Serial to viewer at 8 channels x 1 kHz (bench/web, from each line's write to the PTY to
        its frame at a viewer): p50 27.3, p99 51.9, max 57.6 ms, against 37.4, 68.3, 77.1 with
        the 30 ms gather and a period's sleep after every frame (before, frames waited for the
        sleep: rows came every 30 ms, frames every 40)."""
        period = 1.0 / self.settings.stream_frame_rate
        heartbeat = self.settings.stream_heartbeat_seconds
        next_status = 0.0
        next_frame = 0.0  # frames no sooner than this (the frame rate)
        while True:
            self._wake.clear()
            with self._lock:
                wait = self._armed = not self._pending
            stopping = self._stopping.is_set()
            if wait and not stopping:
                socket = self._socket
                if socket is None or self._status_due:
                    timeout = None if socket is None else 0.0
                else:
                    timeout = max(0.0, next_status - time.monotonic())
                self._wake.wait(timeout)
                stopping = self._stopping.is_set()
            # Rows that came sooner than a frame period after the last frame wait for the rest
            # of it. Only then: a sleep after every frame would cost a second wake-up per frame
            # whenever rows come less often than the frame rate (the relay gathers 50 ms).
            early = next_frame - time.monotonic()
            if early > 0 and not stopping and self._pending:
                stopping = self._stopping.wait(early)
            if self._pending:
                next_frame = time.monotonic() + period
            self._build_frames()
            socket = self._socket
            if socket is not None:
                now = time.monotonic()
                if self._status_due or stopping or now >= next_status:
                    self._status_due = False
                    next_status = now + heartbeat
                    self._send(socket, _json(self._status_message()))
                    self._stats["status_sent"] += 1
                while self._frames and self._socket is socket:
                    frame, sent_at = self._frames[0], time.time()
                    payload = self._binary_frames and frame.as_binary(sent_at)
                    if not self._send(socket, payload or _json(frame.as_message(sent_at))):
                        break  # kept for the next connection
                    self._frames.popleft()
                    self._stats["frames_sent"] += 1
            if stopping:
                if socket is not None:
                    socket.close()  # stream-connect's read ends; it sees the stop and returns
                return

    def _send(self, socket, payload: str | bytes) -> bool:
        """Send a text (JSON) or binary message on ``socket``; False if it closed
        (stream-connect notices and reconnects)."""
        try:
            socket.send(payload)
        except websockets.ConnectionClosed:
            with self._lock:
                if self._socket is socket:
                    self._socket = None
            return False
        self._stats["bytes_sent"] += len(payload)
        return True

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

    # -- the stream-connect thread ---------------------------------------------------------

    def _connection_loop(self) -> None:
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
                with connect(
                    self.url,
                    additional_headers=headers,
                    open_timeout=10,
                    ping_interval=10,
                    ping_timeout=10,
                    close_timeout=CLOSE_SECONDS,
                    max_size=1 << 20,
                    user_agent_header="fieldgate-gateway",
                    proxy=None,
                ) as socket:
                    self._session(socket)
            except websockets.ConnectionClosed as closed:
                if self._stopping.is_set():
                    return  # the stream thread closed it at stop
                close_code = closed.rcvd.code if closed.rcvd else None
                reason = closed.rcvd.reason if closed.rcvd else ""
                self._note_failure(f"closed {close_code} {reason}".strip(), close_code)
            except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as e:
                self._note_failure(f"{type(e).__name__}: {e}", None)
            except Exception as error:  # whatever it was, the stream keeps trying
                self._note_failure(f"unexpected {error!r}", None)
                log.exception("stream_session_failed")
            finally:
                with self._lock:
                    self._socket = None
                self._connected = False
            if self._stopping.is_set():
                return
            if delays is None or time.monotonic() - started > STABLE_SECONDS:
                cap = settings.stream_reconnect_max_seconds
                delays = Backoff(min(1.0, cap), cap, Jitter.EQUAL).delays(self.rng.random)
            delay = next(delays)
            if close_code in CLOSE_CODES_NEEDING_AN_OPERATOR:
                delay = settings.stream_reconnect_max_seconds * (0.5 + self.rng.random() / 2)
            self._stopping.wait(delay)

    def _note_failure(self, error: str, close_code: int | None) -> None:
        self._stats["connect_failures"] += 1
        self._last_close_code = close_code
        if error != self._last_error:  # log a change, not every retry
            log_event(log, logging.WARNING, "stream_unavailable", url=self.url, error=error)
        self._last_error = error

    def _session(self, socket) -> None:
        """Say hello, hand the socket to the stream thread, read until it closes (raising the
        ConnectionClosed that ended it, with the site's code)."""
        if self._stopping.is_set():
            return  # connected after the stop: nobody would send on it
        self._connected = True
        self._stats["connects"] += 1
        log_event(log, logging.INFO, "stream_connected", url=self.url)
        self._last_error = ""
        text = _json(self._hello())
        socket.send(text)
        self._stats["bytes_sent"] += len(text)
        self._status_due = True
        self._watched = True  # until this site says otherwise
        self._binary_frames = False  # until its welcome offers them
        try:  # the welcome says which frame encodings this site reads: frames wait for it
            self._site_message(socket.recv(timeout=WELCOME_SECONDS))
        except TimeoutError:
            log_event(
                log,
                logging.WARNING,
                "stream_no_welcome",
                url=self.url,
                seconds=WELCOME_SECONDS,
                note="the site did not welcome this gateway in time: frames go as JSON",
            )
        with self._lock:
            self._socket = socket
        self._wake.set()
        while True:
            self._site_message(socket.recv())

    def _site_message(self, text) -> None:
        """The site's welcome (binary frames if it offers them), and "watch" when nobody has
        watched this gateway for a while (frames pause) or someone starts to (they resume
        with the next rows)."""
        try:
            message = json.loads(text)
        except (TypeError, ValueError):
            message = None
        if isinstance(message, dict) and message.get("type") == "welcome":
            encodings = message.get("frame_encodings")
            self._binary_frames = isinstance(encodings, list) and "binary" in encodings
            log_event(
                log,
                logging.INFO,
                "stream_welcome",
                frame_encoding="binary" if self._binary_frames else "json",
            )
            return
        watched = message.get("watched") if isinstance(message, dict) else None
        if message is None or message.get("type") != "watch" or type(watched) is not bool:
            log_event(log, logging.DEBUG, "stream_message", text=str(text)[:200])
            return
        if watched == self._watched:
            return
        self._watched = watched
        if watched:
            log_event(log, logging.INFO, "stream_watched", note="a viewer is back: frames resume")
            self._wake.set()
        else:
            log_event(
                log,
                logging.INFO,
                "stream_unwatched",
                note="no viewer: frames pause until one opens the live view; rows are stored "
                "and the status heartbeat goes on",
            )

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

    def _status_message(self) -> dict:
        settings = self.settings
        now = time.monotonic()
        samples = self._decimator.samples_in + self._stats["rows_unwatched"]
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
            status.update(self._disk_and_uploads(now))
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
