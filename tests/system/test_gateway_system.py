"""The gateway as it is deployed: a Debian 12 root file system provisioned by ``site.yml`` over
Ansible's chroot connection (twice: the second run changes nothing), booted under real systemd
with ``systemd-nspawn``, fed by firmware-sim through a PTY bound into the container, uploading
to a moto S3 server on the host and serving the site on a host port.

The tests share one booted container (module scope) and run in file order: the crash tests
come last.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import time
import urllib.request
from pathlib import Path

import pytest

from gateway import supervise
from gateway.supervise import Supervisor, free_port
from gateway.supervise.chain import LocalS3
from tests.support import container as ct
from tests.support.s3 import BUCKET, CREDENTIALS
from tests.support.web import login_cookie

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        bool(ct.missing_tools()), reason=f"needs {ct.missing_tools()} (make setup installs them)"
    ),
]

GATEWAY_ID = "systest-gw"
PREFIX = "raw"
STREAM_TOKEN = "fgt_systest-token-0123456789abcdef"
DATA = Path("var/lib/fieldgate")
BOOT_SETTINGS = """# written on the boot partition
GATEWAY_UPLOAD_PROGRESS_SECONDS=5
export GATEWAY_LOG_LEVEL="info"
FIELDGATE_WEB_USER=fieldboot
FIELDGATE_WEB_PASSWORD=boot-password-123
NOT_A_SETTING=1
"""
ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbc0123456789abcdefghijklmnopqrstuvwx admin@lab"
READER = "gateway-reader.service"
UPLOADER = "gateway-uploader.service"


def wait_for(predicate, timeout: float, what: str):
    """Every half second: each look runs a command in the container."""
    return supervise.wait_for(predicate, timeout, what, interval=0.5)


class Gateway:
    """What the tests see of the booted gateway."""

    def __init__(self, rootfs: Path, box: ct.Container, moto: LocalS3, web_port: int, logs):
        self.rootfs = rootfs
        self.box = box
        self.moto = moto
        self.web_port = web_port
        self.logs = logs
        self.recaps: list[dict] = []

    @property
    def data_dir(self) -> Path:
        return self.rootfs / DATA

    def sealed(self) -> list[Path]:
        return sorted((self.data_dir / "batches").rglob("*.csv"))

    def parts(self) -> list[Path]:
        """Open batches (``<first seq>.part``), not the uploader's marks being written."""
        found = (self.data_dir / "batches").rglob("*.part")
        return sorted(p for p in found if p.name.removesuffix(".part").isdigit())

    def unit(self, unit: str) -> dict[str, str]:
        return self.box.show(
            unit, "ActiveState", "SubState", "MainPID", "NRestarts", "StatusText", "Result"
        )

    def active(self, unit: str) -> dict[str, str] | None:
        state = self.unit(unit)
        return (
            state if state["ActiveState"] == "active" and state["SubState"] == "running" else None
        )

    def diagnose(self, *units: str) -> str:
        return "\n".join(self.box.journal(u) for u in units)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, firmware_sim_module):
    work = tmp_path_factory.mktemp("system")
    logs = work / "logs"
    logs.mkdir()
    base, seconds = ct.base_rootfs(logs / "mmdebstrap.log")
    how = f"built in {seconds:.0f} s" if seconds else "cached"
    print(f"base root file system: {base} ({how})")
    rootfs = work / "rootfs"
    ct.copy_tree(base, rootfs)
    supervisor = Supervisor(logs)
    box = None
    try:
        moto = LocalS3(supervisor, BUCKET, CREDENTIALS)
        s3 = moto.client
        web_port = free_port()
        wheel = ct.build_wheel(work / "dist", logs / "wheel.log")
        inventory = ct.write_inventory(
            work / "inventory.yml",
            rootfs,
            {
                "fieldgate_wheel": str(wheel),
                "gateway_id": GATEWAY_ID,
                "gateway_port": "/dev/ttyFG0",
                # The simulator's PTY: pts devices (major 136+), not a USB adapter's tty.
                "gateway_reader_device_allow": ["char-pts rw"],
                "gateway_s3_bucket": BUCKET,
                "gateway_s3_prefix": PREFIX,
                "gateway_s3_endpoint_url": moto.url,
                "gateway_aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "gateway_aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                "gateway_stream_url": f"ws://127.0.0.1:{web_port}/ws/ingest/",
                "gateway_stream_token": STREAM_TOKEN,
                "gateway_env": {
                    "GATEWAY_BATCH_SECONDS": "2",
                    "GATEWAY_STATUS_SECONDS": "1",
                    "GATEWAY_UPLOAD_RESCAN_SECONDS": "1",
                    "GATEWAY_UPLOAD_RETRY_MAX_SECONDS": "2",
                    "GATEWAY_DASK_WORKERS": "1",
                    "GATEWAY_TEST_HOOKS": "1",  # SIGUSR2 hangs the main loop: the watchdog test
                },
                "web_listen_host": "127.0.0.1",
                "web_listen_port": web_port,
                "web_users": [{"name": "lab", "password": "systest-password"}],
                "gateway_firstboot": True,
            },
        )
        recaps = []
        with ct.provisioning_mounts(rootfs):
            for run in (1, 2):
                started = time.monotonic()
                recap = ct.apply_playbook(inventory, logs / f"ansible-{run}.log")
                recap["seconds"] = time.monotonic() - started
                recaps.append(recap)
        assert not ct.mounts_under(rootfs), "provisioning left mounts behind"

        sim = firmware_sim_module(
            "--rate",
            "200",
            "--channels",
            "3",
            "--waveform",
            "counter",
            "--format",
            "csv-seq",
            "--seed",
            "7",
            "--drain-timeout",
            "900",
        )
        pty = Path(os.path.realpath(sim.port))
        # As a USB adapter's node would be: root:dialout (gid 20 in Debian's base-passwd), 0660.
        os.chown(pty, 0, 20)
        os.chmod(pty, 0o660)
        # Settings on the boot partition, as a user writes them after flashing the image.
        (rootfs / "boot/firmware").mkdir(parents=True, exist_ok=True)
        (rootfs / "boot/firmware/fieldgate.env").write_text(BOOT_SETTINGS)
        (rootfs / "boot/firmware/authorized_keys").write_text(ADMIN_KEY + "\n")
        # What a card must own alone is made on its first boot, never while provisioning.
        made_before_boot = sorted(p.name for p in (rootfs / "var/lib/fieldgate-web").iterdir())
        box = ct.Container(rootfs, logs / "nspawn.log", binds=[(str(pty), "/dev/ttyFG0")])
        box.wait_booted()
        gw = Gateway(rootfs, box, moto, web_port, logs)
        gw.recaps = recaps
        gw.made_before_boot = made_before_boot
        gw.sim = sim
        gw.s3 = s3
        yield gw
    finally:
        if box is not None:
            box.stop()
        ct.unmount_all_under(rootfs)
        supervisor.stop_all()
        leftover = ct.mounts_under(rootfs)
        if not leftover:
            ct.run(["rm", "-rf", "--one-file-system", str(rootfs)])
        assert not leftover, f"mounts left under {rootfs}: {leftover}"


