"""The bounded hand-off between the thread that reads the port and the one that writes.

What crosses it are small events, oldest first: :class:`Data` read from the port, the port
:class:`PortOpened` and :class:`PortLost`, and :class:`Overflow`. Reading must never wait on disk
or network, so ``put_data`` never blocks for long: when the writer has fallen ``max_bytes``
behind, the chunk is dropped and counted, and whatever is handed over next is preceded by an
:class:`Overflow` so the writer knows the stream has a hole (its unfinished line is then
incomplete). Every event carries ``at``, the Unix time it happened.

Memory under a flood: past ``catch_up_bytes`` queued, ``put_data`` first waits (its ``wait``)
for the writer to take something; only a writer that does not take within it lets the queue
grow towards ``max_bytes``. On a link with flow control (a PTY, USB CDC) the backlog then waits
in the kernel and the relay's pipe, not in this process; a stalled writer still has the whole
``max_bytes`` before a byte is dropped, as before.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Data:
    at: float  # when it was read
    data: bytes


@dataclass(frozen=True, slots=True)
class PortOpened:
    at: float
    port: str  # the path or URL, as configured


@dataclass(frozen=True, slots=True)
class PortLost:
    at: float
    error: str  # why, as the port said it


@dataclass(frozen=True, slots=True)
class Overflow:
    """Chunks were dropped before the next event: the writer's unfinished line is broken."""

    at: float
    dropped_bytes: int


HandoffEvent = Data | PortOpened | PortLost | Overflow


#: Queued bytes past which a hand-off first lets the writer catch up (see above). 4 MiB is four
#: of the writer's takes (``TAKE_MAX_BYTES``): it never runs dry while the port thread waits.
CATCH_UP_BYTES = 4 << 20


class Handoff:
    def __init__(self, max_bytes: int, catch_up_bytes: int = CATCH_UP_BYTES) -> None:
        self.max_bytes = max_bytes
        self.catch_up_bytes = min(catch_up_bytes, max_bytes)
        self._events: deque[HandoffEvent] = deque()
        self._bytes = 0
        lock = threading.Lock()
        self._ready = threading.Condition(lock)  # something to take
        self._room = threading.Condition(lock)  # the writer took everything
        self._dropped_bytes = 0
        self._dropped_chunks = 0
        self.overflow_bytes = 0  # totals, read by the writer's status
        self.overflow_events = 0
        self.high_water_bytes = 0

    def put_data(self, at: float, data: bytes, wait: float = 0.0) -> bool:
        """Hand over a chunk; past ``catch_up_bytes`` queued, wait up to ``wait`` s for the
        writer to take first.

        On a link with flow control (USB CDC, a PTY) that short wait slows the device down
        instead of holding (or, when full, losing) bytes; after it the chunk is queued if it
        fits under ``max_bytes``, else dropped and counted.
        """
        size = len(data)
        with self._ready:
            if self._bytes + size > self.catch_up_bytes and wait > 0 and size <= self.max_bytes:
                # Only the writer changes the queue meanwhile, and only by taking: room under
                # max_bytes seen during the wait is still there after it.
                self._room.wait_for(
                    lambda: self._bytes + size <= self.catch_up_bytes or not self._bytes, wait
                )
            if self._bytes + size > self.max_bytes:
                if not self._dropped_bytes:
                    self.overflow_events += 1
                self._dropped_bytes += size
                self._dropped_chunks += 1
                self.overflow_bytes += size
                return False
            self._mark_hole(at)
            self._events.append(Data(at, data))
            self._bytes += size
            self.high_water_bytes = max(self.high_water_bytes, self._bytes)
            self._ready.notify()
            return True

    def put_event(self, event: PortOpened | PortLost) -> None:
        with self._ready:
            self._mark_hole(event.at)
            self._events.append(event)
            self._ready.notify()

    def _mark_hole(self, at: float) -> None:
        """Before what follows a drop, say how much was dropped. Holds the lock."""
        if self._dropped_bytes:
            self._events.append(Overflow(at, self._dropped_bytes))
            self._dropped_bytes = self._dropped_chunks = 0

    def take(self, timeout: float, max_bytes: int | None = None) -> list[HandoffEvent]:
        """What was handed over, oldest first: all of it, or as many events as fit in
        ``max_bytes`` (at least one); waits up to ``timeout`` seconds for something.

        Taking a bounded piece lets the port thread refill the room it frees while the writer
        works, instead of holding a second full queue's worth in memory.
        """
        with self._ready:
            if not self._events:
                self._ready.wait(timeout)
            if max_bytes is None:
                events = list(self._events)
                self._events.clear()
                self._bytes = 0
            else:
                events, taken = [], 0
                while self._events and (not events or taken + _size(self._events[0]) <= max_bytes):
                    event = self._events.popleft()
                    events.append(event)
                    taken += _size(event)
                self._bytes -= taken
            self._room.notify_all()
            return events

    def wake(self) -> None:
        """Make a waiting :meth:`take` return. Safe from a signal handler: it never blocks.

        A handler runs in the main thread, possibly while that thread holds this lock inside
        :meth:`take`; waiting for the lock there would wait forever. When the lock is busy,
        the taker is not waiting, or returns at its timeout anyway.
        """
        if self._ready.acquire(blocking=False):
            try:
                self._ready.notify_all()
            finally:
                self._ready.release()

    @property
    def queued_bytes(self) -> int:
        return self._bytes


def _size(event: HandoffEvent) -> int:
    """Bytes an event holds in the hand-off (only data counts towards its bound)."""
    return len(event.data) if type(event) is Data else 0


# Bounds one decode call, so the port thread never waits long for the interpreter lock.
COALESCE_MAX_BYTES = 256 * 1024


def coalesce(events: list[HandoffEvent]) -> list[HandoffEvent]:
    """Join runs of :class:`Data` into one: a backlog is then decoded in few large pieces.

    A joined chunk carries the latest read time of its run, so no line is said to have
    arrived before it did.
    """
    joined: list[HandoffEvent] = []
    run: list[Data] = []
    size = 0
    for event in events:
        if type(event) is Data:
            if run and size + len(event.data) > COALESCE_MAX_BYTES:
                joined.append(_join(run))
                run, size = [], 0
            run.append(event)
            size += len(event.data)
            continue
        if run:
            joined.append(_join(run))
            run, size = [], 0
        joined.append(event)
    if run:
        joined.append(_join(run))
    return joined


def _join(run: list[Data]) -> Data:
    if len(run) == 1:
        return run[0]
    return Data(run[-1].at, b"".join(chunk.data for chunk in run))
