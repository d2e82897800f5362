"""Where accepted records go besides the batch files: the live stream.

The reader calls ``publish`` from its writing loop, so an implementation must return at once
(queue and drop, never wait on the network). :class:`gateway.reader.stream.StreamClient` streams
to the site (modes full and demo with ``GATEWAY_STREAM_URL`` set); otherwise the reader's sink
is a :class:`NullSink`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.core.codec import Shape


def streams(mode: str, stream_url: str) -> bool:
    """Whether a reader in ``mode`` with ``stream_url`` streams (modes full and demo, a URL
    set). A reader that does not never imports the stream client (websockets, ssl, http)."""
    return mode in ("full", "demo") and bool(stream_url)


class StreamSink(Protocol):
    def publish(
        self,
        first_seq: int,
        records: Sequence[bytes],
        received_at: float,
        shape: Shape,
        gaps: Sequence[tuple[int, int]] = (),
    ) -> None:
        """``gaps``: the device gaps the reader counted in these records, ``(index, missing)``."""

    def port_outage(self, seconds: float) -> None:
        """The port was away ``seconds``; the next records published come after it."""

    def publish_status(self, status: dict) -> None: ...

    @property
    def watched(self) -> bool:
        """Whether someone may be drawing the rows now (the reader gathers them sooner)."""

    def counters(self) -> dict: ...

    def close(self) -> None: ...


class NullSink:
    """Streams nothing (``local`` mode, or no ``GATEWAY_STREAM_URL``)."""

    def publish(
        self,
        first_seq: int,
        records: Sequence[bytes],
        received_at: float,
        shape: Shape,
        gaps: Sequence[tuple[int, int]] = (),
    ) -> None:
        pass

    def port_outage(self, seconds: float) -> None:
        pass

    def publish_status(self, status: dict) -> None:
        pass

    watched = False  # nothing is drawn

    def counters(self) -> dict:
        return {}

    def close(self) -> None:
        pass
