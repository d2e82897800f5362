"""The gateway's socket: authenticate, check each message, fan frames out to the viewers.

A frame is checked once and passed on as the message it arrived in (JSON text, or a binary
frame where the welcome offered them), numbered per connection so a viewer can count what the
channel layer dropped on the way (docs/stream-protocol.md).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import time

from channels.db import database_sync_to_async
from django.conf import settings

from gateway.core import stream_protocol as protocol
from gateway.core.rate_window import Limit
from gateway.logs import log_event
from web.consumers import StreamConsumer
from web.fleet import counters
from web.fleet import status as fleet
from web.live import local
from web.security.limits import FailureLimiter

log = logging.getLogger("web.ingest")

# A gateway's frames pause when no live view renewed its watch for this many WATCH_SECONDS.
WATCH_LEASES = 3
# Tells the viewers apart the frames of two sockets of one gateway (a restart's overlap).
_connection_ids = itertools.count(1)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _bearer(scope) -> str | None:
    value = _header(scope, b"authorization")
    if value and value.startswith("Bearer "):
        return value[7:].strip() or None
    return None


def failure_limiter() -> FailureLimiter:
    """Refused handshakes per client address (settings.INGEST_FAILURES_PER_CLIENT)."""
    limit = Limit(settings.INGEST_FAILURES_PER_CLIENT, settings.INGEST_FAILURE_WINDOW_SECONDS)
    return FailureLimiter("ingest-client", limit)


# A flood is logged once per client every THROTTLE_LOG_SECONDS (with how many were refused
# since), not once per attempt: the log must not become the flood's amplifier.
THROTTLE_LOG_SECONDS = 10.0
_throttle_logged: dict[str, tuple[float, int]] = {}  # client -> (when logged, refused since)


def _log_throttled(client: str, wait: int) -> None:
    now = time.monotonic()
    logged_at, refused = _throttle_logged.get(client, (-THROTTLE_LOG_SECONDS, 0))
    if now - logged_at < THROTTLE_LOG_SECONDS:
        _throttle_logged[client] = (logged_at, refused + 1)
        return
    if len(_throttle_logged) > 1000:  # many clients: forget the old ones
        _throttle_logged.clear()
    _throttle_logged[client] = (now, 0)
    log_event(
        log,
        logging.WARNING,
        "ingest_refused",
        client=client,
        reason=protocol.CLOSE_CODES[protocol.CLOSE_TOO_MANY_FAILURES],
        refused_since_last_log=refused + 1,
        retry_after=wait,
        hint="this address failed too many handshakes (a wrong token, or a flood); its "
        "attempts are refused before any token check until it stops "
        "(FIELDGATE_WEB_INGEST_FAILURES_PER_CLIENT)",
    )


async def refuse_too_many_failures(client: str, wait: int, receive, send) -> None:
    """The socket of an address over its limit: accepted and closed with 4429 at once."""
    counters.COUNTERS.add(counters.REFUSED[protocol.CLOSE_TOO_MANY_FAILURES])
    _log_throttled(client, wait)
    reason = protocol.CLOSE_CODES[protocol.CLOSE_TOO_MANY_FAILURES]
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.accept"})
        await send(
            {"type": "websocket.close", "code": protocol.CLOSE_TOO_MANY_FAILURES, "reason": reason}
        )


class RemembersRefusals:
    """Before the consumer: an address this worker already refused, and whose wait is not
    over, gets its 4429 without a consumer, a channel or a thread (a flood's attempts cost the
    server its handshake and a dict lookup). Others go on to the consumer, which asks the
    shared counts."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        client = (scope.get("client") or ("unknown",))[0]
        wait = failure_limiter().remembered(client)
        if wait is None:
            return await self.application(scope, receive, send)
        await refuse_too_many_failures(client, wait, receive, send)


