"""The virtual serial port: a socat PTY pair, its symlinks, and our two fds on it (I/O shell).

::

    simulator --write--> device end (private PTY) --socat -U--> gateway end (PTY) --> reader
                                                                  ^ PATH links here

socat runs ``-U`` (one way, second address to first): it creates the gateway end first and,
when waiting for a reader, stays in ``wait-slave`` until a process opens it; only then does
it create the device end. So the device link appearing means "a reader has the port open".

How much the reader has not read yet: a PTY has no output queue (TIOCOUTQ on the device end
is always 0 on Linux), so we count what we wrote, subtract what socat wrote on
(``wchar`` in ``/proc/PID/io``), and add what waits at the gateway end (FIONREAD on an fd we
open there and never read from, except to count a tail nobody read).
"""

import ctypes
import errno
import fcntl
import os
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable

SOCAT = "socat"
SOCAT_BLOCK_SIZE = 65536
SOCAT_START_TIMEOUT = 5.0  # for socat to create a link it is not waiting on a reader for
SOCAT_STOP_TIMEOUT = 2.0  # after SIGTERM, before SIGKILL
LINK_POLL_INTERVAL = 0.002
READER_POLL_INTERVAL = 0.005  # while waiting (without a time limit) for a reader
# How often socat checks whether a reader opened the gateway end (its default is 1 s).
WAIT_SLAVE_INTERVAL = "0.005"
PR_SET_PDEATHSIG = 1


class LinkError(RuntimeError):
    """socat failed or vanished; the message says which and how."""


def _die_with_parent() -> None:  # runs in the forked child, before exec
    # If the simulator is killed outright (SIGKILL), socat gets SIGTERM and removes its links.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _queued_input(fd: int) -> int:
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


class SocatLink:
    """One socat process at a time ("plugged"), always at the same ``link`` path."""

    def __init__(
        self,
        link: str,
        workdir: str,
        wait_for_reader: bool,
        wait: Callable[[float], None],
        note: Callable[[str], None],
    ):
        self.link = link
        self.workdir = workdir
        self.wait_for_reader = wait_for_reader
        self._wait = wait
        self._note = note
        self.process: subprocess.Popen[bytes] | None = None
        self.device_path: str | None = None
        self.device_fd: int | None = None
        self.watch_fd: int | None = None
        self._generation = 0
        self._written = 0  # bytes written to the device end since this socat started
        self._wchar_base = 0

    @property
    def plugged(self) -> bool:
        return self.process is not None

    def _command(self) -> list[str]:
        gateway = f"pty,raw,echo=0,link={self.link}"
        if self.wait_for_reader:
            gateway += f",wait-slave,pty-interval={WAIT_SLAVE_INTERVAL}"
        device = f"pty,raw,echo=0,link={self.device_path}"
        return [SOCAT, "-U", "-b", str(SOCAT_BLOCK_SIZE), gateway, device]

    def plug(self) -> None:
        """Start socat; return once both ends exist (and a reader opened the port, if waiting)."""
        self._generation += 1
        self.device_path = os.path.join(self.workdir, f"device-{self._generation}")
        log_path = os.path.join(self.workdir, "socat.log")
        with open(log_path, "ab") as log:
            try:
                self.process = subprocess.Popen(
                    self._command(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,  # a terminal's Ctrl-C reaches us, not socat
                    preexec_fn=_die_with_parent,
                )
            except FileNotFoundError:
                raise LinkError(
                    f"{SOCAT} not found on PATH; install it (apt-get install socat)"
                ) from None
        self._wait_for_link(self.link, SOCAT_START_TIMEOUT)
        if self.wait_for_reader:
            self._note(f"waiting for a reader to open {self.link}")
        self._wait_for_link(self.device_path, None if self.wait_for_reader else SOCAT_START_TIMEOUT)
        flags = os.O_NOCTTY | os.O_NONBLOCK
        self.device_fd = os.open(self.device_path, os.O_WRONLY | flags)
        self.watch_fd = os.open(self.link, os.O_RDONLY | flags)
        self._written = 0
        self._wchar_base = self._socat_wchar() or 0

    def _wait_for_link(self, path: str, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not os.path.islink(path):
            self._raise_if_socat_exited(f"before creating {path}")
            if deadline is not None and time.monotonic() >= deadline:
                raise LinkError(f"socat did not create {path} within {timeout:g} s")
            self._wait(LINK_POLL_INTERVAL if deadline is not None else READER_POLL_INTERVAL)

    def _raise_if_socat_exited(self, when: str) -> None:
        assert self.process is not None
        status = self.process.poll()
        if status is None:
            return
        self.process = None
        raise LinkError(f"socat exited with status {status} {when}: {self._socat_log_tail()}")

    def _socat_log_tail(self) -> str:
        try:
            with open(os.path.join(self.workdir, "socat.log"), "rb") as log:
                lines = log.read().decode(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return lines[-1] if lines else "(no message)"

    def write_some(self, data: memoryview) -> int:
        """Write what the device end takes now (0 if it is full)."""
        assert self.device_fd is not None
        try:
            count = os.write(self.device_fd, data)
        except BlockingIOError:
            return 0
        except OSError as error:
            # EIO: socat is gone (killed from outside?), so the port is gone too.
            self._raise_if_socat_exited("while the simulator was writing")
            raise LinkError(f"writing to {self.device_path} failed: {error}") from None
        self._written += count
        return count

    def check_alive(self) -> None:
        self._raise_if_socat_exited("while the port was up")

    def _socat_wchar(self) -> int | None:
        assert self.process is not None
        try:
            with open(f"/proc/{self.process.pid}/io", "rb") as io:
                for line in io:
                    if line.startswith(b"wchar:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return None

    def unread_bytes(self) -> int:
        """Bytes written that the reader has not read yet, as far as the kernel shows them."""
        assert self.watch_fd is not None
        wchar = self._socat_wchar()
        in_socat = 0 if wchar is None else max(self._written - (wchar - self._wchar_base), 0)
        return in_socat + _queued_input(self.watch_fd)

    def take_unread(self) -> int:
        """Read what waits at the gateway end ourselves; return how many bytes that was."""
        assert self.watch_fd is not None
        taken = 0
        while True:
            try:
                chunk = os.read(self.watch_fd, 65536)
            except BlockingIOError:
                return taken
            except OSError as error:
                if error.errno == errno.EIO:
                    return taken
                raise
            if not chunk:
                return taken
            taken += len(chunk)

    def unplug(self) -> None:
        """Close our fds, stop socat (the port vanishes) and make sure both links are gone."""
        for name in ("device_fd", "watch_fd"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                os.close(fd)
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # socat removes its links on SIGTERM
            try:
                process.wait(SOCAT_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for path in (self.link, self.device_path):
            if path is not None and os.path.islink(path):
                os.unlink(path)
