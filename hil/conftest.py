"""``pytest hil/``: the gateway end to end against a monitor, before it goes into the field.

    pytest hil/                                    # firmware-sim on a PTY (the default)
    pytest hil/ --monitor=/dev/ttyUSB0 --baud=115200 --gateway-env=/etc/fieldgate/gateway.env

The session sets up what is shared: an S3 endpoint (the settings file's bucket, else a local
moto server), the site (the settings file's GATEWAY_STREAM_URL, else a local one) and the
report. Each test gets its own gateway: a data dir, a reader and an uploader on the monitor,
and its own S3 prefix, all stopped by PID when it ends. Results go to JUnit XML
(``--junitxml``, default artifacts/hil/junit.xml) and a short human report (``--hil-report``,
default artifacts/hil/hil-report.md): rates, gaps, latencies, reconnect and recovery times.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.core.records import counter_field
from gateway.store.layout import DataDir
from gateway.store.ledgers import read_identity
from gateway.supervise import Supervisor
from gateway.supervise.chain import SiteLogin
from tests.support.batches import read_tables
from tests.support.chain import (
    ExternalS3,
    Gateway,
    RelayedS3,
    StreamWatcher,
    base_gateway_env,
    chain_site,
    read_env_file,
)
from tests.support.web import viewer_cookie

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts" / "hil"
SIM = "sim"


def pytest_addoption(parser):
    group = parser.getgroup("fieldgate hil")
    group.addoption(
        "--monitor",
        default=SIM,
        help="'sim' (firmware-sim on a PTY, the default) or a serial device such as /dev/ttyUSB0",
    )
    group.addoption("--baud", type=int, default=None, help="baud rate of a real device")
    group.addoption(
        "--gateway-env",
        type=Path,
        default=None,
        help="gateway settings file: KEY=VALUE lines of GATEWAY_* (and AWS_*) settings",
    )
    group.addoption(
        "--expect-rate",
        type=float,
        default=None,
        help="lines per second the monitor sends (default: the simulator's rate; a real "
        "device without it must only show a steady flow without lost lines)",
    )
    group.addoption(
        "--hil-seconds", type=float, default=15.0, help="how long the rate test collects"
    )
    group.addoption(
        "--format",
        dest="hil_format",
        default=None,
        help="the gateway's GATEWAY_LINE_FORMAT (default: the settings file's, else auto)",
    )
    group.addoption(
        "--sim-format",
        default="csv-seq",
        help="what the simulator speaks: csv-seq (default), csv, json, nmea, nmea0183, "
        "keyvalue, delimited or raw",
    )
    group.addoption("--sim-rate", type=int, default=1000, help="simulator lines per second")
    group.addoption("--sim-channels", type=int, default=8, help="simulator values per line")
    group.addoption(
        "--site-login",
        default=None,
        help="USER:PASSWORD of a viewer on the settings file's site (to measure the stream "
        "at a viewer; without it the reader's own stream counters are checked)",
    )
    group.addoption(
        "--hil-report",
        type=Path,
        default=ARTIFACTS / "hil-report.md",
        help="where the human report goes (default artifacts/hil/hil-report.md)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # JUnit XML by default (before pytest's junitxml plugin reads the option).
    if not config.option.xmlpath:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        config.option.xmlpath = str(ARTIFACTS / "junit.xml")
    config._hil_results = []
    config._hil_figures = []


# -- settings -----------------------------------------------------------------------------------


@dataclass
class HilSettings:
    monitor: str
    baud: int | None
    file_settings: dict[str, str]
    expect_rate: float | None
    seconds: float
    sim_rate: int
    sim_channels: int
    sim_format: str
    line_format: str | None  # --format: overrides the settings file's
    site_login: tuple[str, str] | None
    run_id: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S"))

    @property
    def simulated(self) -> bool:
        return self.monitor == SIM

    @property
    def gateway_id(self) -> str:
        return self.file_settings.get("GATEWAY_ID", "hil-gw")

    def sim_args(self) -> list[str]:
        """The simulator's options: its format, rate and (where the format has them) channels."""
        args = ["--format", self.sim_format, "--rate", str(self.sim_rate), "--seed", "8"]
        if self.sim_format != "nmea0183":  # a GNSS talker has sentences, not channels
            args += ["--channels", str(self.sim_channels)]
        return args

    def needs_fault_injection(self, what: str) -> None:
        """Skip on a real monitor: only the simulator can inject faults on cue."""
        if not self.simulated:
            pytest.skip(
                f"{what} needs fault injection, which only --monitor=sim has; on a real "
                f"device check it by hand (docs/hil.md)"
            )


