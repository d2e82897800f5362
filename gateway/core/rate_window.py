"""How many failures a client (or an account) has in the last window, and how long it must
wait once over its limit: a sliding window estimated from two fixed ones, as Cloudflare's rate
limiter does. Pure: the caller keeps the two counts (in Django's cache, shared by every worker
in the central profile) and passes ``now``.

The window ``i`` covers ``[i * seconds, (i + 1) * seconds)``. The estimate of the failures in
the ``seconds`` before ``now`` is ``previous * (1 - f) + current``, where ``f`` is how far into
window ``i`` ``now`` is: it assumes the previous window's failures were spread evenly. Two
counters per key, however many attempts, and no burst of twice the limit at a window's edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """At most ``failures`` in any ``seconds``; the next one is refused until the estimate
    falls below ``failures`` again."""

    failures: int
    seconds: float

    def __post_init__(self) -> None:
        if self.failures < 1 or not self.seconds > 0:
            raise ValueError(f"a limit needs failures >= 1 and seconds > 0, got {self}")


def window_index(now: float, limit: Limit) -> int:
    """The fixed window ``now`` falls in; the caller counts failures under this number."""
    return math.floor(now / limit.seconds)


def estimate(previous: int, current: int, now: float, limit: Limit) -> float:
    """Failures in the ``limit.seconds`` before ``now``, from the counts of the window before
    ``now``'s (``previous``) and of ``now``'s (``current``)."""
    elapsed = now / limit.seconds - window_index(now, limit)
    return previous * (1.0 - elapsed) + current


def retry_after(previous: int, current: int, now: float, limit: Limit) -> int | None:
    """None when one more attempt is allowed now; else the whole seconds (at least 1) until
    it is, if no other failure is counted meanwhile (refused attempts are not counted)."""
    if estimate(previous, current, now, limit) < limit.failures:
        return None
    start = window_index(now, limit) * limit.seconds
    if current < limit.failures:
        # Still in this window: the previous window's share shrinks until the sum is below.
        allowed_at = start + limit.seconds * (1.0 - (limit.failures - current) / previous)
    else:
        # In the next window this one's count becomes the previous and shrinks the same way.
        allowed_at = start + limit.seconds * (2.0 - limit.failures / current)
    return max(1, math.ceil(allowed_at - now + 1e-9))
