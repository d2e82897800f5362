"""A Debian 12 root file system, provisioned by the project's playbook and booted under real
systemd with ``systemd-nspawn``; every mount, process and container is undone by PID.

The base root file system (mmdebstrap) is cached outside the repository, under
``$FIELDGATE_TEST_CACHE`` (default ``/var/cache/fieldgate-test``), keyed by a hash of what goes
into it; pip's downloads are cached there too. Each test run works on a fresh copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from gateway.supervise import Service

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
VENV_BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("FIELDGATE_TEST_CACHE", "/var/cache/fieldgate-test"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What the booted system needs besides what the roles install: an init, the Ansible apt
# module's binding, and ps for anyone debugging a failure.
BASE_PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "udev",
    "python3-apt",
    "ca-certificates",
    "procps",
]
TOOLS = ("mmdebstrap", "systemd-nspawn", "systemd-analyze", "nsenter")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def role_packages() -> list[str]:
    """The roles' Debian packages: in the cached base already, so provisioning needs no apt."""
    packages = []
    for role, variable in (("fieldgate", "fieldgate_packages"), ("gateway", "gateway_packages")):
        defaults = yaml.safe_load((ANSIBLE_DIR / f"roles/{role}/defaults/main.yml").read_text())
        packages += [p for p in defaults[variable] if p not in packages]
    return packages


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", True)
    return subprocess.run(args, **kwargs)


# -- the base root file system --------------------------------------------------------------


