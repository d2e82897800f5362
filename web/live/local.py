"""In-process fan-out of frames, for a site whose channel layer is in memory (one process).

There every viewer of a gateway lives in the ingesting process, so a frame goes straight into
each viewer's outbox instead of through the layer: the layer costs a deep copy, an expiry scan
of every channel, a queue hop and a dispatch per viewer per frame, which measured as most of
the gap to a plain websockets broadcast (bench/web.py, docs/web.md). Status and the other
low-rate messages still use the layer's groups; with a shared layer (Redis, several workers)
frames do too, since the viewers are elsewhere.
"""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings

VIEWERS: dict[str, set] = defaultdict(set)  # gateway name -> its viewer consumers here


def enabled() -> bool:
    return settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer")


def deliver(gateway: str, connection: str, number: int, text: str | bytes) -> None:
    for viewer in tuple(VIEWERS.get(gateway, ())):
        viewer.deliver_frame(connection, number, text)
