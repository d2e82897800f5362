"""The gateway's socket: authenticate, check each message, fan frames out to the viewers.

A frame is checked once and passed on as the text it arrived in, numbered per connection so a
viewer can count what the channel layer dropped on the way (docs/stream-protocol.md).
"""

from __future__ import annotations

import itertools
import json
import logging
import os

from channels.db import database_sync_to_async
from django.conf import settings

from gateway.core import stream_protocol as protocol
from gateway.logs import log_event
from web.consumers import StreamConsumer
from web.fleet import counters
from web.fleet import status as fleet
from web.live import local

log = logging.getLogger("web.ingest")

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


class IngestConsumer(StreamConsumer):
    gateway_id: int | None = None
    gateway_name: str | None = None
    closing = False

    async def connect(self) -> None:
        # Accept first, then close with a code: refusing the handshake would only say 403.
        await self.accept()
        name = _header(self.scope, b"x-fieldgate-gateway")
        result = await database_sync_to_async(fleet.authenticate)(name, _bearer(self.scope))
        if result.code is not None:
            reason = protocol.CLOSE_CODES[result.code]
            counters.COUNTERS.add(counters.REFUSED[result.code])
            log_event(log, logging.WARNING, "ingest_refused", gateway=name, reason=reason)
            await self.close(code=result.code, reason=reason)
            return
        self.gateway_id = result.gateway.pk
        self.gateway_name = result.gateway.name
        self.group = fleet.live_group(self.gateway_name)
        self.connection = f"{os.getpid()}.{next(_connection_ids)}"
        self.frame_number = 0
        self.frames_since_status = 0
        self.hello: dict = {}
        self.max_bytes = settings.FIELDGATE["MAX_MESSAGE_BYTES"]
        self.local_fan_out = local.enabled()
        summary = await database_sync_to_async(fleet.connected)(self.gateway_id, +1)
        await self.send_json_text({"type": "welcome", "max_message_bytes": self.max_bytes})
        await self.channel_layer.group_send(fleet.FLEET_GROUP, {"type": "fleet.update", **summary})
        log_event(log, logging.INFO, "ingest_connected", gateway=self.gateway_name)

    async def disconnect(self, code) -> None:
        if self.gateway_id is None:
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
        if bytes_data is not None:
            await self.reject(
                protocol.CLOSE_MALFORMED, "binary messages are not part of the protocol"
            )
            return
        size = len(text_data)
        if size > self.max_bytes or len(text_data.encode()) > self.max_bytes:
            await self.reject(
                protocol.CLOSE_TOO_LARGE,
                f"message of {len(text_data.encode())} bytes exceeds {self.max_bytes}",
            )
            return
        try:
            message = protocol.parse_message(text_data)
        except protocol.ProtocolError as error:
            await self.reject(protocol.CLOSE_MALFORMED, str(error))
            return
        kind = message["type"]
        if kind == "frame":
            self.frame_number += 1
            self.frames_since_status += 1
            counters.COUNTERS.add(counters.FRAMES)
            if self.local_fan_out:
                local.deliver(self.gateway_name, self.connection, self.frame_number, text_data)
            else:
                await self.channel_layer.group_send(
                    self.group,
                    {
                        "type": "live.frame",
                        "connection": self.connection,
                        "n": self.frame_number,
                        "text": text_data,
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

    async def reject(self, code: int, reason: str) -> None:
        kind = "too_large" if code == protocol.CLOSE_TOO_LARGE else "malformed"
        await database_sync_to_async(fleet.count_rejection)(self.gateway_id, kind)
        log_event(log, logging.WARNING, "ingest_rejected", gateway=self.gateway_name, reason=reason)
        self.closing = True
        # A close reason has at most 123 bytes.
        await self.close(code=code, reason=reason.encode()[:123].decode(errors="ignore"))

    async def send_json_text(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message))
