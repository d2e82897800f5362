"""The LazyFS layer as a process the harness mounts, cuts, unmounts and mounts again."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.powercut.lazyfs import control

REPO = Path(__file__).resolve().parents[2]


def fusermount() -> str | None:
    return shutil.which("fusermount3") or shutil.which("fusermount")


@functools.cache
def fuse_unavailable() -> str | None:
    """Why a FUSE file system cannot be mounted here (None when it can)."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if fusermount() is None:
        return "no fusermount3 (Debian package fuse3; make setup installs it)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as error:  # OSError: libfuse itself is missing
        return f"mfusepy cannot load libfuse: {error}"
    return None


class LazyMount:
    """``python -m tests.powercut.lazyfs BACKING MOUNTPOINT`` with its control socket."""

    def __init__(self, backing: Path, mountpoint: Path, control_path: Path, log_path: Path):
        self.backing = backing
        self.mountpoint = mountpoint
        self.control_path = control_path
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.mounts = 0

    @property
    def mounted(self) -> bool:
        # Not os.path.ismount: it stats the mount's root, which fails once the power is cut.
        return is_mounted(self.mountpoint)

    def start(self, timeout: float = 30) -> LazyMount:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"lazyfs is already running (pid {self.process.pid})")
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *_pythonpath()])}
        with open(self.log_path, "ab") as log:
            log.write(f"--- lazyfs mount {self.mounts} at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.powercut.lazyfs",
                    str(self.backing),
                    str(self.mountpoint),
                    "--control",
                    str(self.control_path),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"lazyfs exited with {code} before mounting: {self.log_tail()}")
            if self.mounted:
                try:
                    control(self.control_path, "ping", timeout=5)
                    break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"lazyfs did not mount within {timeout} s: {self.log_tail()}")
            time.sleep(0.02)
        self.mounts += 1
        return self

    def command(self, line: str) -> dict:
        return control(self.control_path, line)

    def report(self) -> dict:
        return self.command("report")

    def sync(self) -> None:
        self.command("sync")

    def cut(self, mode: str = "drop", seed: int = 0) -> dict:
        return self.command(f"cut {mode} {seed}")

    def unmount(self, timeout: float = 30) -> int | None:
        """Unmount and wait for the process: its exit status (1: it hit internal errors).

        Files still open on the mount (a process that outlived the power, or a test's own
        descriptors) keep it busy: then the connection is aborted, as the power would."""
        if self.process is None:
            return None
        device = mount_device(self.mountpoint)
        deadline = time.monotonic() + 3
        while self.mounted:
            done = subprocess.run(
                [fusermount(), "-u", str(self.mountpoint)], capture_output=True, text=True
            )
            if done.returncode == 0:
                break
            if time.monotonic() > deadline:
                abort_connection(device)
                subprocess.run([fusermount(), "-u", "-z", str(self.mountpoint)], check=False)
                break
            time.sleep(0.1)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self.process = None
        return code

    def stop(self) -> None:
        """Teardown whatever state it is in: unmounted, the process gone."""
        if self.process is not None and self.process.poll() is None:
            self.unmount(10)
        elif self.mounted:
            subprocess.run([fusermount(), "-u", "-z", str(self.mountpoint)], check=False)
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def is_mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == target:
                return True
    return False


def mount_device(path: Path) -> int | None:
    """The device number of the mount at ``path`` (a FUSE connection's name under fusectl)."""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[4].encode().decode("unicode_escape") == target:
                major, minor = map(int, fields[2].split(":"))
                return os.makedev(major, minor)
    return None


FUSECTL = Path("/sys/fs/fuse/connections")


def abort_connection(device: int | None) -> None:
    """Cut a FUSE connection off: every open file on it fails from now on (root only)."""
    if device is None:
        return
    if not any(FUSECTL.iterdir()) if FUSECTL.is_dir() else True:
        subprocess.run(["mount", "-t", "fusectl", "none", str(FUSECTL)], check=False)
    try:
        (FUSECTL / str(device) / "abort").write_text("1")
    except OSError:
        pass


def _pythonpath() -> list[str]:
    return [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
