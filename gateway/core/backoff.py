"""When to try a failed batch again: exponential backoff with full jitter, capped. No I/O.

``delay = uniform(0, min(cap, base * 2**(attempt-1)))`` ("full jitter" in the AWS
Architecture Blog's comparison): spreads the retries of many gateways after an outage while
the cap keeps a long outage from pushing the next try hours away.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base: float
    cap: float

    def ceiling(self, attempt: int) -> float:
        """Longest wait after failed attempt number ``attempt`` (1 = the first failure)."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        # 2**64 would overflow a float's usefulness long before; the cap wins by then.
        return min(self.cap, self.base * 2 ** min(attempt - 1, 64))

    def delay(self, attempt: int, jitter: float) -> float:
        """Wait after failed attempt ``attempt``; ``jitter`` is a uniform draw in [0, 1)."""
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter must be in [0, 1)")
        return self.ceiling(attempt) * jitter


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
