"""Waiting that a stop signal interrupts at once (I/O shell).

The handlers only record the signal; ``signal.set_wakeup_fd`` wakes any ``select`` in
progress, and the wait raises ``StopRequested``, so the caller unwinds through its
``finally`` blocks and cleans up (socat, symlinks) in one place. A second signal during that
clean-up is recorded and otherwise ignored: the clean-up is bounded and must finish.
"""

import os
import select
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequested(Exception):
    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class SignalWaiter:
    def __init__(self) -> None:
        self.signum: int | None = None
        self._raised = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._previous: dict[int, object] = {}
        self._previous_wakeup_fd: int | None = None

    def install(self) -> None:
        """Take over SIGINT, SIGTERM and SIGHUP (main thread only)."""
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._record)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()
        if self._previous_wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            self._previous_wakeup_fd = None
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _record(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum

    def check(self) -> None:
        """Raise ``StopRequested`` if a stop signal arrived (once: clean-up is not interrupted)."""
        if self.signum is not None and not self._raised:
            self._raised = True
            raise StopRequested(self.signum)

    def wait(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or until a stop signal (then raise ``StopRequested``)."""
        self.check()
        if timeout > 0:
            ready, _, _ = select.select([self._wake_r], [], [], timeout)
            if ready:
                self._drain_wakeups()
        self.check()

    def wait_writable(self, fd: int, timeout: float) -> bool:
        """Wait until ``fd`` accepts a write (True), ``timeout`` passes (False) or a stop signal."""
        self.check()
        ready_r, ready_w, _ = select.select([self._wake_r], [fd], [], timeout)
        if ready_r:
            self._drain_wakeups()
        self.check()
        return bool(ready_w)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass
