"""Viewer sockets: the live frames of one gateway, and the fleet's status updates.

A viewer that falls behind gets the newest data. Group messages are never awaited on the
network: the handler puts them in a small per-viewer outbox (drop-oldest, counted) and returns,
so the channel layer's inbox stays empty. A sender task moves the outbox to the socket while
the viewer has fewer than ``VIEWER_WINDOW`` messages unacknowledged; the browser acknowledges
every ``VIEWER_ACK_EVERY`` messages. So what a stalled viewer can cost the server is bounded
(window + outbox), whichever ASGI server runs it, and every frame it misses is counted:
``dropped`` (held back, replaced by newer) and ``lost_upstream`` (numbering gaps, i.e. the
channel layer dropped them before this consumer saw them).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from gateway.core import stream_protocol as protocol
from gateway.logs import log_event
from web.consumers import StreamConsumer
from web.fleet import counters
from web.fleet import status as fleet
from web.live import local

log = logging.getLogger("web.live")

VIEWER_MAX_MESSAGE_BYTES = 1024  # security limit: viewers only send acks


class BoundedSender(StreamConsumer):
    """A websocket consumer whose outgoing messages go through the window and the outbox."""

    async def start_sender(self) -> None:
        config = settings.FIELDGATE
        self.window = config["VIEWER_WINDOW"]
        self.ack_every = config["VIEWER_ACK_EVERY"]
        # Frames as the gateway sent them: JSON text, or binary (docs/stream-protocol.md).
        self.outbox: collections.deque[str | bytes] = collections.deque(
            maxlen=config["VIEWER_PENDING"]
        )
        self.latest_status: str | None = None  # status is replaced, never queued
        self.sent = 0  # messages sent (frames, status, notices)
        self.acked = 0
        self.frames_sent = 0
        self.dropped = 0
        self.dropped_reported = 0
        self.lost_upstream = 0
        self.wake = asyncio.Event()
        self.sender = asyncio.create_task(self._send_loop())

    def enqueue(self, text: str | bytes) -> None:
        """Queue a frame; if the outbox is full the oldest waiting one is dropped (counted)."""
        if len(self.outbox) == self.outbox.maxlen:
            self.dropped += 1
            counters.COUNTERS.add(counters.DROPPED)
        self.outbox.append(text)
        self.wake.set()

    def enqueue_status(self, text: str) -> None:
        self.latest_status = text
        self.wake.set()

    async def _send_loop(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.sent - self.acked < self.window:
                if self.latest_status is not None:
                    text, self.latest_status = self.latest_status, None
                elif self.dropped != self.dropped_reported:
                    self.dropped_reported = self.dropped
                    text = json.dumps(
                        {
                            "type": "dropped",
                            "frames": self.dropped,
                            "lost_upstream": self.lost_upstream,
                        }
                    )
                elif self.outbox:
                    text = self.outbox.popleft()
                    self.frames_sent += 1
                else:
                    break
                self.sent += 1
                if isinstance(text, bytes):
                    await self.send(bytes_data=text)
                else:
                    await self.send(text_data=text)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        # Bounded before parsing: an ack is a few dozen bytes and one level deep.
        text = text_data or ""
        if len(text) > VIEWER_MAX_MESSAGE_BYTES or bytes_data is not None:
            size = len(text.encode()) if bytes_data is None else len(bytes_data)
            await self.reject(
                protocol.CLOSE_TOO_LARGE,
                f"message of {size} bytes exceeds {VIEWER_MAX_MESSAGE_BYTES}"
                if bytes_data is None
                else "binary messages are not part of the protocol",
            )
            return
        if protocol.nesting_depth_exceeds(text, 2):
            await self.reject(protocol.CLOSE_MALFORMED, 'expected {"type": "ack"}')
            return
        try:
            message = json.loads(text)
            received = int(message["received"]) if message.get("type") == "ack" else None
        except (ValueError, TypeError, KeyError, AttributeError):
            received = None
        if received is None:
            await self.reject(protocol.CLOSE_MALFORMED, 'expected {"type": "ack"}')
            return
        if self.acked < received <= self.sent:
            self.acked = received
            self.wake.set()

    async def reject(self, code: int, reason: str) -> None:
        counters.COUNTERS.add(counters.VIEWER_REJECTED)
        log_event(
            log, logging.WARNING, "viewer_rejected", path=self.scope.get("path"), reason=reason
        )
        await self.close(code=code, reason=reason)

    async def stop_sender(self) -> None:
        sender = getattr(self, "sender", None)
        if sender is not None:
            sender.cancel()
            try:
                await sender
            except (asyncio.CancelledError, Exception):
                pass  # the socket is gone; nothing left to send to

    def hello_message(self, **extra) -> str:
        return json.dumps(
            {"type": "hello", "window": self.window, "ack_every": self.ack_every, **extra}
        )


class ViewerConsumer(BoundedSender):
    """``/ws/live/<gateway>/``: one gateway's frames and status, for a logged-in person."""

    group: str | None = None
    watching: asyncio.Task | None = None

    async def connect(self) -> None:
        await self.accept()
        if not self.scope["user"].is_authenticated:
            await self.close(code=protocol.CLOSE_NOT_LOGGED_IN, reason="log in to view")
            return
        name = self.scope["url_route"]["kwargs"]["name"]
        summary = await database_sync_to_async(fleet.gateway_for_viewer)(name)
        if summary is None:
            await self.close(code=protocol.CLOSE_UNKNOWN_GATEWAY, reason="unknown gateway")
            return
        self.name = name
        self.connection = None
        self.last_number = 0
        await self.start_sender()
        self.group = fleet.live_group(name)
        await self.channel_layer.group_add(self.group, self.channel_name)
        if local.enabled():
            local.VIEWERS[name].add(self)
        self.sent += 1
        await self.send(text_data=self.hello_message(gateway=summary))
        counters.COUNTERS.add(counters.VIEWERS)
        self.watching = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        """Tell the gateway's ingest socket, wherever it is (any worker), that this view is
        open: now, so paused frames resume at once, and every WATCH_SECONDS after."""
        group = fleet.ingest_group(self.name)
        every = settings.FIELDGATE["WATCH_SECONDS"]
        while True:
            try:
                await self.channel_layer.group_send(group, {"type": "ingest.watched"})
            except Exception as error:  # the layer is away (Redis): /healthz says so
                log_event(
                    log, logging.WARNING, "viewer_watch_failed", gateway=self.name, error=str(error)
                )
            await asyncio.sleep(every)

    async def disconnect(self, code) -> None:
        await self.stop_sender()
        if self.group is None:
            return
        if self.watching is not None:
            self.watching.cancel()
        await self.channel_layer.group_discard(self.group, self.channel_name)
        local.VIEWERS[self.name].discard(self)
        log_event(
            log,
            logging.INFO,
            "viewer_closed",
            gateway=self.name,
            frames_sent=self.frames_sent,
            dropped=self.dropped,
            lost_upstream=self.lost_upstream,
        )

    async def live_frame(self, event: dict) -> None:
        """A frame through the channel layer (several workers, or a test)."""
        frame = event["text"] if "text" in event else event["bytes"]
        self.deliver_frame(event["connection"], event["n"], frame)

    def deliver_frame(self, connection: str, number: int, text: str | bytes) -> None:
        if connection != self.connection:
            self.connection = connection
        elif number > self.last_number + 1:
            missed = number - self.last_number - 1
            self.lost_upstream += missed
            self.dropped += missed
            counters.COUNTERS.add(counters.LOST_UPSTREAM, missed)
        self.last_number = number
        self.enqueue(text)

    async def live_status(self, event: dict) -> None:
        self.enqueue_status(json.dumps({**event, "type": "status"}))

    async def live_hello(self, event: dict) -> None:
        self.enqueue_status(json.dumps({**event, "type": "stream"}))


class FleetConsumer(BoundedSender):
    """``/ws/fleet/``: every gateway's row as it changes."""

    joined = False

    async def connect(self) -> None:
        await self.accept()
        if not self.scope["user"].is_authenticated:
            await self.close(code=protocol.CLOSE_NOT_LOGGED_IN, reason="log in to view")
            return
        await self.start_sender()
        self.rows: dict[str, dict] = {}
        await self.channel_layer.group_add(fleet.FLEET_GROUP, self.channel_name)
        self.joined = True
        self.sent += 1
        await self.send(text_data=self.hello_message())

    async def disconnect(self, code) -> None:
        await self.stop_sender()
        if self.joined:
            await self.channel_layer.group_discard(fleet.FLEET_GROUP, self.channel_name)

    async def fleet_update(self, event: dict) -> None:
        # One row per gateway waits at most: a newer update of that row replaces it.
        row = {key: value for key, value in event.items() if key != "type"}
        self.rows[event["name"]] = row
        self.enqueue_status(json.dumps({"type": "gateways", "rows": list(self.rows.values())}))