@pytest.fixture(scope="module")
def firmware_sim_module(tmp_path_factory):
    """firmware-sim for the module's one container (the plugin's fixture is per test)."""
    from firmware_sim.launcher import start_simulator

    directory = tmp_path_factory.mktemp("sim")
    started = []

    def start(*args):
        sim = start_simulator(
            *args,
            link=directory / "ttyFG0",
            fault_log=directory / "faults.jsonl",
            stderr_path=directory / "stderr.txt",
        )
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def seqs_of(paths: list[Path]) -> list[int]:
    seqs = []
    for path in paths:
        with open(path, newline="") as file:
            rows = csv.reader(file)
            header = next(rows)
            assert header[:2] == ["seq", "received_at"], (path, header)
            seqs += [int(row[0]) for row in rows]
    return seqs


def assert_gap_free(gw: Gateway) -> int:
    seqs = sorted(seqs_of(gw.sealed()))
    assert seqs, "no sealed rows"
    assert seqs == list(range(len(seqs))), (
        f"seq must run 0..{len(seqs) - 1} with no gap or duplicate; "
        f"first problem near {next(a for i, a in enumerate(seqs) if a != i)}"
    )
    return len(seqs)


def stop_and_check_sealed(gw: Gateway) -> int:
    """Stop the reader (SIGTERM seals the open batch), check the data dir, start it again."""
    gw.box.systemctl("stop", READER)
    assert gw.parts() == [], f"a .part survived a clean stop: {gw.parts()}"
    rows = assert_gap_free(gw)
    gw.box.systemctl("start", READER)
    wait_for(lambda: gw.active(READER), 60, "the reader to be READY again")
    return rows


