"""Which batches failed, when each may be tried again, and which ``--once`` has given up on.

Failures arrive from the pipelines' threads while the main loop asks what is due, so every
method takes the lock. A batch is ``(data dir, relative path)``.
"""

from __future__ import annotations

import random
import threading
from dataclasses import replace

from gateway.core.backoff import Backoff, RetryState

BatchRef = tuple[str, str]  # (data dir, path under batches/)


class Retries:
    def __init__(self, backoff: Backoff, give_up_after: int | None = None) -> None:
        self.backoff = backoff
        self.give_up_after = give_up_after  # attempts; None: never give up (the daemon)
        self._states: dict[BatchRef, RetryState] = {}
        self._given_up: set[BatchRef] = set()
        self._rng = random.Random()
        self._lock = threading.Lock()

    def failed(self, batch: BatchRef, error: str, now: float) -> tuple[RetryState, bool]:
        """Count a failed attempt; the batch's state after it, and whether it is its first."""
        with self._lock:
            state = self._states.get(batch)
            first = state is None
            if first:
                state = self._states[batch] = RetryState()
            state.failed(error, now, self.backoff, self._rng.random())
            if self.give_up_after is not None and state.attempts >= self.give_up_after:
                self._given_up.add(batch)
            return replace(state), first  # a copy: the lock guards the original

    def succeeded(self, batch: BatchRef) -> bool:
        """Forget the batch's failures; True when it had any."""
        with self._lock:
            return self._states.pop(batch, None) is not None

    def not_before(self, batch: BatchRef) -> float:
        """When the batch may be tried again (0.0 when it never failed)."""
        with self._lock:
            state = self._states.get(batch)
            return 0.0 if state is None else state.not_before

    def given_up(self, batch: BatchRef) -> bool:
        with self._lock:
            return batch in self._given_up

    @property
    def any_given_up(self) -> bool:
        with self._lock:
            return bool(self._given_up)

    def retry_now(self, backoff: Backoff, give_up_after: int | None) -> None:
        """Forget every failure and take a new policy (new settings deserve an immediate
        try); what ``--once`` gave up on stays given up."""
        with self._lock:
            self._states.clear()
            self.backoff = backoff
            self.give_up_after = give_up_after
