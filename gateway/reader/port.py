"""Opening the serial port: a device path or any pyserial URL, without losing buffered input.

pyserial flushes the input buffer when it opens a port (``tcflush(TCIFLUSH)`` in
``Serial.open``; the ``socket://`` handler reads and discards). For a gateway that is data
loss: whatever the device sent while the reader was restarting sits in that buffer.
:class:`KeepInputOnOpen` skips that one flush.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable

import serial

READ_SIZE = 65536
URL_POLL_SECONDS = 0.01

PARITIES = {
    "none": serial.PARITY_NONE,
    "even": serial.PARITY_EVEN,
    "odd": serial.PARITY_ODD,
    "mark": serial.PARITY_MARK,
    "space": serial.PARITY_SPACE,
}


class KeepInputOnOpen:
    """Mixin for a pyserial port class: ``open`` keeps the bytes already buffered.

    pyserial's POSIX ``Serial.open`` calls ``_reset_input_buffer``; the ``socket://`` handler
    calls ``reset_input_buffer`` (reading and discarding whatever the peer already sent).
    Both are skipped while opening and work as usual afterwards.
    """

    _opening = False

    def open(self) -> None:
        self._opening = True
        try:
            super().open()
        finally:
            self._opening = False

    def reset_input_buffer(self) -> None:
        if not self._opening:
            super().reset_input_buffer()

    def _reset_input_buffer(self) -> None:
        if not self._opening:
            super()._reset_input_buffer()


class KeepInputSerial(KeepInputOnOpen, serial.Serial):
    """pyserial's ``Serial`` (POSIX) that keeps buffered input when it opens."""


_keep_input_classes: dict[type, type] = {serial.Serial: KeepInputSerial}


def keep_input_class(port_class: type) -> type:
    """``port_class`` with :class:`KeepInputOnOpen` mixed in (made once per class)."""
    if port_class not in _keep_input_classes:
        _keep_input_classes[port_class] = type(
            f"KeepInput{port_class.__name__}", (KeepInputOnOpen, port_class), {}
        )
    return _keep_input_classes[port_class]


def open_port(
    url: str,
    *,
    baud: int = 115200,
    bytesize: int = 8,
    parity: str = "none",
    stopbits: float = 1,
    flow_control: str = "none",
    timeout: float = 0,
) -> serial.SerialBase:
    """Open ``url`` (a device path, or ``socket://``, ``rfc2217://``, ``loop://``, ...).

    Raises ``serial.SerialException`` (an ``OSError``) when the port is missing or busy.
    """
    options = dict(
        baudrate=baud,
        bytesize=bytesize,
        parity=PARITIES[parity],
        stopbits=stopbits,
        rtscts=flow_control == "rtscts",
        dsrdtr=flow_control == "dsrdtr",
        xonxoff=flow_control == "xonxoff",
        timeout=timeout,
    )
    if "://" in url:
        port = serial.serial_for_url(url, do_not_open=True, **options)
        port.__class__ = keep_input_class(type(port))
    else:
        # exclusive: a second reader on the same device would steal half the bytes.
        port = KeepInputSerial(exclusive=True, **options)
        port.port = url
    port.open()
    return port


def chunk_reader(port: serial.SerialBase) -> Callable[[float], bytes]:
    """A function that returns the next bytes from ``port``, waiting up to ``timeout`` s.

    It returns b"" when the port stayed silent and raises ``serial.SerialException`` (an
    ``OSError``) when the port is gone. For a POSIX device it is one ``select`` and one
    ``os.read`` of up to 64 KiB on pyserial's own descriptor: pyserial's ``read`` loop costs
    several times that per call, which is what limits a Python reader at high rates.
    """
    fd = port.fd if isinstance(port, serial.Serial) else None
    if fd is None:
        return lambda timeout: _read_any(port, timeout)

    def read_fd(timeout: float) -> bytes:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return b""
        if not data:
            # A vanished device (unplugged USB adapter, closed PTY) reads as ready but empty.
            raise serial.SerialException(
                "device reports readiness to read but returned no data (device disconnected?)"
            )
        return data

    return read_fd


def _read_any(port: serial.SerialBase, timeout: float) -> bytes:
    """Through pyserial's ``read`` (URL handlers, opened with ``timeout=0``): poll.

    Their ``in_waiting`` means different things (``socket://`` says 0 or 1), so ask for
    everything at once without blocking, and look again every 10 ms until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        data = port.read(READ_SIZE)
        if data or time.monotonic() >= deadline:
            return data
        time.sleep(URL_POLL_SECONDS)