# -- provisioning ---------------------------------------------------------------------------------


def site_shell(gateway, script: str, **run):
    """``django-admin shell -c SCRIPT`` as the site's user, with the site's settings."""
    return gateway.box.run(
        "runuser",
        "-u",
        "fieldgate-web",
        "--",
        "env",
        "DJANGO_SETTINGS_MODULE=web.settings.gateway",
        "FIELDGATE_WEB_DATA_DIR=/var/lib/fieldgate-web",
        "/opt/fieldgate/venv/bin/django-admin",
        "shell",
        "-c",
        script,
        **run,
    )


def test_playbook_applies_then_changes_nothing(gateway):
    first, second = gateway.recaps
    assert first["failed"] == 0 and first["changed"] > 0
    assert second["changed"] == 0, f"second run changed: {second['changed_tasks']}"
    print(f"site.yml: first run {first['seconds']:.0f} s, second run {second['seconds']:.0f} s")


def test_installed_units_verify_clean(gateway):
    """``systemd-analyze verify`` of every installed unit prints nothing (it exits 0 even on
    unknown keys, so any output fails)."""
    units = sorted(
        f"/usr/local/lib/systemd/system/{p.name}"
        for p in (gateway.rootfs / "usr/local/lib/systemd/system").iterdir()
    )
    assert len(units) >= 6, units
    result = gateway.box.run("systemd-analyze", "verify", *units, check=False)
    assert (result.stdout + result.stderr).strip() == "" and result.returncode == 0, (
        result.stdout + result.stderr
    )


def test_secrets_are_root_only(gateway):
    env = gateway.rootfs / "etc/fieldgate/gateway.env"
    assert oct(env.stat().st_mode & 0o777) == "0o600" and env.stat().st_uid == 0
    assert "AWS_SECRET_ACCESS_KEY=testing" in env.read_text()
    assert oct((gateway.rootfs / "etc/fieldgate").stat().st_mode & 0o777) == "0o750"


def test_first_boot_applies_the_boot_partitions_settings(gateway):
    state = gateway.box.show("gateway-firstboot.service", "ActiveState", "Result")
    assert state == {"ActiveState": "active", "Result": "success"}, gateway.box.journal(
        "gateway-firstboot.service"
    )
    assert not (gateway.rootfs / "boot/firmware/fieldgate.env").exists(), "secrets left on /boot"
    env = (gateway.rootfs / "etc/fieldgate/gateway.env").read_text().splitlines()
    assert "GATEWAY_UPLOAD_PROGRESS_SECONDS=5" in env and "GATEWAY_LOG_LEVEL=info" in env
    assert "GATEWAY_ID=systest-gw" in env  # what the playbook wrote stays
    assert not any(line.startswith("NOT_A_SETTING") for line in env)
    script = (
        "from django.contrib.auth import get_user_model; "
        "print(get_user_model().objects.get(username='fieldboot')"
        ".check_password('boot-password-123'))"
    )
    result = site_shell(gateway, script)
    assert result.stdout.strip().splitlines()[-1] == "True"


def test_the_sites_database_and_key_are_made_on_first_boot_not_provisioning(gateway):
    assert gateway.made_before_boot == [], "provisioning made per-card files"
    web = gateway.rootfs / "var/lib/fieldgate-web"
    wait_for(lambda: (web / "secret_key").exists(), 60, "the site's key, made on boot")
    assert (web / "web.sqlite3").exists()
    assert not (gateway.rootfs / "etc/fieldgate/web-provision.json").exists()


