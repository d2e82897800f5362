"""What the site's consumers share."""

from __future__ import annotations

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer


class StreamConsumer(AsyncWebsocketConsumer):
    """An async websocket consumer without Channels' per-message database clean-up.

    Channels runs ``close_old_connections`` in a worker thread before every message it
    dispatches: one thread hop per frame per viewer, which measured as most of the fan-out
    cost (bench/web.py). These consumers touch the database only through
    ``database_sync_to_async``, which does that clean-up around each call itself.
    """

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
