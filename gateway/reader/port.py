"""Opening the serial port: a device path or any pyserial URL, without losing buffered input.

pyserial flushes the input buffer when it opens a port (``tcflush(TCIFLUSH)`` in
``Serial.open``; the ``socket://`` handler reads and discards). For a gateway that is data
loss: whatever the device sent while the reader was restarting sits in that buffer.
:class:`KeepInputOnOpen` skips that one flush.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import serial

READ_SIZE = 65536
PIPE_READ_SIZE = 256 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
RELAY_SCRIPT = str(Path(__file__).with_name("relay.py"))
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


class ChunkReader:
    """``reader(timeout)``: the next bytes from the port, b"" after ``timeout`` s of silence.

    It raises ``serial.SerialException`` (an ``OSError``) when the port is gone. ``close()``
    stops reading from the port and returns what was read but not returned yet.
    """

    gathers = False  # whether a small read already waited for more (see portreader)

    def __call__(self, timeout: float) -> bytes:
        raise NotImplementedError

    def gather(self, seconds: float) -> None:
        """Gather a trickle this long from now on (readers that gather themselves)."""

    def close(self) -> bytes:
        return b""


class RelayedReader(ChunkReader):
    """A POSIX device read through :mod:`gateway.reader.relay`, a process of its own, which
    drains the device into a pipe while this process is busy storing (see that module)."""

    gathers = True
    PIPE_BYTES = 1 << 20  # the pipe's capacity (Linux allows up to 1 MiB unprivileged)
    DRAIN_SECONDS = 5.0

    def __init__(self, fd: int, gather_seconds: float | None = None) -> None:
        data_r, data_w = os.pipe()
        stop_r, stop_w = os.pipe()
        try:
            with contextlib.suppress(OSError):  # a smaller pipe only stalls the relay sooner
                fcntl.fcntl(data_w, F_SETPIPE_SZ, self.PIPE_BYTES)
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", RELAY_SCRIPT, str(fd), str(data_w), str(stop_r)]
                + ([repr(gather_seconds)] if gather_seconds is not None else []),
                pass_fds=(fd, data_w, stop_r),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except BaseException:
            for end in (data_r, data_w, stop_r, stop_w):
                os.close(end)
            raise
        os.close(data_w)
        os.close(stop_r)
        # Reads land here and are copied out at their size: a fresh 256 KiB bytes object per
        # read would be an mmap, an mremap and an munmap (glibc maps allocations that large)
        # 33 times a second at a trickle.
        self._buffer = bytearray(PIPE_READ_SIZE)
        self._data = data_r
        self._stop = stop_w
        self.pid = self._process.pid

    def __call__(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self._data], [], [], timeout)
        if not ready:
            return b""
        size = os.readv(self._data, [self._buffer])
        if size:
            return bytes(memoryview(self._buffer)[:size])
        # The relay ended by itself: the device is gone; it said why on stderr.
        self._process.wait()
        reason = self._process.stderr.read().decode(errors="replace").strip()
        raise serial.SerialException(reason or f"serial relay exited ({self._process.returncode})")

    def gather(self, seconds: float) -> None:
        """Tell the relay (on its stop pipe, which it reads to its end to stop)."""
        if self._stop is not None:
            with contextlib.suppress(OSError):  # a relay that ended: the next read says why
                os.write(self._stop, b"%.3f\n" % seconds)

    def close(self) -> bytes:
        """Stop the relay between two reads and drain what it relayed; end the process."""
        if self._stop is not None:
            os.close(self._stop)
            self._stop = None
        pieces = []
        deadline = time.monotonic() + self.DRAIN_SECONDS
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._data], [], [], deadline - time.monotonic())
            if not ready:
                break
            piece = os.read(self._data, PIPE_READ_SIZE)
            if not piece:
                break
            pieces.append(piece)
        os.close(self._data)
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._process.stderr.close()
        return b"".join(pieces)


class PolledReader(ChunkReader):
    """Through pyserial's ``read`` (URL handlers, opened with ``timeout=0``): poll.

    Their ``in_waiting`` means different things (``socket://`` says 0 or 1), so ask for
    everything at once without blocking, and look again every 10 ms until ``timeout``.
    """

    def __init__(self, port: serial.SerialBase) -> None:
        self._port = port

    def __call__(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            data = self._port.read(READ_SIZE)
            if data or time.monotonic() >= deadline:
                return data
            time.sleep(URL_POLL_SECONDS)


def chunk_reader(port: serial.SerialBase, gather_seconds: float | None = None) -> ChunkReader:
    """How to read ``port``: a relay process for a POSIX device (gathering a trickle for
    ``gather_seconds``, else the relay's default), polling for a URL handler."""
    if isinstance(port, serial.Serial) and port.fd is not None:
        return RelayedReader(port.fd, gather_seconds)
    return PolledReader(port)