def test_first_boot_adds_the_boot_partitions_ssh_key_for_root(gateway):
    keys = gateway.rootfs / "root/.ssh/authorized_keys"
    assert keys.read_text().splitlines() == [ADMIN_KEY]
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    assert not (gateway.rootfs / "boot/firmware/authorized_keys").exists()


def test_serial_drivers_load_at_boot_and_monitor_rule_exists(gateway):
    modules = (gateway.rootfs / "etc/modules-load.d/fieldgate-serial.conf").read_text()
    assert {"usbserial", "ftdi_sio", "cdc_acm"} <= set(modules.split())
    rules = (gateway.rootfs / "etc/udev/rules.d/90-fieldgate-monitor.rules").read_text()
    assert 'KERNEL=="ttyUSB[0-9]*|ttyACM[0-9]*"' in rules and 'SYMLINK+="monitor"' in rules


# -- services -------------------------------------------------------------------------------------


def test_reader_and_uploader_are_ready(gateway):
    for unit in (READER, UPLOADER):
        state = wait_for(
            lambda u=unit: gateway.active(u),
            90,
            f"{unit} active",
        )
        assert state["StatusText"], f"{unit} sent no STATUS= with READY=1"
    # After READY=1 the reader keeps its status line current: rows accepted from the PTY.
    wait_for(lambda: " 0 accepted" not in gateway.unit(READER)["StatusText"], 60, "accepted rows")
    user = gateway.box.run("ps", "-o", "user=", "-p", gateway.unit(READER)["MainPID"]).stdout
    assert user.strip() == "gateway"


def test_batches_are_sealed(gateway):
    wait_for(lambda: len(gateway.sealed()) >= 3, 60, "three sealed batches")
    assert (gateway.data_dir / "state/identity.json").exists()


def test_uploads_reach_s3(gateway):
    def uploaded():
        listing = gateway.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/{GATEWAY_ID}/")
        return listing.get("Contents", [])

    objects = wait_for(lambda: len(uploaded()) >= 2 and uploaded(), 120, "two uploaded objects")
    by_name = {Path(p.name).stem: p for p in gateway.sealed()}
    matched = 0
    for obj in objects:
        body = gateway.s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
        if obj["Key"].endswith(".gz"):
            body = gzip.decompress(body)
        name = Path(obj["Key"]).name.split(".")[0]
        if name in by_name:
            assert body == by_name[name].read_bytes(), obj["Key"]
            matched += 1
    assert matched >= 2, f"uploaded {[o['Key'] for o in objects]}, sealed {sorted(by_name)}"


def test_site_answers(gateway):
    base = f"http://127.0.0.1:{gateway.web_port}"
    wait_for(lambda: gateway.active("gateway-web.service"), 60, "the site")

    def get(path):
        try:
            with urllib.request.urlopen(base + path, timeout=5) as response:
                return response.status, response.read().decode()
        except OSError:
            return None

    status, page = wait_for(lambda: get("/accounts/login/"), 60, "the login page")
    assert status == 200 and "password" in page.lower()
    status, css = get("/static/fieldgate/site.css")
    assert status == 200 and css
    status, chart = get("/static/vendor/uplot/uPlot.iife.min.js")  # from the wheel itself
    assert status == 200 and "uPlot" in chart
    status, health = get("/healthz")
    assert status == 200 and json.loads(health)["status"] == "ok"


