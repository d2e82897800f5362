"""The thread that owns the serial port: read, hand over, reopen after a loss.

It does nothing but move bytes into the :class:`Handoff`, so a slow disk or network can never
stall the port. Losing the port (an unplugged USB adapter shows up as EIO, or as "ready to read
but returned no data"), or not finding it at start, is a normal event: the handle is closed and
the same path is retried with a capped exponential backoff until it returns.

A device is read through a relay process (:mod:`gateway.reader.relay`) that drains it into a
pipe even while this process is busy storing; this thread reads that pipe.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable

import serial

from gateway.core.backoff import Backoff, Jitter
from gateway.logs import log_event
from gateway.reader.handoff import Handoff, PortLost, PortOpened
from gateway.reader.port import chunk_reader

log = logging.getLogger("gateway.reader.port")

# Ports read by polling (URL handlers; a device gathers in its relay, gateway/reader/relay.py):
# reads smaller than this wait GATEWAY_GATHER_SECONDS for more, as the relay does.
GATHER_BELOW_BYTES = 1024
FLOOD_HAND_OFF_BYTES = 256 * 1024
FLOOD_HAND_OFF_SECONDS = 0.005
# When the writer is GATEWAY_QUEUE_BYTES behind, wait this long for it before dropping.
FULL_WAIT_SECONDS = 0.05
READ_TIMEOUT = 0.2  # how often the thread looks at its stop flag while the port is silent
# While the port stays unavailable, the warning is said again this often, with the attempts.
UNAVAILABLE_REPEAT_SECONDS = 300.0

# What to do when opening the port fails, by errno (the log, `gateway status` and metrics).
OPEN_HINTS = {
    errno.EPERM: "the reader's device policy refuses this device: DeviceAllow=char-ttyUSB/"
    "char-ttyACM admits only the drivers loaded when the reader started, so an adapter whose "
    "driver loaded later is refused; load the driver at boot (/etc/modules-load.d/"
    "fieldgate-serial.conf, the role's gateway_serial_modules) and restart the reader, or allow "
    "the device (gateway_reader_device_allow)",
    errno.EACCES: "permission denied: the device must be group dialout, mode 0660 (the udev "
    "rule 90-fieldgate-monitor.rules does it); the reader runs as gateway, in group dialout",
    errno.ENOENT: "no such device: is the monitor plugged in? /dev/monitor exists only while "
    "udev links an adapter (90-fieldgate-monitor.rules); or set GATEWAY_PORT to its "
    "/dev/serial/by-id/ name",
    errno.EBUSY: "another process holds the port",
    errno.ENODEV: "the device went away (unplugged?)",
    errno.ENXIO: "the device went away (unplugged?)",
}
# Refusals that retrying will not cure: said as errors, not warnings.
REFUSED = (errno.EPERM, errno.EACCES)


class PortReader(threading.Thread):
    def __init__(
        self,
        open_port: Callable[[], serial.SerialBase],
        handoff: Handoff,
        *,
        name: str,
        max_backoff: float = 2.0,
        first_backoff: float = 0.05,
        gather_seconds: float = 0.05,
    ) -> None:
        super().__init__(name="port-reader", daemon=True)
        self._open_port = open_port
        self._handoff = handoff
        self._port_name = name
        self._max_backoff = max_backoff
        self._first_backoff = first_backoff
        self._gather_seconds = gather_seconds  # what the reader wants (gather() changes it)
        self._stop_event = threading.Event()
        self._port: serial.SerialBase | None = None
        self.bytes_read = 0
        self.hand_offs = 0  # chunks handed over: bytes_read / hand_offs is the mean read size
        self.is_open = False
        self.open_failures = 0  # attempts to open the port that failed, this run
        # While the port cannot be opened: why, since when, and what to do (None when open).
        self.open_error: dict | None = None

    def gather(self, seconds: float) -> None:
        """Gather a trickle ``seconds`` from the next read on (the writing loop asks for longer
        while nobody watches the live view); this thread passes it on to the relay."""
        self._gather_seconds = seconds

    def stop(self) -> None:
        self._stop_event.set()
        port = self._port
        if port is not None and hasattr(port, "cancel_read"):
            try:
                port.cancel_read()
            except Exception:  # the port may be closing under us; the timeout still ends the read
                pass

    def run(self) -> None:
        backoff = Backoff(self._first_backoff, self._max_backoff, Jitter.NONE)
        failures = 0
        while not self._stop_event.is_set():
            try:
                port = self._open_port()
            except (serial.SerialException, OSError, ValueError) as error:
                failures += 1
                self._open_failed(error, failures)
                self._stop_event.wait(backoff.delay(failures, 0.0))
                continue
            failures = 0
            self.open_error = None
            self._port = port
            self.is_open = True
            self._handoff.put_event(PortOpened(time.time(), self._port_name))
            try:
                self._read_until_lost(port)
            finally:
                self.is_open = False
                self._port = None
                try:
                    port.close()
                except Exception:  # closing a vanished device may fail; the fd is gone anyway
                    pass

    def _open_failed(self, error: Exception, attempts: int) -> None:
        """Count the failed open; say why when the reason is new, and again now and then."""
        self.open_failures += 1
        code = getattr(error, "errno", None)
        now = time.time()
        previous = self.open_error
        same = previous is not None and previous["code"] == code
        if same and now - previous["said_at"] < UNAVAILABLE_REPEAT_SECONDS:
            previous["attempts"] = attempts
            return
        self.open_error = {
            "error": str(error),
            "code": code,
            "hint": OPEN_HINTS.get(code, "the port cannot be opened; retrying"),
            "since": previous["since"] if same else round(now, 3),
            "attempts": attempts,
            "said_at": now,
        }
        log_event(
            log,
            logging.ERROR if code in REFUSED else logging.WARNING,
            "port_unavailable",
            port=self._port_name,
            error=str(error),
            errno=errno.errorcode.get(code, "") if code else "",
            attempts=attempts,
            retry_max_s=self._max_backoff,
            hint=self.open_error["hint"],
        )

    def open_error_status(self) -> dict | None:
        """What the status shows while the port cannot be opened (None while it is open)."""
        error = self.open_error
        if error is None:
            return None
        code = error["code"]
        return {
            "error": error["error"],
            "errno": errno.errorcode.get(code) if code else None,
            "hint": error["hint"],
            "since": error["since"],
            "attempts": error["attempts"],
        }

    def _read_until_lost(self, port: serial.SerialBase) -> None:
        stop = self._stop_event
        read = None
        pieces: list[bytes] = []  # read from the port, not handed over yet
        try:
            gather = self._gather_seconds
            read = chunk_reader(port, gather)
            while not stop.is_set():
                if gather != self._gather_seconds:
                    gather = self._gather_seconds
                    read.gather(gather)
                data = read(READ_TIMEOUT)
                if not data:
                    continue
                pieces = [data]
                if read.gathers:
                    pass  # the relay gathered a trickle; a flood waits in its pipe
                elif len(data) < GATHER_BELOW_BYTES:
                    # A trickle: let it gather for a moment rather than wake the writer for
                    # every few bytes (a device at 1 kHz would cost 1000 wake-ups a second).
                    stop.wait(gather)
                    pieces.append(read(0))
                else:
                    # A flood: keep reading and hand over in big pieces, a few per
                    # millisecond at most, not one per read.
                    size = len(data)
                    deadline = time.monotonic() + FLOOD_HAND_OFF_SECONDS
                    while size < FLOOD_HAND_OFF_BYTES and time.monotonic() < deadline:
                        more = read(FLOOD_HAND_OFF_SECONDS)
                        if not more:
                            break
                        pieces.append(more)
                        size += len(more)
                self._hand_over(b"".join(pieces))
                pieces = []
        except (serial.SerialException, OSError) as error:
            # Probably an I/O problem such as a disconnected USB serial adapter. What was read
            # before it left the kernel: hand it over first, or the device's last lines before
            # the loss would vanish with the port.
            if read is not None:
                pieces.append(read.close())
            if any(pieces):
                self._hand_over(b"".join(pieces))
            self._handoff.put_event(PortLost(time.time(), str(error)))
        else:
            # Stopped: what the relay had taken from the device is handed over; the rest
            # stays in the kernel's buffer for the next reader.
            rest = read.close()
            if rest:
                self._hand_over(rest)

    def _hand_over(self, data: bytes) -> None:
        self.bytes_read += len(data)
        self.hand_offs += 1
        self._handoff.put_data(time.time(), data, wait=FULL_WAIT_SECONDS)
