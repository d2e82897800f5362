"""``/healthz``: does this worker reach the database and the channel layer?

Each check is a real round trip (a query; a message sent to a fresh channel and received back),
bounded by ``CHECK_SECONDS``, so a hung server fails the check instead of hanging it. The
response says only which check failed; the error itself goes to the log (the endpoint needs no
login, and an error text can name hosts and users).
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

from gateway.logs import log_event

log = logging.getLogger("web.health")

CHECK_SECONDS = 3.0


def _query_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _round_trip_layer() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel("healthz.")
    await layer.send(channel, {"type": "healthz"})
    await layer.receive(channel)


CHECKS = {
    "database": lambda: database_sync_to_async(_query_database)(),
    "channel_layer": _round_trip_layer,
}


async def _passes(name: str) -> bool:
    try:
        await asyncio.wait_for(CHECKS[name](), CHECK_SECONDS)
    except Exception as error:
        reason = "no answer in time" if isinstance(error, TimeoutError) else str(error)
        log_event(log, logging.WARNING, "healthz_failed", check=name, error=reason[:300])
        return False
    return True


async def check() -> dict[str, str]:
    """``{"database": "ok"|"failed", "channel_layer": ...}``, the checks run side by side."""
    names = list(CHECKS)
    results = await asyncio.gather(*(_passes(name) for name in names))
    return {name: "ok" if passed else "failed" for name, passed in zip(names, results, strict=True)}
