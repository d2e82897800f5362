"""image/check-image over a small fake image (image/assemble-image, as the build makes the real
one): it passes a card-ready root and fails, naming why, on a secret baked in, SSH host keys
made after sshd's own check, a cleanup timer whose boot run was reset, or no serial drivers at
boot. The real image is built by ``make image`` and booted by ``make image-test``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("sfdisk", "mkfs.vfat", "mcopy", "mdir", "mkfs.ext4", "debugfs", "dumpe2fs")
KERNEL = "6.1.0-99-arm64"

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS), reason=f"needs {TOOLS} (make setup)"
)

BOOT_FILES = [
    f"vmlinuz-{KERNEL}",
    f"initrd.img-{KERNEL}",
    "bcm2711-rpi-4-b.dtb",
    "bcm2837-rpi-3-b-plus.dtb",
    "start4.elf",
    "fixup4.dat",
    "bootcode.bin",
    "fieldgate.env.example",
]
ROOT_FILES = [
    "opt/fieldgate/venv/bin/gateway",
    "opt/fieldgate/venv/bin/django-admin",
    "opt/fieldgate/bin/gateway-firstboot",
    "opt/fieldgate/bin/fieldgate-web-provision",
    *(
        f"usr/local/lib/systemd/system/{unit}"
        for unit in (
            "gateway-reader.service",
            "gateway-reader@.service",
            "gateway-uploader.service",
            "gateway-cleanup.timer",
            "gateway-web.service",
            "gateway-firstboot.service",
        )
    ),
    *(
        f"etc/systemd/system/multi-user.target.wants/{unit}"
        for unit in (
            "gateway-reader.service",
            "gateway-uploader.service",
            "gateway-web.service",
            "gateway-firstboot.service",
        )
    ),
    "etc/systemd/system/timers.target.wants/gateway-cleanup.timer",
    "etc/fieldgate/web.env",
    "usr/lib/tmpfiles.d/fieldgate.conf",
    "etc/systemd/journald.conf.d/90-fieldgate.conf",
    "etc/machine-id",
]
MONITOR_RULE = (
    'SUBSYSTEM=="tty", KERNEL=="ttyUSB[0-9]*|ttyACM[0-9]*", SUBSYSTEMS=="usb", '
    'SYMLINK+="monitor", GROUP="dialout", MODE="0660", TAG+="systemd"\n'
)
SCHEDULE = "[Timer]\nOnCalendar=\nOnBootSec=2min\nOnCalendar=*:0/15\n"


def card_root(root: Path) -> Path:
    """A root file system with what check-image looks for, as a good build leaves it."""
    boot = root / "boot/firmware"
    boot.mkdir(parents=True)
    for name in BOOT_FILES:
        (boot / name).write_text("x")
    (boot / "config.txt").write_text(f"kernel=vmlinuz-{KERNEL}\ninitramfs initrd.img-{KERNEL}\n")
    (boot / "cmdline.txt").write_text("console=tty0 root=LABEL=RASPIROOT rw fsck.repair=yes\n")
    for name in ROOT_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    (root / "lib/modules" / KERNEL).mkdir(parents=True)
    (root / "opt/fieldgate/venv/pyvenv.cfg").write_text("version = 3.11.2\n")
    env = root / "etc/fieldgate/gateway.env"
    env.write_text("GATEWAY_PORT=/dev/monitor\n")
    env.chmod(0o600)
    keys = root / "etc/systemd/system/ssh.service.d/50-host-keys.conf"
    keys.parent.mkdir(parents=True)
    shutil.copy(REPO / "image/ssh-host-keys.conf", keys)
    (root / "root/.ssh").mkdir(parents=True, mode=0o700)
    (root / "root/.ssh").chmod(0o700)
    modules = root / "etc/modules-load.d/fieldgate-serial.conf"
    modules.parent.mkdir(parents=True)
    modules.write_text("# drivers\nusbserial\nftdi_sio\ncp210x\ncdc_acm\n")
    rules = root / "etc/udev/rules.d/90-fieldgate-monitor.rules"
    rules.parent.mkdir(parents=True)
    rules.write_text(MONITOR_RULE)
    schedule = root / "etc/systemd/system/gateway-cleanup.timer.d/50-schedule.conf"
    schedule.parent.mkdir(parents=True)
    schedule.write_text(SCHEDULE)
    (root / "var/lib/fieldgate-web").mkdir(parents=True)
    return root


def check(tmp_path: Path, spoil=None) -> subprocess.CompletedProcess:
    root = card_root(tmp_path / "root")
    if spoil:
        spoil(root)
    image = tmp_path / "card.img"
    subprocess.run(
        [REPO / "image/assemble-image", root, image, "48M", "40"],
        check=True,
        capture_output=True,
    )
    return subprocess.run(
        [REPO / "image/check-image", image], capture_output=True, text=True, check=False
    )


def test_a_card_ready_image_passes(tmp_path):
    result = check(tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no /var/lib/fieldgate-web/secret_key" in result.stdout
    assert "ssh.service: ssh-keygen -A before sshd -t" in result.stdout


def write(path: str, text: str, mode: int = 0o644):
    def spoil(root: Path) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
        (root / path).chmod(mode)

    return spoil


@pytest.mark.parametrize(
    ("spoil", "says"),
    [
        (
            write("var/lib/fieldgate-web/secret_key", "k" * 50, 0o600),
            "/var/lib/fieldgate-web/secret_key is in the image: every card would share the "
            "site's secret key",
        ),
        (
            write("var/lib/fieldgate-web/web.sqlite3", "db"),
            "every card would share the site's database",
        ),
        (
            write("etc/ssh/ssh_host_ed25519_key", "key", 0o600),
            "every card would share this SSH host key",
        ),
        (write("etc/machine-id", "0123456789abcdef0123456789abcdef\n"), "/etc/machine-id"),
        (
            write(
                "etc/systemd/system/ssh.service.d/50-host-keys.conf",
                "[Service]\nExecStartPre=/usr/bin/ssh-keygen -A\n",
            ),
            "ssh.service does not make its host keys before sshd -t",
        ),
        (
            write(
                "etc/systemd/system/gateway-cleanup.timer.d/50-schedule.conf",
                "[Timer]\nOnCalendar=\nOnCalendar=*:0/15\n",
            ),
            "resets OnCalendar= and so OnBootSec=, and sets none",
        ),
        (
            write("etc/modules-load.d/fieldgate-serial.conf", "cdc_acm\n"),
            "modules-load.d does not load usbserial at boot",
        ),
    ],
    ids=["site-key", "site-db", "ssh-host-key", "machine-id", "sshd-t-first", "cleanup", "mods"],
)
def test_check_image_fails_naming_why(tmp_path, spoil, says):
    result = check(tmp_path, spoil)
    assert result.returncode != 0, result.stdout
    assert says in result.stderr, result.stderr
