"""Progress over a backlog: a tqdm bar on a terminal, else a log line every few seconds.

With the bar on, log lines go through ``tqdm.write`` (tqdm's logging redirect) so they do not
tear the bar, and per-batch lines drop to debug: the bar says the same thing.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time

from gateway.logs import log_event

log = logging.getLogger("gateway.uploader")


class Progress:
    def __init__(self, *, bar: bool, interval: float) -> None:
        self.interval = interval
        self.done = 0
        self.bytes = 0
        self.pending = 0
        self.bar = bar
        self._lock = threading.Lock()
        self._bar = None
        self._redirect = contextlib.ExitStack()
        self._started = time.monotonic()
        self._next_line = self._started + interval

    @property
    def batch_log_level(self) -> int:
        return logging.DEBUG if self.bar else logging.INFO

    def backlog(self, pending: int) -> None:
        """What a scan found still to do; the bar's total is what is done plus that."""
        with self._lock:
            self.pending = pending
            if not self.bar:
                return
            if self._bar is None and pending:
                from tqdm import tqdm
                from tqdm.contrib.logging import logging_redirect_tqdm

                self._bar = tqdm(
                    total=pending,
                    unit="batch",
                    file=sys.stderr,
                    dynamic_ncols=True,
                    mininterval=0.2,
                )
                self._redirect.enter_context(logging_redirect_tqdm())
            elif self._bar is not None:
                self._bar.total = self.done + pending
                self._bar.refresh()

    def advance(self, size: int) -> None:
        with self._lock:
            self.done += 1
            self.bytes += size
            self.pending = max(0, self.pending - 1)
            if self._bar is not None:
                self._bar.update(1)

    def tick(self, now: float) -> None:
        """A progress log line when one is due and there is a backlog (no bar)."""
        if self.bar or now < self._next_line:
            return
        self._next_line = now + self.interval
        with self._lock:
            if not self.pending:
                return
            elapsed = max(now - self._started, 1e-9)
            log_event(
                log,
                logging.INFO,
                "upload_progress",
                done=self.done,
                pending=self.pending,
                bytes=self.bytes,
                batches_per_second=round(self.done / elapsed, 2),
            )

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            self._redirect.close()