def rootfs_key(arch: str, packages: list[str]) -> str:
    version = run(["mmdebstrap", "--version"], capture_output=True, text=True).stdout.strip()
    recipe = json.dumps(
        {
            "suite": SUITE,
            "mirror": MIRROR,
            "arch": arch,
            "packages": sorted(packages),
            "variant": "minbase",
            "mmdebstrap": version,
        },
        sort_keys=True,
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def base_rootfs(log_path: Path, arch: str = "amd64") -> tuple[Path, float | None]:
    """The cached base root file system, built first if needed; and the build's seconds
    (None when it came from the cache)."""
    packages = BASE_PACKAGES + role_packages()
    target = CACHE / f"rootfs-{SUITE}-{arch}-{rootfs_key(arch, packages)}"
    if (target / "etc/os-release").exists():
        return target, None
    CACHE.mkdir(parents=True, exist_ok=True)
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    started = time.monotonic()
    with open(log_path, "ab") as log:
        run(
            [
                "mmdebstrap",
                "--variant=minbase",
                f"--architectures={arch}",
                f"--include={','.join(packages)}",
                SUITE,
                str(building),
                MIRROR,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    building.rename(target)
    return target, time.monotonic() - started


def copy_tree(source: Path, destination: Path) -> None:
    run(["cp", "-a", "--reflink=auto", str(source), str(destination)])


def build_wheel(out_dir: Path, log_path: Path) -> Path:
    """The project as a user gets it: ``pip wheel --no-deps .``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        run(
            [str(VENV_BIN / "pip"), "wheel", "--no-deps", "-q", "-w", str(out_dir), str(REPO)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    (wheel,) = out_dir.glob("fieldgate-*.whl")
    return wheel


# -- mounts -----------------------------------------------------------------------------------


class Mounts:
    """Mounts made for a test, undone in reverse order (lazily if busy), whatever happens."""

    def __init__(self) -> None:
        self.points: list[Path] = []

    def bind(self, source: Path, target: Path, read_only: bool = False) -> None:
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch(exist_ok=True)
        run(["mount", "--bind", str(source), str(target)])
        self.points.append(target)
        if read_only:
            run(["mount", "-o", "remount,bind,ro", str(target)])

    def tmpfs(self, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        run(["mount", "-t", "tmpfs", "tmpfs", str(target)])
        self.points.append(target)

    def undo(self) -> None:
        while self.points:
            point = self.points.pop()
            if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True)


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1].replace("\\040", " ") for line in mounts]
    return [p for p in points if p.startswith(prefix) or p == prefix[:-1]]


def unmount_all_under(root: Path) -> None:
    for point in sorted(mounts_under(root), key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)


@contextlib.contextmanager
def provisioning_mounts(rootfs: Path):
    """What pip and apt need inside the chroot for the playbook: the host's DNS and CA bundle
    (a TLS-inspecting proxy's CA lives there) and a pip download cache outside the repo.
    None of it stays in the root file system."""
    mounts = Mounts()
    try:
        resolv = rootfs / "etc/resolv.conf"
        if resolv.is_symlink():
            resolv.unlink()
        mounts.bind(Path("/etc/resolv.conf"), resolv, read_only=True)
        bundle = Path("/etc/ssl/certs/ca-certificates.crt")
        if bundle.exists():
            mounts.bind(bundle, rootfs / "etc/ssl/certs/ca-certificates.crt", read_only=True)
        pip_cache = CACHE / "pip"
        pip_cache.mkdir(parents=True, exist_ok=True)
        mounts.bind(pip_cache, rootfs / "root/.cache/pip")
        yield
    finally:
        mounts.undo()


# -- Ansible ----------------------------------------------------------------------------------


def ansible_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(CACHE / "ansible-tmp"),
        ANSIBLE_HOME=str(CACHE / "ansible-home"),
        LC_ALL="C.UTF-8",
    )
    return env


def write_inventory(path: Path, rootfs: Path, host_vars: dict, group: str = "gateway") -> Path:
    inventory = {
        "all": {
            "children": {
                group: {
                    "hosts": {
                        "systest": {
                            "ansible_connection": "community.general.chroot",
                            "ansible_host": str(rootfs),
                            "ansible_become": False,
                            "ansible_python_interpreter": "/usr/bin/python3",
                            **host_vars,
                        }
                    }
                }
            }
        }
    }
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


RECAP = re.compile(
    r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


def apply_playbook(inventory: Path, log_path: Path) -> dict[str, int]:
    """``ansible-playbook site.yml``; the recap's counts, or AssertionError with the log's tail."""
    result = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), "site.yml"],
        cwd=ANSIBLE_DIR,
        env=ansible_env(),
        capture_output=True,
        text=True,
    )
    with open(log_path, "a") as log:
        log.write(result.stdout + result.stderr)
    match = RECAP.search(result.stdout)
    if result.returncode != 0 or match is None:
        raise AssertionError(
            f"ansible-playbook exited {result.returncode}; see {log_path}:\n"
            + (result.stdout + result.stderr)[-4000:]
        )
    ok, changed, unreachable, failed = (int(g) for g in match.groups()[1:])
    return {
        "ok": ok,
        "changed": changed,
        "unreachable": unreachable,
        "failed": failed,
        "changed_tasks": changed_tasks(result.stdout),
    }


def changed_tasks(output: str) -> list[str]:
    tasks, current = [], None
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            current = line.split("[", 1)[1].rsplit("]", 1)[0]
        elif line.startswith("changed:") and current:
            tasks.append(current)
    return tasks


# -- the container ----------------------------------------------------------------------------


class Container:
    """``systemd-nspawn -b`` of a root file system, not registered with any machined (the host
    need not run systemd); commands run in it through ``nsenter`` into its init's namespaces."""

    def __init__(self, rootfs: Path, log_path: Path, binds: list[tuple[str, str]]) -> None:
        self.rootfs = rootfs
        self.log_path = log_path
        self._own_nspawn_tmpfs = False
        nspawn_dir = Path("/run/systemd/nspawn")
        nspawn_dir.mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(nspawn_dir):
            # nspawn keeps its propagation mounts here; a host without systemd has no tmpfs.
            run(["mount", "-t", "tmpfs", "tmpfs", str(nspawn_dir)])
            self._own_nspawn_tmpfs = True
        command = [
            "systemd-nspawn",
            "-b",
            "--register=no",
            "--keep-unit",
            "--console=passive",
            "-D",
            str(rootfs),
            "--machine=fieldgate-systest",
        ]
        command += [f"--bind={source}:{target}" for source, target in binds]
        self.nspawn = Service("systemd-nspawn", command, log_path).start()
        self.leader = self._find_leader()

    def _find_leader(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited {self.nspawn.poll()}: {self.log_path}")
            for child in _children(self.nspawn.pid):
                if _comm(child) == "systemd":
                    return child
            time.sleep(0.1)
        raise RuntimeError(f"no init in the container after {timeout} s: {self.log_path}")

    def run(
        self, *args: str, check: bool = True, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", "--", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            input=input,
        )

    def systemctl(self, *args: str, check: bool = True) -> str:
        return self.run("systemctl", "--no-pager", *args, check=check).stdout

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        out = self.systemctl("show", unit, *(f"--property={p}" for p in properties))
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_booted(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.5)
        raise AssertionError(f"the container did not finish booting ({state!r}): {self.log_path}")

    def journal(self, unit: str, lines: int = 60) -> str:
        return self.run(
            "journalctl", "--no-pager", "-u", unit, "-n", str(lines), check=False
        ).stdout

    def stop(self, timeout: float = 30) -> None:
        """Power the container off (nspawn turns SIGTERM into a clean shutdown), SIGKILL its
        process group if that takes too long, then undo every mount under the root."""
        try:
            self.nspawn.stop(timeout)
            # The container's init, should it outlive nspawn.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.leader, 0)
                os.kill(self.leader, signal.SIGKILL)
        finally:
            unmount_all_under(self.rootfs)
            if self._own_nspawn_tmpfs:
                subprocess.run(["umount", "/run/systemd/nspawn"], capture_output=True)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""
