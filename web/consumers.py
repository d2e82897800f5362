"""What the site's consumers share."""

from __future__ import annotations

import logging

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from web.fleet import counters

log = logging.getLogger("web.consumers")

CLOSE_SERVER_ERROR = 1011  # RFC 6455: the server met a condition it did not expect


class StreamConsumer(AsyncWebsocketConsumer):
    """An async websocket consumer without Channels' per-message database clean-up, whose
    every path ends with a close code and its ``disconnect()``.

    Channels runs ``close_old_connections`` in a worker thread before every message it
    dispatches: one thread hop per frame per viewer, which measured as most of the fan-out
    cost (bench/web.py). These consumers touch the database only through
    ``database_sync_to_async``, which does that clean-up around each call itself.

    An exception in a handler would end the consumer without ``disconnect()`` (connection
    counts and viewer registrations left wrong) and the server would log it as its own. Here it
    is logged with its traceback and counted, and the socket is closed with 1011; the server's
    ``websocket.disconnect`` then runs ``disconnect()`` as for any close. An exception in
    ``disconnect()`` itself is logged and the consumer stops.
    """

    async def __call__(self, scope, receive, send):
        """Channels' loop, and what it leaves when something outside a handler fails (the
        channel layer's receive, say): the same log, a 1011 close and ``disconnect()``."""
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            self._log_error("channel layer")
            try:
                await send({"type": "websocket.close", "code": CLOSE_SERVER_ERROR})
            except Exception:
                pass  # the socket is gone already
            try:
                await self.disconnect(CLOSE_SERVER_ERROR)
            except Exception:
                self._log_error("websocket.disconnect")

    def _log_error(self, during: str) -> None:
        counters.COUNTERS.add(counters.CONSUMER_ERRORS)
        log.error(
            "consumer_error",
            exc_info=True,
            extra={
                "fields": {
                    "consumer": type(self).__name__,
                    "path": self.scope.get("path"),
                    "message": during,
                }
            },
        )

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        try:
            await handler(message)
        except StopConsumer:
            raise
        except Exception:
            self._log_error(message.get("type"))
            if message["type"] == "websocket.disconnect":
                raise StopConsumer() from None
            await self.close(code=CLOSE_SERVER_ERROR)