@pytest.fixture(scope="session")
def hil(pytestconfig) -> HilSettings:
    option = pytestconfig.getoption
    env_file = option("--gateway-env")
    monitor = option("--monitor")
    if monitor != SIM and not os.path.exists(monitor):
        raise pytest.UsageError(f"--monitor={monitor}: no such device")
    login = option("--site-login")
    return HilSettings(
        monitor=monitor,
        baud=option("--baud"),
        file_settings=read_env_file(env_file) if env_file else {},
        expect_rate=option("--expect-rate"),
        seconds=option("--hil-seconds"),
        sim_rate=option("--sim-rate"),
        sim_channels=option("--sim-channels"),
        sim_format=option("--sim-format"),
        line_format=option("hil_format"),
        site_login=tuple(login.split(":", 1)) if login else None,
    )


# -- the session's S3 endpoint and site ---------------------------------------------------------


@pytest.fixture(scope="session")
def hil_s3(hil, tmp_path_factory):
    """The settings file's bucket (under a prefix of its own per run), else a local moto."""
    if hil.file_settings.get("GATEWAY_S3_BUCKET"):
        base = hil.file_settings.get("GATEWAY_S3_PREFIX", "").strip("/")
        prefix = "/".join(p for p in (base, f"hil-{hil.run_id}") if p)
        yield ExternalS3(hil.file_settings, prefix)
        return
    with Supervisor(tmp_path_factory.mktemp("s3")) as supervisor:
        s3 = RelayedS3(supervisor, prefix=f"hil-{hil.run_id}")
        yield s3
        s3.close()


class ExternalSite:
    """The site the settings file streams to; viewed only with --site-login."""

    def __init__(self, settings: dict[str, str], login: SiteLogin | None) -> None:
        self.ingest_url = settings["GATEWAY_STREAM_URL"]
        scheme = "https://" if self.ingest_url.startswith("wss://") else "http://"
        host = self.ingest_url.split("://", 1)[1].split("/", 1)[0]
        self.base = scheme + host
        self.login = login
        self.service = None  # not ours to stop or kill

    def gateway_env(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="session")
def hil_site(hil, tmp_path_factory):
    if hil.file_settings.get("GATEWAY_STREAM_URL"):
        login = None
        if hil.site_login:  # to view; streaming is the settings file's business
            token = hil.file_settings.get("GATEWAY_STREAM_TOKEN", "")
            login = SiteLogin(hil.gateway_id, token, *hil.site_login)
        yield ExternalSite(hil.file_settings, login)
        return
    directory = tmp_path_factory.mktemp("site")
    with Supervisor(directory) as supervisor:
        yield chain_site(supervisor, directory, hil.gateway_id)


# -- one gateway per test -----------------------------------------------------------------------


class HilGateway(Gateway):
    """A gateway for one test: reader and uploader on the monitor (``sim`` is the simulator,
    None on a real device), with the session's S3 endpoint and site."""

    def __init__(self, supervisor, env, port, *, hil, sim, s3, site, audit_env) -> None:
        super().__init__(supervisor, env, port, mode="full", baud=hil.baud, audit_env=audit_env)
        self.port = port
        self.sim = sim
        self.s3 = s3
        self.site = site
        self.gateway_id = hil.gateway_id
        self.watchers: list[StreamWatcher] = []

    def stored_format(self) -> str:
        """The format the reader stored the rows in (what auto detected, or was configured)."""
        identity = read_identity(DataDir(self.data_dir))
        return identity.line_format if identity else "auto"

    def rows(self) -> list[list[str]]:
        """Every stored row (RFC 4180 fields), checking each batch's header and seq."""
        return [row for _, rows in read_tables(self.data_dir) for row in rows]

    def device_counters(self, rows: list[list[str]]) -> list[int] | None:
        """The device counter of each row, or None when the rows' format has none."""
        index = counter_field(self.stored_format())
        return None if index is None else [int(row[2 + index]) for row in rows]

    def watcher(self) -> StreamWatcher | None:
        """A viewer socket on the site, when we can log in there."""
        if self.site.login is None:
            return None
        watcher = StreamWatcher(self.site.base, self.gateway_id, viewer_cookie(self.site))
        self.watchers.append(watcher)
        return watcher

    def stop_watchers(self) -> None:
        for watcher in self.watchers:
            watcher.stop()


