"""How long to wait before trying again: exponential, capped, jittered. No I/O, no clock.

One policy for every retry in the gateway: the uploader's failed batches, the stream's
reconnects to the site and the reader's reopening of a lost port. The wait after failed
attempt ``n`` has the ceiling ``min(cap, base * 2**(n-1))``; jitter spreads the retries of
many gateways after a shared outage (the AWS Architecture Blog's comparison):

* ``FULL``: uniform in ``[0, ceiling]``: the widest spread (the uploader: many batches);
* ``EQUAL``: uniform in ``[ceiling/2, ceiling]``: never retries in a tight loop (the stream);
* ``NONE``: the ceiling itself (a local serial port: nobody to collide with).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass


class Jitter(enum.Enum):
    NONE = "none"
    EQUAL = "equal"
    FULL = "full"


@dataclass(frozen=True)
class Backoff:
    base: float
    cap: float
    jitter: Jitter = Jitter.FULL

    def ceiling(self, attempt: int) -> float:
        """Longest wait after failed attempt number ``attempt`` (1 = the first failure)."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        # 2**64 would overflow a float's usefulness long before; the cap wins by then.
        return min(self.cap, self.base * 2 ** min(attempt - 1, 64))

    def delay(self, attempt: int, draw: float) -> float:
        """Wait after failed attempt ``attempt``; ``draw`` is a uniform draw in [0, 1)."""
        if not 0.0 <= draw < 1.0:
            raise ValueError("jitter must be in [0, 1)")
        ceiling = self.ceiling(attempt)
        if self.jitter is Jitter.FULL:
            return ceiling * draw
        if self.jitter is Jitter.EQUAL:
            return ceiling / 2 + ceiling / 2 * draw
        return ceiling

    def delays(self, draw: Callable[[], float] = lambda: 0.0) -> Iterator[float]:
        """The waits after attempts 1, 2, 3, ...; ``draw`` gives each one's uniform draw."""
        attempt = 1
        while True:
            yield self.delay(attempt, draw())
            attempt += 1


@dataclass
class RetryState:
    """Failures of one batch so far and when it may be tried again."""

    attempts: int = 0
    not_before: float = 0.0
    last_error: str = ""

    def failed(self, error: str, now: float, backoff: Backoff, jitter: float) -> float:
        self.attempts += 1
        self.last_error = error
        self.not_before = now + backoff.delay(self.attempts, jitter)
        return self.not_before

    def due(self, now: float) -> bool:
        return now >= self.not_before
