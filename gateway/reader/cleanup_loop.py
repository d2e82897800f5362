"""The reader's cleanup thread: disk budget and retention, checked off the main loop."""

from __future__ import annotations

import logging
import threading

from gateway.settings import Settings

log = logging.getLogger("gateway.reader")  # the reader's logger: its lines say "reader"


#: While a limit stops storing, check this often (not every GATEWAY_CLEANUP_SECONDS): storing
#: resumes about this long after space returns or uploads make room.
REFUSING_CHECK_SECONDS = 1.0


class CleanupLoop(threading.Thread):
    """Runs cleanup every GATEWAY_CLEANUP_SECONDS (and at once when asked) off the main loop;
    every ``REFUSING_CHECK_SECONDS`` while a limit stops storing.

    It only deletes sealed batches and old quarantine files, never the open ``.part``, so it
    needs no lock with the store; ``stop_accepting`` tells the main loop to store no rows.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="cleanup", daemon=True)
        self.settings = settings
        self._stop_accepting = False
        self._asked = threading.Event()  # a check was asked for and has not answered yet
        self.runs = 0
        self.deleted = 0
        self.last_error = ""
        self._wake = threading.Event()
        self._stop_event = threading.Event()

    @property
    def stop_accepting(self) -> bool:
        """Whether a limit stops storing, as the last check found. While a check asked for
        since (the disk took writes again) has not answered, that answer is stale: False."""
        return self._stop_accepting and not self._asked.is_set()

    def check_now(self) -> None:
        self._asked.set()
        self._wake.set()

    def stop(self) -> None:
        self._stop_event.set()
        self._wake.set()

    def run(self) -> None:
        from gateway.store.cleanup import run_cleanup

        while not self._stop_event.is_set():
            asked = self._asked.is_set()
            try:
                result = run_cleanup(self.settings, was_stopping=self._stop_accepting)
                self._stop_accepting = result.stop_accepting
                self.deleted += len(result.deleted)
                self.last_error = "; ".join(result.errors)
            except Exception as error:  # a failed check must not stop reading; retry later
                if str(error) != self.last_error:  # once per new error, not every second
                    log.exception("cleanup check failed")
                self.last_error = str(error)
            self.runs += 1
            if asked:
                self._asked.clear()
            wait = self.settings.cleanup_seconds
            if self._stop_accepting:
                wait = min(wait, REFUSING_CHECK_SECONDS)
            self._wake.wait(wait)
            self._wake.clear()
