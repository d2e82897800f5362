"""Opening the serial port: a device path or any pyserial URL, without losing buffered input.

pyserial flushes the input buffer when it opens a port (``tcflush(TCIFLUSH)`` in
``Serial.open``; the ``socket://`` handler reads and discards). For a gateway that is data
loss: whatever the device sent while the reader was restarting sits in that buffer.
:class:`KeepInputOnOpen` skips that one flush.
"""

from __future__ import annotations

import serial

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
    timeout: float = 0.2,
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
