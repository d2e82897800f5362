"""The reader's cleanup thread: disk budget and retention, checked off the main loop."""

from __future__ import annotations

import logging
import threading

from gateway.settings import Settings

log = logging.getLogger("gateway.reader")  # the reader's logger: its lines say "reader"


class CleanupLoop(threading.Thread):
    """Runs cleanup every GATEWAY_CLEANUP_SECONDS (and at once when asked) off the main loop.

    It only deletes sealed batches and old quarantine files, never the open ``.part``, so it
    needs no lock with the store; ``stop_accepting`` tells the main loop to store no rows.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="cleanup", daemon=True)
        self.settings = settings
        self.stop_accepting = False
        self.runs = 0
        self.deleted = 0
        self.last_error = ""
        self._wake = threading.Event()
        self._stop_event = threading.Event()

    def check_now(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop_event.set()
        self._wake.set()

    def run(self) -> None:
        from gateway.store.cleanup import run_cleanup

        while not self._stop_event.is_set():
            try:
                result = run_cleanup(self.settings)
                self.stop_accepting = result.stop_accepting
                self.deleted += len(result.deleted)
                self.last_error = "; ".join(result.errors)
            except Exception as error:  # a failed check must not stop reading; retry later
                self.last_error = str(error)
                log.exception("cleanup check failed")
            self.runs += 1
            self._wake.wait(self.settings.cleanup_seconds)
            self._wake.clear()
