"""Opening the serial port: a device path or any pyserial URL, without losing buffered input.

pyserial flushes the kernel's input buffer when it opens a port (``tcflush(TCIFLUSH)`` in
``Serial.open``). For a gateway that is data loss: whatever the device sent while the reader
was restarting sits in that buffer. :class:`KeepInputSerial` skips that one flush.
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


class KeepInputSerial(serial.Serial):
    """pyserial's POSIX ``Serial``, except that ``open`` keeps the bytes already buffered."""

    _opening = False

    def open(self) -> None:
        self._opening = True
        try:
            super().open()
        finally:
            self._opening = False

    def _reset_input_buffer(self) -> None:
        if not self._opening:
            super()._reset_input_buffer()


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
    else:
        # exclusive: a second reader on the same device would steal half the bytes.
        port = KeepInputSerial(exclusive=True, **options)
        port.port = url
    port.open()
    return port
