"""The site's own counters (ingest refusals and rejects by reason, viewer drops), summed over
every worker process, for ``/metrics``; ``/fleet/counters.json`` shows one worker's share.

A consumer counts in memory (:meth:`SharedCounters.add`: a dict update under a lock, cheap
enough for the per-frame path); a thread of the worker adds what it counted to the shared store
every ``FLUSH_SECONDS``, and ``/metrics`` flushes its own worker's first. The store is Django's
cache ``counters``: Redis in the central profile, where INCRBY is atomic, so the additions of
all workers sum, whether they are ``serve --workers N`` on one host or processes on several
behind a proxy; local memory in the gateway profile (one process, and nothing written to the SD
card). A worker that dies loses at most its last ``FLUSH_SECONDS`` of counts.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from django.core.cache import caches

from gateway.core import stream_protocol as protocol
from gateway.logs import log_event

log = logging.getLogger("web.counters")

CACHE = "counters"  # the alias in settings.CACHES
FLUSH_SECONDS = 1.0


def refusal_name(code: int) -> str:
    """``ingest_refused_wrong_token`` for 4403: one counter per close code that refuses."""
    return "ingest_refused_" + protocol.CLOSE_CODES[code].replace(" ", "_")


REFUSED = {code: refusal_name(code) for code in sorted(protocol.CLOSE_CODES_NEEDING_AN_OPERATOR)}
REJECTED = {kind: f"ingest_rejected_{kind}" for kind in ("malformed", "too_large")}
FRAMES = "ingest_frames"
VIEWERS = "viewers_connected"
DROPPED = "viewer_frames_dropped"  # held back: the oldest waiting frame made way for a newer one
LOST_UPSTREAM = "viewer_frames_lost_upstream"  # gaps in the numbering: the channel layer's
LOGIN_FAILED = "login_failed"
LOGIN_THROTTLED = "login_refused_rate_limited"  # over a client's or an account's limit
VIEWER_REFUSED_ORIGIN = "viewer_refused_origin"  # a socket opened from another origin
VIEWER_REJECTED = "viewer_rejected"  # a viewer sent what is not an ack (closed with a code)
TOKEN_CLOSED = "ingest_closed_token_invalid"  # an open socket whose token was revoked/rotated
CONSUMER_ERRORS = "consumer_errors"  # a bug: an exception in a consumer (logged, closed 1011)
# Every name there is: a cache cannot list its keys, so the reader asks for these.
NAMES = frozenset(
    {
        *REFUSED.values(),
        *REJECTED.values(),
        FRAMES,
        VIEWERS,
        DROPPED,
        LOST_UPSTREAM,
        LOGIN_FAILED,
        LOGIN_THROTTLED,
        VIEWER_REFUSED_ORIGIN,
        VIEWER_REJECTED,
        TOKEN_CLOSED,
        CONSUMER_ERRORS,
    }
)


class SharedCounters:
    def __init__(self, alias: str = CACHE, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.alias = alias
        self.flush_seconds = flush_seconds
        self.local: Counter[str] = Counter()  # this process's counts since it started
        self._pending: Counter[str] = Counter()  # not yet added to the shared store
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._failing = False

    def add(self, name: str, count: int = 1) -> None:
        if name not in NAMES:
            raise KeyError(f"{name!r} is not one of the site's counters")
        with self._lock:
            self.local[name] += count
            self._pending[name] += count
            if self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_forever, name="counters", daemon=True
                )
                self._flusher.start()

    def __getitem__(self, name: str) -> int:
        return self.local[name]

    def flush(self) -> None:
        """Add what this process counted since the last flush to the shared store. Raises
        what the store raises; the counts are kept for the next try."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        cache = caches[self.alias]
        try:
            while pending:
                name, count = next(iter(pending.items()))
                try:
                    cache.incr(name, count)
                except ValueError:  # the first count ever: add() is atomic (SET NX)
                    cache.add(name, 0, timeout=None)
                    cache.incr(name, count)
                del pending[name]
        finally:
            if pending:
                with self._lock:
                    self._pending.update(pending)

    def totals(self) -> dict[str, int]:
        """Every counter summed over the workers (this one's pending counts included)."""
        self.flush()
        stored = caches[self.alias].get_many(sorted(NAMES))
        return {name: int(stored.get(name, 0)) for name in sorted(NAMES)}

    def clear(self) -> None:
        """Forget every count, here and in the store (tests)."""
        with self._lock:
            self.local.clear()
            self._pending.clear()
        caches[self.alias].delete_many(sorted(NAMES))

    def _flush_forever(self) -> None:
        wake = threading.Event()
        while not wake.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception as error:  # the store is away: the counts wait here
                if not self._failing:
                    log_event(log, logging.WARNING, "counters_not_flushed", error=str(error))
                self._failing = True
            else:
                if self._failing:
                    log_event(log, logging.INFO, "counters_flushed_again")
                self._failing = False


COUNTERS = SharedCounters()
