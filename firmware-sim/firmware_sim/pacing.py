"""When each line is due (pure: the caller passes the clock readings in).

The schedule is absolute: line ``n`` is due at ``anchor + (n - anchor_n) / rate``. A shell
that wakes late sends every line that is due in one write, so lateness never accumulates and
the mean rate stays exact. Only a pause or an unplug moves the anchor.
"""


class Schedule:
    def __init__(self, rate: float, start: float, first_n: int = 0):
        if not rate > 0:
            raise ValueError(f"rate must be > 0 lines per second, got {rate!r}")
        self.rate = rate
        self.anchor = start
        self.anchor_n = first_n

    def due_time(self, n: int) -> float:
        """Clock reading at which line ``n`` is due."""
        return self.anchor + (n - self.anchor_n) / self.rate

    def is_due(self, n: int, now: float) -> bool:
        return self.due_time(n) <= now

    def delay(self, seconds: float) -> None:
        """Everything not yet sent is due ``seconds`` later (a pause)."""
        self.anchor += seconds

    def restart(self, n: int, now: float) -> None:
        """Line ``n`` is due at ``now``, the following ones at the rate from there."""
        self.anchor, self.anchor_n = now, n
