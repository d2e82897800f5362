"""When to seal a batch: by rows, bytes or age, whichever comes first. No I/O, no clock.

The store asks :meth:`Batcher.fill` how many of the rows it holds go into the open batch, adds
them with :meth:`Batcher.add`, and seals when either says the batch is full or
:meth:`Batcher.due` says it is old enough. ``now`` is always an argument (monotonic seconds).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_rows: int
    max_bytes: int
    max_seconds: float

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.max_bytes < 1 or self.max_seconds <= 0:
            raise ValueError(f"batch limits must be above 0: {self}")


class Batcher:
    """The open batch's size and age against a :class:`BatchPolicy`.

    A batch is full when it holds ``max_rows`` rows or at least ``max_bytes`` bytes: the row
    that crosses the byte limit is the batch's last, so a single row larger than the limit
    still gets a batch of its own. A batch is due ``max_seconds`` after its first row.
    """

    def __init__(self, policy: BatchPolicy) -> None:
        self.policy = policy
        self.rows = 0
        self.bytes = 0
        self.opened_at: float | None = None

    @property
    def empty(self) -> bool:
        return self.rows == 0

    @property
    def full(self) -> bool:
        return self.rows >= self.policy.max_rows or self.bytes >= self.policy.max_bytes

    def fill(self, row_sizes: Sequence[int]) -> int:
        """How many of these rows (from the front) go into the open batch."""
        if not row_sizes or self.full:
            return 0
        count = min(len(row_sizes), self.policy.max_rows - self.rows)
        room = self.policy.max_bytes - self.bytes
        if sum(row_sizes[:count]) >= room:
            totals = list(itertools.accumulate(row_sizes[:count]))
            count = bisect.bisect_left(totals, room) + 1  # the crossing row is the last
        return count

    def add(self, rows: int, nbytes: int, now: float) -> bool:
        """Count rows into the open batch; True when it is now full and must be sealed."""
        if rows <= 0:
            return self.full
        if self.opened_at is None:
            self.opened_at = now
        self.rows += rows
        self.bytes += nbytes
        return self.full

    def due(self, now: float) -> bool:
        """True when the open batch holds rows and has reached its age limit."""
        return self.opened_at is not None and now - self.opened_at >= self.policy.max_seconds

    def seconds_until_due(self, now: float) -> float | None:
        if self.opened_at is None:
            return None
        return max(0.0, self.opened_at + self.policy.max_seconds - now)

    def sealed(self) -> None:
        """The open batch was sealed: start counting a new one."""
        self.rows = 0
        self.bytes = 0
        self.opened_at = None