def test_the_site_serves_the_readers_batches_as_history_and_csv(gateway):
    """The site's unit (its own user, PrivateUsers=) reads the reader's data dir through the
    gateway group the web role gives it: history and export answer from the batches."""
    wait_for(gateway.sealed, 90, "a sealed batch")
    base = f"http://127.0.0.1:{gateway.web_port}"
    cookie = wait_for(lambda: _login(base), 60, "a login at the site")

    def get(path):
        request = urllib.request.Request(base + path, headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()

    status, body = get(f"/gateways/{GATEWAY_ID}/history.json?seconds=60")
    assert status == 200 and json.loads(body)["frames"], body[:300]
    now = time.time()
    status, rows = get(f"/gateways/{GATEWAY_ID}/export.csv?from={now - 600:.0f}&to={now + 5:.0f}")
    header, first = rows.decode().splitlines()[:2]
    assert status == 200 and header.startswith("seq,received_at,"), rows[:300]
    assert first.split(",")[0].isdigit()


def _login(base):
    try:
        return login_cookie(base, "lab", "systest-password")
    except OSError:
        return None


def test_the_reader_asks_timedated_for_the_clock_since_protectclock_refuses_adjtimex(gateway):
    """ProtectClock=yes's seccomp filter refuses adjtimex even for reading, so under systemd
    the reader's clock state comes from timedatectl (or nowhere, without a bus)."""

    def clock():
        path = gateway.data_dir / "state/reader.status.json"
        return path.exists() and json.loads(path.read_text()).get("clock")

    found = wait_for(clock, 60, "the reader's clock status")
    assert found["source"] in ("timedatectl", "none"), found


def test_reader_streams_to_the_local_site(gateway):
    """The token the web role registered is the one the reader presents: the site counts the
    reader's frames."""
    script = (
        "from web.fleet.models import Gateway; "
        f"g = Gateway.objects.get(name='{GATEWAY_ID}'); print(g.frames_in, g.connections)"
    )
    last = {}

    def frames():
        result = site_shell(gateway, script, check=False)
        last["result"] = result
        # The last line: Django 5.2's shell may first say what it imported.
        words = (result.stdout.strip().splitlines() or [""])[-1].split()
        return result.returncode == 0 and len(words) == 2 and int(words[0]) > 0

    try:
        wait_for(frames, 60, "frames from the reader at the site")
    except TimeoutError:
        result = last["result"]
        journal = gateway.box.run(
            "journalctl", "--no-pager", "-u", READER, "-u", "gateway-web", "-n", "80", check=False
        ).stdout
        raise AssertionError(
            f"site says: {result.stdout!r} {result.stderr[-2000:]!r}\n{journal}"
        ) from None


def test_cleanup_timer_and_service(gateway):
    timer = gateway.box.show("gateway-cleanup.timer", "ActiveState", "TimersMonotonic")
    assert timer["ActiveState"] == "active"
    # The schedule drop-in's empty OnCalendar= resets OnBootSec= too: it must set it again.
    assert "OnBootUSec=2min" in timer["TimersMonotonic"], timer
    gateway.box.systemctl("start", "gateway-cleanup.service")
    assert gateway.box.show("gateway-cleanup.service", "Result")["Result"] == "success", (
        gateway.box.journal("gateway-cleanup.service")
    )


# -- crashes --------------------------------------------------------------------------------------


def test_sigkill_restart_recovers_without_gap(gateway):
    wait_for(lambda: gateway.parts(), 30, "an open batch")
    before = gateway.unit(READER)
    gateway.box.systemctl("kill", "-s", "KILL", READER)
    after = wait_for(
        lambda: (s := gateway.active(READER)) and s["MainPID"] != before["MainPID"] and s,
        60,
        "systemd to restart the killed reader",
    )
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    wait_for(lambda: len(gateway.sealed()) >= 6, 60, "batches sealed after the restart")
    rows = stop_and_check_sealed(gateway)
    assert rows > 0


def test_hung_main_loop_is_killed_by_the_watchdog(gateway):
    before = wait_for(lambda: gateway.active(READER), 30, "the reader")
    sealed_before = len(gateway.sealed())
    gateway.box.systemctl("kill", "-s", "USR2", "--kill-whom=main", READER)
    after = wait_for(
        lambda: (s := gateway.active(READER)) and s["MainPID"] != before["MainPID"] and s,
        90,
        "the watchdog to kill the hung reader and systemd to restart it",
    )
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    journal = gateway.box.journal(READER, 200)
    assert "Watchdog timeout" in journal, journal
    wait_for(lambda: len(gateway.sealed()) > sealed_before + 2, 60, "sealing after the restart")
    stop_and_check_sealed(gateway)
    # Every uploaded object is one of the sealed batches, byte for byte (checked above); the
    # uploader keeps going across the reader's restarts.
    assert gateway.active(UPLOADER)
