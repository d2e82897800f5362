"""The bounded hand-off between the thread that reads the port and the one that writes.

Reading must never wait on disk or network, so ``put_data`` never blocks: when the writer has
fallen ``max_bytes`` behind, the chunk is dropped and counted, and the next chunk that fits is
preceded by an ``overflow`` item so the writer knows the stream has a hole (its unfinished line
is then incomplete).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Item:
    kind: str  # "data", "opened", "lost", "overflow"
    at: float  # Unix time
    data: bytes = b""
    detail: str = ""
    count: int = 0


class Handoff:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: deque[Item] = deque()
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
        """Hand over a chunk; if the hand-off is full, wait up to ``wait`` s for the writer.

        On a link with flow control (USB CDC, a PTY) that short wait slows the device down
        instead of losing bytes; past it the chunk is dropped and counted.
        """
        with self._ready:
            if (
                self._bytes + len(data) > self.max_bytes
                and wait > 0
                and len(data) <= self.max_bytes
            ):
                self._room.wait_for(lambda: self._bytes + len(data) <= self.max_bytes, wait)
            if self._bytes + len(data) > self.max_bytes:
                if not self._dropped_bytes:
                    self.overflow_events += 1
                self._dropped_bytes += len(data)
                self._dropped_chunks += 1
                self.overflow_bytes += len(data)
                return False
            if self._dropped_bytes:
                self._items.append(Item("overflow", at, count=self._dropped_bytes))
                self._dropped_bytes = self._dropped_chunks = 0
            self._items.append(Item("data", at, data))
            self._bytes += len(data)
            self.high_water_bytes = max(self.high_water_bytes, self._bytes)
            self._ready.notify()
            return True

    def put_event(self, kind: str, at: float, detail: str = "") -> None:
        with self._ready:
            if self._dropped_bytes:
                self._items.append(Item("overflow", at, count=self._dropped_bytes))
                self._dropped_bytes = self._dropped_chunks = 0
            self._items.append(Item(kind, at, detail=detail))
            self._ready.notify()

    def take(self, timeout: float, max_bytes: int | None = None) -> list[Item]:
        """What was handed over, oldest first: all of it, or as many items as fit in
        ``max_bytes`` (at least one); waits up to ``timeout`` seconds for something.

        Taking a bounded piece lets the port thread refill the room it frees while the writer
        works, instead of holding a second full queue's worth in memory.
        """
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            if max_bytes is None:
                items = list(self._items)
                self._items.clear()
                self._bytes = 0
            else:
                items, taken = [], 0
                while self._items and (not items or taken + len(self._items[0].data) <= max_bytes):
                    item = self._items.popleft()
                    items.append(item)
                    taken += len(item.data)
                self._bytes -= taken
            self._room.notify_all()
            return items

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


# Bounds one decode call, so the port thread never waits long for the interpreter lock.
COALESCE_MAX_BYTES = 256 * 1024


def coalesce(items: list[Item]) -> list[Item]:
    """Join runs of data items into one: a backlog is then decoded in few large pieces.

    A joined item carries the latest read time of its run, so no line is said to have
    arrived before it did.
    """
    joined: list[Item] = []
    run: list[Item] = []
    size = 0
    for item in items:
        if item.kind == "data":
            if run and size + len(item.data) > COALESCE_MAX_BYTES:
                joined.append(_join(run))
                run, size = [], 0
            run.append(item)
            size += len(item.data)
            continue
        if run:
            joined.append(_join(run))
            run = []
        joined.append(item)
    if run:
        joined.append(_join(run))
    return joined


def _join(run: list[Item]) -> Item:
    if len(run) == 1:
        return run[0]
    return Item("data", run[-1].at, b"".join(item.data for item in run))
