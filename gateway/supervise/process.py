"""Processes started and stopped on purpose: one way for ``make demo``, ``pytest hil/``, the
soak and crash campaigns and the tests.

A :class:`Service` runs in a session of its own, so its process group is everything it started
that did not leave on purpose (the reader's serial relay, a server's workers). It is stopped by
PID, SIGTERM first, and whatever is left of its group is SIGKILLed after it: nothing outlives
it. A :class:`Supervisor` owns the services of one run and stops them all, newest first, when
its ``with`` block ends, however it ends.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

STOP_SECONDS = 15.0  # how long SIGTERM may take before SIGKILL
GROUP_GRACE_SECONDS = 2.0  # how long the rest of a group may take to follow its leader

T = TypeVar("T")


class Service:
    """One long-running process, restartable; its output goes to ``log_path``, appended across
    starts. :meth:`stop` ends it on purpose, :meth:`kill` is an injected crash, :meth:`wait`
    awaits an exit the caller expects; any other exit is an :meth:`unexpected_exit`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_seconds: float = STOP_SECONDS,
    ) -> None:
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.log_path = log_path
        self.env = dict(env or {})
        self.cwd = cwd
        self.user = user  # run as this user (a server that refuses root)
        self.stop_seconds = stop_seconds
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0  # time.monotonic() when the current process started
        self.starts = 0
        self._log_offset = 0  # where the current process's output begins in the log
        self._group: int | None = None  # the current process's group, until it is empty
        self._exit_expected = False

    def __repr__(self) -> str:
        return f"<Service {self.name} pid {self.pid}>"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def poll(self) -> int | None:
        """The exit status, or None while it runs (or before it started)."""
        return self.process.poll() if self.process else None

    def start(self) -> Service:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._end_group()  # whatever the previous process left
        identity = {}
        if self.user is not None:
            account = pwd.getpwnam(self.user)
            identity = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        with open(self.log_path, "ab") as log:
            log.write(f"--- {self.name} start {self.starts + 1} at {time.ctime()}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self.process = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group; a terminal's Ctrl-C is not for it
                **identity,
            )
        self._group = self.process.pid
        self.started_at = time.monotonic()
        self.starts += 1
        self._exit_expected = False
        return self

    def wait(self, timeout: float | None = None) -> int:
        """Wait for an exit the caller expects (a command that finishes): its status. Raises
        ``subprocess.TimeoutExpired`` if it still runs after ``timeout`` seconds."""
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        status = self.process.wait(timeout)
        self._exit_expected = True
        self._end_group()
        return status

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM and wait up to ``timeout`` seconds (default ``stop_seconds``), then SIGKILL
        its whole group. The exit status; None if it had to be killed or never started."""
        if self.process is None:
            return None
        self._exit_expected = True
        status = self.process.poll()
        if status is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                status = self.process.wait(self.stop_seconds if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # not reaped yet: still its group
                self.process.wait()
                status = None
        self._end_group()
        return status

    def kill(self) -> int | None:
        """An injected crash: SIGKILL to the process alone, as the kernel's OOM killer sends
        it; what it started gets a moment to notice and end as after a real crash (the
        reader's relay does), then is SIGKILLed too. The exit status (None if never started)."""
        if self.process is None:
            return None
        self._exit_expected = True
        if self.process.poll() is None:
            self.process.kill()
        status = self.process.wait()
        self._end_group()
        return status

    def unexpected_exit(self) -> str | None:
        """Says so, once, if the process ended without :meth:`stop`, :meth:`kill` or
        :meth:`wait`: its status and the last lines of its log."""
        if self.process is None or self._exit_expected or self.process.poll() is None:
            return None
        self._exit_expected = True
        return (
            f"{self.name} (pid {self.process.pid}) exited by itself with status "
            f"{self.process.returncode}; last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def log(self) -> str:
        """What the current (or last) process wrote so far."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def _end_group(self) -> None:
        """After the leader's exit: give the rest of its group a moment to end by itself, then
        SIGKILL what is left and see it go. A group with a member left keeps its id."""
        if self._group is None:
            return
        group, self._group = self._group, None
        if _group_ended(group, GROUP_GRACE_SECONDS):
            return
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            return  # it just ended
        _group_ended(group, GROUP_GRACE_SECONDS)


def _group_ended(group: int, timeout: float) -> bool:
    """Whether process group ``group`` is empty, or became so within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


class Supervisor:
    """The services of one run, in the order they were made: :meth:`unexpected_exits` checks
    them all, :meth:`stop_all` stops them newest first (a gateway before the servers it talks
    to). As a context manager it leaves nothing running, even when the block raises."""

    def __init__(self, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        self.services: list[Service] = []

    def service(self, name: str, argv: Sequence[str], **options) -> Service:
        """A service of this run, not started yet, logging to ``LOG_DIR/NAME.log`` (the
        second of a name to ``NAME-2.log``...). ``options`` are :class:`Service`'s."""
        taken = sum(1 for service in self.services if service.name == name)
        log_name = f"{name}-{taken + 1}.log" if taken else f"{name}.log"
        service = Service(name, argv, self.log_dir / log_name, **options)
        self.services.append(service)
        return service

    def start(self, name: str, argv: Sequence[str], **options) -> Service:
        return self.service(name, argv, **options).start()

    def unexpected_exits(self) -> list[str]:
        """One message per service that ended by itself since the last check."""
        return [message for s in self.services if (message := s.unexpected_exit())]

    def stop_all(self) -> None:
        """Stop every service, newest first; one that fails to stop does not spare the rest."""
        errors = []
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop_all()


# -- waiting ------------------------------------------------------------------------------------


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    message: str = "condition",
    *,
    interval: float = 0.05,
    service: Service | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that. Raises
    ``TimeoutError`` naming ``message`` after ``timeout`` seconds, or ``RuntimeError`` with
    its log as soon as ``service`` (the one expected to bring the condition about) exits."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if service is not None and not service.running:
            raise RuntimeError(
                f"{service.name} exited with status {service.poll()} while waiting for "
                f"{message}; last lines of {service.log_path}:\n{service.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # local servers only


def answers(url: str) -> bool:
    """Whether ``url`` answers a GET with a success status (no proxy: local servers)."""
    try:
        with _DIRECT.open(url, timeout=1) as response:
            response.read()
    except OSError:  # refused, reset, timed out, or an HTTP error status
        return False
    return True


def wait_http(url: str, timeout: float, *, service: Service | None = None) -> None:
    """Until ``url`` answers (see :func:`wait_for` for ``service``)."""
    wait_for(lambda: answers(url), timeout, f"{url} to answer", interval=0.1, service=service)


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
