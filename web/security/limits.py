"""Failures counted per key (a client address, an account name) in Django's cache ``limits``:
Redis in the central profile, so every worker and host counts together; local memory in the
gateway profile (one process). The window arithmetic is gateway/core/rate_window.py.

Django's cache has no rate limiter of its own, and django-ratelimit or django-axes would each
bring their own storage and middleware for what is two counters and a subtraction here; the
same code also guards the ingest socket, which neither covers.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from asgiref.sync import sync_to_async
from django.core.cache import caches

from gateway.core.rate_window import Limit, retry_after, window_index
from gateway.logs import log_event

log = logging.getLogger("web.security")

CACHE = "limits"  # the alias in settings.CACHES

# Refusals this process already decided: (kind, who) -> until when (the limiter's clock). A
# flood from an address over its limit then costs a dict lookup per attempt, no trip to Redis
# or to a thread; the shared counts decide again once the wait is over.
_REFUSED_UNTIL: dict[tuple[str, str], float] = {}
_REFUSED_KEPT = 10_000  # many addresses at once: forget them all rather than grow
UNAVAILABLE_LOG_SECONDS = 10.0
_unavailable_logged = [-UNAVAILABLE_LOG_SECONDS]


def _store_failed(error: Exception) -> None:
    """The cache is away (Redis down): the limits are not enforced meanwhile rather than lock
    everyone out; said at warning level, at most every 10 s."""
    now = time.monotonic()
    if now - _unavailable_logged[0] >= UNAVAILABLE_LOG_SECONDS:
        _unavailable_logged[0] = now
        log_event(
            log,
            logging.WARNING,
            "limits_unavailable",
            error=str(error)[:200],
            hint="the cache 'limits' (Redis on the central profile) does not answer: failed "
            "logins and handshakes are not limited until it does; /healthz shows the layer",
        )


def forget_local_refusals() -> None:
    """Forget this process's remembered refusals (tests; the shared counts stay)."""
    _REFUSED_UNTIL.clear()


def _key(kind: str, who: str, index: int) -> str:
    # Hashed: an account name or address of any length or bytes makes a short, safe key.
    digest = hashlib.sha256(who.encode(errors="replace")).hexdigest()[:32]
    return f"{kind}:{digest}:{index}"


class FailureLimiter:
    """``kind``'s failures per key under ``limit``; ``clock`` is for tests."""

    def __init__(self, kind: str, limit: Limit, clock=time.time) -> None:
        self.kind = kind
        self.limit = limit
        self.clock = clock

    def remembered(self, who: str) -> int | None:
        """The wait of a refusal this process decided and that still holds, else None."""
        until = _REFUSED_UNTIL.get((self.kind, who))
        if until is None:
            return None
        now = self.clock()
        if now < until:
            return max(1, math.ceil(until - now))
        _REFUSED_UNTIL.pop((self.kind, who), None)
        return None

    def refused_for(self, who: str) -> int | None:
        """None while ``who`` may try again; else the seconds it must wait."""
        wait = self.remembered(who)
        if wait is not None:
            return wait
        now = self.clock()
        index = window_index(now, self.limit)
        keys = [_key(self.kind, who, index - 1), _key(self.kind, who, index)]
        try:
            counts = caches[CACHE].get_many(keys)
        except Exception as error:
            _store_failed(error)
            return None
        previous, current = (int(counts.get(key, 0)) for key in keys)
        wait = retry_after(previous, current, now, self.limit)
        if wait is not None:
            if len(_REFUSED_UNTIL) >= _REFUSED_KEPT:
                _REFUSED_UNTIL.clear()
            _REFUSED_UNTIL[(self.kind, who)] = now + wait
        return wait

    def failed(self, who: str) -> None:
        """Count one failure of ``who`` in the current window (kept for two windows)."""
        key = _key(self.kind, who, window_index(self.clock(), self.limit))
        cache = caches[CACHE]
        keep = int(self.limit.seconds * 2) + 1
        try:
            # add() is atomic (SET NX in Redis), and so is incr (INCRBY): workers do not race.
            cache.add(key, 0, timeout=keep)
            try:
                cache.incr(key)
            except ValueError:  # expired between the two calls: start again
                cache.add(key, 1, timeout=keep)
        except Exception as error:
            _store_failed(error)

    def forget(self, who: str) -> None:
        _REFUSED_UNTIL.pop((self.kind, who), None)
        index = window_index(self.clock(), self.limit)
        try:
            caches[CACHE].delete_many(
                [_key(self.kind, who, index - 1), _key(self.kind, who, index)]
            )
        except Exception as error:
            _store_failed(error)

    # For consumers: Redis is network I/O, so it runs in a thread of the default pool, never in
    # the one thread that serialises the database calls (thread_sensitive would queue a flood's
    # checks behind, and in front of, a legitimate gateway's).
    async def arefused_for(self, who: str) -> int | None:
        wait = self.remembered(who)
        if wait is not None:
            return wait
        return await sync_to_async(self.refused_for, thread_sensitive=False)(who)

    async def afailed(self, who: str) -> None:
        await sync_to_async(self.failed, thread_sensitive=False)(who)
