"""systemd's notify protocol (READY, WATCHDOG, STATUS, STOPPING) through ``sdnotify``.

Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op. ``WATCHDOG_USEC`` is systemd's
own protocol variable, set by the service manager, not a fieldgate setting.
"""

from __future__ import annotations

import os
import time

import sdnotify


class Notifier:
    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._notifier = sdnotify.SystemdNotifier() if self.enabled else None
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        watched = usec and usec.isdigit() and (not pid or pid == str(os.getpid()))
        # Ping at half the timeout, as sd_watchdog_enabled(3) recommends.
        self.watchdog_interval = int(usec) / 2e6 if watched else None
        self._last_ping = 0.0

    def send(self, message: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(message)

    def ready(self, status: str = "") -> None:
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog(self, now: float | None = None) -> None:
        """Ping the watchdog if it is on and half its timeout has passed."""
        if self.watchdog_interval is None:
            return
        now = time.monotonic() if now is None else now
        if now - self._last_ping >= self.watchdog_interval:
            self.send("WATCHDOG=1")
            self._last_ping = now

    def seconds_until_watchdog(self, now: float) -> float | None:
        if self.watchdog_interval is None:
            return None
        return max(0.0, self._last_ping + self.watchdog_interval - now)