@pytest.fixture
def gateway(request, hil, hil_s3, hil_site, firmware_sim, tmp_path):
    """A factory: ``gateway(*sim_args, **settings)`` starts the simulator (with --monitor=sim,
    adding ``sim_args``) and returns a :class:`HilGateway`; the test starts its services,
    which are stopped by PID when it ends."""
    made: list[HilGateway] = []
    supervisor = Supervisor(tmp_path / "logs")

    def make(*sim_args: str, **settings) -> HilGateway:
        if hil.simulated:
            sim = firmware_sim(*hil.sim_args(), *sim_args)
            port = str(sim.port)
        else:
            sim, port = None, hil.monitor
        data_dir = tmp_path / f"data-{len(made)}"
        prefix = f"{hil_s3.prefix}/{request.node.name.removeprefix('test_')[:60]}"
        env = {
            **base_gateway_env(data_dir, hil.gateway_id),
            **hil.file_settings,
            **hil_s3.gateway_env(),
            **hil_site.gateway_env(),
            "GATEWAY_DATA_DIR": str(data_dir),
            "GATEWAY_S3_PREFIX": prefix,
            "GATEWAY_ENV_FILE": "",
            "GATEWAY_UPLOADER_PIDFILE": str(data_dir / "uploader.pid"),
        }
        # --format, else the settings file's, else the reader's own default (auto).
        line_format = hil.line_format or hil.file_settings.get("GATEWAY_LINE_FORMAT")
        if line_format:
            env["GATEWAY_LINE_FORMAT"] = line_format
        else:
            env.pop("GATEWAY_LINE_FORMAT", None)
        env.update({f"GATEWAY_{k.upper()}": str(v) for k, v in settings.items()})
        made.append(
            HilGateway(
                supervisor,
                env,
                port,
                hil=hil,
                sim=sim,
                s3=hil_s3,
                site=hil_site,
                audit_env={**hil_s3.gateway_env(direct=True), "GATEWAY_S3_PREFIX": prefix},
            )
        )
        return made[-1]

    with supervisor:
        yield make
        for made_gateway in made:
            made_gateway.stop_watchers()


# -- the report ---------------------------------------------------------------------------------


@pytest.fixture
def figures(request, record_property):
    """``figures(name, value, unit)``: a measured figure for the report and the JUnit XML."""

    def add(name: str, value, unit: str = "") -> None:
        if isinstance(value, float):
            value = round(value, 3)
        record_property(name, value)
        request.config._hil_figures.append((request.node.name, name, value, unit))

    return add


_RESULTS: list[tuple[str, str, str, float, str]] = []


def pytest_runtest_logreport(report):
    """Keep each test's outcome for the report: the call, or a setup/teardown that failed or
    skipped."""
    if report.when != "call" and report.outcome == "passed":
        return
    reason = ""
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2].removeprefix("Skipped: ")
    elif report.failed:
        reason = str(report.longrepr).strip().splitlines()[-1][:200]
    _RESULTS.append((report.nodeid, report.when, report.outcome, round(report.duration, 1), reason))


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except OSError:
        return "?"


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    path = Path(config.getoption("--hil-report"))
    path.parent.mkdir(parents=True, exist_ok=True)
    monitor = config.getoption("--monitor")
    env_file = config.getoption("--gateway-env")
    lines = [
        "# fieldgate HIL report",
        "",
        f"- when: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M:%S %z} on {platform.node()} "
        f"({platform.machine()}, Python {platform.python_version()}), commit {_commit()}",
        f"- monitor: {monitor}"
        + (
            f" (firmware-sim, {config.getoption('--sim-rate')} lines/s, "
            f"{config.getoption('--sim-channels')} channels)"
            if monitor == SIM
            else f" at {config.getoption('--baud') or 'the settings file baud'}"
        ),
        f"- settings file: {env_file or 'none (local S3 server and site)'}",
        f"- JUnit XML: {config.option.xmlpath}",
        "",
        "| test | result | seconds | note |",
        "|---|---|---:|---|",
    ]
    for nodeid, when, outcome, seconds, reason in _RESULTS:
        name = nodeid.split("::")[-1]
        shown = outcome if when == "call" else f"{outcome} ({when})"
        lines.append(f"| {name} | {shown} | {seconds} | {reason.replace('|', '/')} |")
    lines += ["", "## Figures", "", "| test | figure | value |", "|---|---|---:|"]
    for test, name, value, unit in config._hil_figures:
        lines.append(f"| {test.removeprefix('test_')} | {name} | {value} {unit} |")
    passed = sum(1 for r in _RESULTS if r[1] == "call" and r[2] == "passed")
    failed = sum(1 for r in _RESULTS if r[2] == "failed")
    skipped = sum(1 for r in _RESULTS if r[2] == "skipped")
    lines += ["", f"**{passed} passed, {failed} failed, {skipped} skipped.**", ""]
    path.write_text("\n".join(lines))
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        terminal.write_line(f"hil report: {path}")