class IngestConsumer(StreamConsumer):
    gateway_id: int | None = None
    gateway_name: str | None = None
    closing = False
    counted = False  # the database counts this socket among the gateway's connections
    token_watch: asyncio.Task | None = None
    token_group: str | None = None

    async def connect(self) -> None:
        # Accept first, then close with a code: refusing the handshake would only say 403.
        await self.accept()
        client = (self.scope.get("client") or ("unknown",))[0]
        limiter = failure_limiter()
        # Before any token hashing or database work: a flood of wrong tokens from one address
        # costs a cache lookup each, and the database thread stays free for real gateways.
        wait = await limiter.arefused_for(client)
        if wait is not None:  # decided now (RemembersRefusals answers the next ones)
            counters.COUNTERS.add(counters.REFUSED[protocol.CLOSE_TOO_MANY_FAILURES])
            _log_throttled(client, wait)
            await self.close(
                code=protocol.CLOSE_TOO_MANY_FAILURES,
                reason=protocol.CLOSE_CODES[protocol.CLOSE_TOO_MANY_FAILURES],
            )
            return
        name = _header(self.scope, b"x-fieldgate-gateway")
        result = await database_sync_to_async(fleet.authenticate)(name, _bearer(self.scope))
        if result.code is not None:
            await limiter.afailed(client)
            reason = protocol.CLOSE_CODES[result.code]
            counters.COUNTERS.add(counters.REFUSED[result.code])
            log_event(
                log, logging.WARNING, "ingest_refused", gateway=name, reason=reason, client=client
            )
            await self.close(code=result.code, reason=reason)
            return
        self.gateway_id = result.gateway.pk
        self.gateway_name = result.gateway.name
        self.token_hash = result.gateway.token_hash
        self.group = fleet.live_group(self.gateway_name)
        self.connection = f"{os.getpid()}.{next(_connection_ids)}"
        self.frame_number = 0
        self.frames_since_status = 0
        self.hello: dict = {}
        self.max_bytes = settings.FIELDGATE["MAX_MESSAGE_BYTES"]
        self.local_fan_out = local.enabled()
        # Watched until a lease passes without a viewer renewing it (see ingest_watched): the
        # viewers open before this socket renew theirs within WATCH_SECONDS.
        self.watched = True
        self.watched_until = time.monotonic() + self.watch_lease()
        summary = await database_sync_to_async(fleet.connected)(self.gateway_id, +1)
        self.counted = True
        # Revoking or rotating the token closes this socket: at once through the channel layer
        # where the command reaches it (Redis), else at the next check.
        self.token_group = fleet.ingest_group(self.gateway_name)
        await self.channel_layer.group_add(self.token_group, self.channel_name)
        self.token_watch = asyncio.create_task(self._watch_token())
        await self.send_json_text(
            {
                "type": "welcome",
                "max_message_bytes": self.max_bytes,
                "frame_encodings": list(protocol.FRAME_ENCODINGS),
            }
        )
        await self.channel_layer.group_send(fleet.FLEET_GROUP, {"type": "fleet.update", **summary})
        log_event(log, logging.INFO, "ingest_connected", gateway=self.gateway_name)

    async def disconnect(self, code) -> None:
        if self.token_watch is not None:
            self.token_watch.cancel()
        if self.token_group is not None:
            await self.channel_layer.group_discard(self.token_group, self.channel_name)
        if not self.counted:
            return
        summary = await database_sync_to_async(fleet.connected)(
            self.gateway_id, -1, self.frames_since_status
        )
        await self.channel_layer.group_send(fleet.FLEET_GROUP, {"type": "fleet.update", **summary})
        log_event(
            log,
            logging.INFO,
            "ingest_disconnected",
            gateway=self.gateway_name,
            code=code,
            frames=self.frame_number,
        )

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.gateway_id is None or self.closing:
            return  # refused or rejected: the close is on its way
        data = text_data if bytes_data is None else bytes_data
        size = len(data) if bytes_data is not None else len(data.encode())
        if size > self.max_bytes:
            await self.reject(
                protocol.CLOSE_TOO_LARGE, f"message of {size} bytes exceeds {self.max_bytes}"
            )
            return
        try:
            if bytes_data is not None:  # only frames are binary; checked without decoding
                message = protocol.check_binary_frame(bytes_data)
            else:
                message = protocol.parse_message(text_data)
        except protocol.ProtocolError as error:
            await self.reject(protocol.CLOSE_MALFORMED, str(error))
            return
        kind = message["type"]
        if self.watched and time.monotonic() > self.watched_until:
            await self.tell_watched(False)
        if kind == "frame":
            self.frame_number += 1
            self.frames_since_status += 1
            counters.COUNTERS.add(counters.FRAMES)
            if self.local_fan_out:
                local.deliver(self.gateway_name, self.connection, self.frame_number, data)
            else:
                await self.channel_layer.group_send(
                    self.group,
                    {
                        "type": "live.frame",
                        "connection": self.connection,
                        "n": self.frame_number,
                        # as ASGI's websocket.send: "text" for JSON, "bytes" for a binary frame
                        "text" if bytes_data is None else "bytes": data,
                    },
                )
        elif kind == "status":
            status = message["status"]
            summary = await database_sync_to_async(fleet.save_status)(
                self.gateway_id, status, self.frames_since_status
            )
            self.frames_since_status = 0
            await self.channel_layer.group_send(
                fleet.FLEET_GROUP, {"type": "fleet.update", **summary}
            )
            await self.channel_layer.group_send(self.group, {"type": "live.status", **summary})
        elif kind == "hello":
            if message["gateway"] != self.gateway_name:
                await self.reject(
                    protocol.CLOSE_MALFORMED,
                    f"hello: gateway {message['gateway']!r:.40} is not this token's "
                    f"{self.gateway_name!r}",
                )
                return
            self.hello = message
            await self.channel_layer.group_send(self.group, {**message, "type": "live.hello"})

    @staticmethod
    def watch_lease() -> float:
        return WATCH_LEASES * settings.FIELDGATE["WATCH_SECONDS"]

    async def ingest_watched(self, event: dict) -> None:
        """A live view of this gateway is open (renewed every WATCH_SECONDS by each one)."""
        self.watched_until = time.monotonic() + self.watch_lease()
        if not self.watched and not self.closing:
            await self.tell_watched(True)

    async def tell_watched(self, watched: bool) -> None:
        """Tell the gateway whether to send frames: nobody sees them while nobody watches, and
        on a Pi they are most of the reader's work (on a cellular link most of its traffic)."""
        self.watched = watched
        await self.send_json_text({"type": "watch", "watched": watched})
        log_event(
            log,
            logging.INFO,
            "ingest_watched" if watched else "ingest_unwatched",
            gateway=self.gateway_name,
        )

    async def _watch_token(self) -> None:
        every = settings.FIELDGATE["TOKEN_CHECK_SECONDS"]
        check = database_sync_to_async(fleet.token_refusal)
        while not self.closing:
            await asyncio.sleep(every)
            try:
                code = await check(self.gateway_id, self.token_hash)
            except Exception as error:  # the database is away: /healthz says so; try again
                log_event(
                    log,
                    logging.WARNING,
                    "token_check_failed",
                    gateway=self.gateway_name,
                    error=str(error)[:200],
                )
                continue
            if code is not None:
                await self.close_for_token(code)
                return

    async def ingest_token_changed(self, event: dict) -> None:
        """From ``revoke_gateway`` or ``create_gateway --rotate`` through the channel layer."""
        code = await database_sync_to_async(fleet.token_refusal)(self.gateway_id, self.token_hash)
        if code is not None:
            await self.close_for_token(code)

    async def close_for_token(self, code: int) -> None:
        if self.closing:
            return
        self.closing = True
        reason = protocol.CLOSE_CODES[code]
        counters.COUNTERS.add(counters.TOKEN_CLOSED)
        log_event(
            log,
            logging.WARNING,
            "ingest_closed",
            gateway=self.gateway_name,
            reason=reason,
            hint="its token was revoked or rotated while the socket was open; "
            "create_gateway NAME --rotate issues a new one",
        )
        await self.close(code=code, reason=reason)

    async def reject(self, code: int, reason: str) -> None:
        kind = "too_large" if code == protocol.CLOSE_TOO_LARGE else "malformed"
        await database_sync_to_async(fleet.count_rejection)(self.gateway_id, kind)
        log_event(log, logging.WARNING, "ingest_rejected", gateway=self.gateway_name, reason=reason)
        self.closing = True
        # A close reason has at most 123 bytes.
        await self.close(code=code, reason=reason.encode()[:123].decode(errors="ignore"))

    async def send_json_text(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message))
