"""The whole gateway chain as real processes, for hil/ and the soak and crash campaigns: the
shared pieces of :mod:`gateway.supervise.chain` plus what only tests need.

    monitor (firmware-sim on a PTY, or a real serial device) --> gateway reader --> data dir
      --> gateway uploader --> S3 (moto's server behind a relay that can be cut, or a real
      endpoint); reader --> stream --> the site (manage.py serve) --> a watcher socket

Every process is a :class:`~gateway.supervise.Service` of a :class:`~gateway.supervise.Supervisor`:
SIGKILLed and restarted on purpose, checked for exits nobody asked for, and stopped by PID at
the end, whatever happens.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import socket
import subprocess
import threading
import time
from pathlib import Path

from gateway.core.stream_protocol import viewer_message
from gateway.supervise import Service, Supervisor
from gateway.supervise.chain import (
    GATEWAY,
    LocalGateway,
    LocalS3,
    LocalSite,
    SiteLogin,
    start_simulator,
)
from tests.support.s3 import CREDENTIALS, Relay
from tests.support.web import start_site


def quiet_port() -> int:
    """A free TCP port below the kernel's ephemeral range, for a server that is stopped and
    started again on the same port (the site, the S3 relay). In the ephemeral range, a client
    retrying to connect to it while it is down can be given that very port as its own source
    port and connect to itself (TCP simultaneous open), and the port is taken when the server
    comes back."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {low}")


# -- S3 -----------------------------------------------------------------------------------------


class RelayedS3:
    """moto's server with a versioned bucket (:class:`LocalS3`) and a :class:`Relay` in front
    of it: the gateway talks to the relay (``cut()`` is an outage), checks talk to the server.

    moto keeps objects in memory, so an outage is made at the network (the relay resets every
    connection and refuses new ones, as when a server dies), never by stopping the server.
    """

    def __init__(
        self, supervisor: Supervisor, bucket: str = "fieldgate-hil", prefix: str = "hil"
    ) -> None:
        self.server = LocalS3(supervisor, bucket, CREDENTIALS, versioned=True)
        self.bucket = bucket
        self.prefix = prefix
        self.client = self.server.client
        self.relay = Relay(self.server.port, port=quiet_port())
        self.outages = 0

    @property
    def service(self) -> Service:
        return self.server.service

    def gateway_env(self, *, direct: bool = False) -> dict[str, str]:
        """Settings for a gateway service; ``direct``: past the relay (for audits)."""
        env = self.server.gateway_env(self.prefix)
        if not direct:
            env["GATEWAY_S3_ENDPOINT_URL"] = self.relay.url
        return env

    def cut(self) -> None:
        self.relay.cut()
        self.outages += 1

    def restore(self) -> None:
        if self.relay._listener is None:
            self.relay.restore()

    def close(self) -> None:
        """Close the relay (the server is its supervisor's to stop)."""
        self.relay.close()


class ExternalS3:
    """A bucket the user named in a gateway settings file (AWS, MinIO, Ceph...)."""

    def __init__(self, settings: dict[str, str], prefix: str) -> None:
        self.bucket = settings["GATEWAY_S3_BUCKET"]
        self.prefix = prefix
        self.settings = settings
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=settings.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=settings.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=settings.get("AWS_SESSION_TOKEN"),
            region_name=settings.get("AWS_DEFAULT_REGION") or settings.get("AWS_REGION"),
        )
        self.client = session.client(
            "s3",
            endpoint_url=settings.get("GATEWAY_S3_ENDPOINT_URL") or None,
            config=Config(s3={"addressing_style": "path"})
            if settings.get("GATEWAY_S3_ENDPOINT_URL")
            else None,
        )

    def gateway_env(self, *, direct: bool = False) -> dict[str, str]:
        return {**self.settings, "GATEWAY_S3_PREFIX": self.prefix}


# -- the site -----------------------------------------------------------------------------------


def chain_site(supervisor: Supervisor, directory: Path, gateway_id: str) -> LocalSite:
    """The site with ``gateway_id`` and a viewer login, on a :func:`quiet_port`: it can be
    killed and started again on the same port."""
    login = SiteLogin(gateway_id, "fgt_chain-token-0123456789abcdef", "hil", "hil-password-123")
    return start_site(supervisor, directory, login=login, port=quiet_port())


class StreamWatcher:
    """A viewer socket on ``/ws/live/<gateway>/`` in its own thread, acknowledging like the
    browser; reconnects when the site goes away. Keeps counts and recent latencies only, so it
    can run for a day: frames, seq ranges seen, holes between frames, drops the site reported,
    and (arrival - received_at) per frame, the serial-to-viewer latency on this one clock.
    """

    def __init__(self, base_url: str, gateway_id: str, cookie: str) -> None:
        self.url = base_url.replace("http://", "ws://") + f"/ws/live/{gateway_id}/"
        self.headers = {"Cookie": cookie, "Origin": base_url}
        self.frames = 0
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.seqs_seen = 0
        self.holes = 0  # a frame that does not start right after the previous one
        self.dropped_reports = 0
        self.connects = 0
        self.latencies: collections.deque[float] = collections.deque(maxlen=20000)
        self.last_error = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from websockets.asyncio.client import connect

        while not self._stop.is_set():
            try:
                async with connect(
                    self.url, additional_headers=self.headers, proxy=None, open_timeout=5
                ) as socket:
                    self.connects += 1
                    await self._receive(socket)
            except Exception as error:  # the site restarts under us: try again
                self.last_error = f"{type(error).__name__}: {error}"
            if not self._stop.is_set():
                await asyncio.sleep(0.5)

    async def _receive(self, socket) -> None:
        received, ack_every = 0, 8
        while not self._stop.is_set():
            try:
                text = await asyncio.wait_for(socket.recv(), 0.2)
            except TimeoutError:
                continue
            arrived = time.time()
            message = viewer_message(text)
            received += 1
            kind = message.get("type")
            if kind == "hello":
                ack_every = message["ack_every"]
            elif kind == "frame":
                self._frame(message, arrived)
            elif kind == "dropped":
                self.dropped_reports += 1
            if received % ack_every == 0:
                await socket.send(json.dumps({"type": "ack", "received": received}))

    def _frame(self, message: dict, arrived: float) -> None:
        first, last = message["seq"]
        with self._lock:
            self.frames += 1
            if self.last_seq is not None and first != self.last_seq + 1:
                self.holes += 1
            if self.first_seq is None:
                self.first_seq = first
            self.last_seq = last
            self.seqs_seen += last - first + 1
            self.latencies.append(arrived - message["received_at"])

    def latency_ms(self, quantile: float) -> float | None:
        with self._lock:
            values = sorted(self.latencies)
        if not values:
            return None
        return 1000 * values[min(len(values) - 1, int(quantile * len(values)))]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


# -- the monitor and the gateway ----------------------------------------------------------------


def simulator(
    supervisor: Supervisor, directory: Path, *args: str, name: str = "firmware-sim"
) -> tuple[Service, Path, Path]:
    """firmware-sim on ``directory/ttyFG`` with a fault log: (the service, the link, the fault
    log), once the link exists (the simulator starts sending when a reader opens it)."""
    directory.mkdir(parents=True, exist_ok=True)
    link, fault_log = directory / "ttyFG", directory / "faults.jsonl"
    service = start_simulator(supervisor, link, "--fault-log", str(fault_log), *args, name=name)
    return service, link, fault_log


def campaign_chain(
    supervisor: Supervisor,
    directory: Path,
    name: str,
    *,
    rate: int,
    channels: int,
    seed: int,
    drain_timeout: float,
) -> tuple[RelayedS3, Service, Path, Path]:
    """What the soak, crash and power-cut campaigns stream through: a relayed local S3
    (bucket ``fieldgate-NAME``, prefix ``NAME``) and firmware-sim with its usual garbage and
    truncated lines. Returns (s3, simulator, link, fault log); the caller closes ``s3``."""
    s3 = RelayedS3(supervisor, bucket=f"fieldgate-{name}", prefix=name)
    sim, link, faults = simulator(
        supervisor,
        directory / "sim",
        "--rate", str(rate), "--channels", str(channels),
        "--seed", str(seed), "--drain-timeout", str(drain_timeout),
        "--faults", "garbage=0.001,truncated=0.0002",
    )  # fmt: skip
    return s3, sim, link, faults


def fault_entries(fault_log: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in fault_log.read_text().splitlines() if line]
    except FileNotFoundError:
        return []


def base_gateway_env(data_dir: Path, gateway_id: str) -> dict[str, str]:
    """Defaults for a chain gateway: quick status, reconnects and retries, so tests and
    campaigns see recoveries in seconds. Settings files and callers override them."""
    return {
        "GATEWAY_ID": gateway_id,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_LINE_FORMAT": "csv-seq",
        "GATEWAY_STATUS_SECONDS": "0.5",
        "GATEWAY_RECONNECT_MAX_SECONDS": "0.5",
        "GATEWAY_STREAM_RECONNECT_MAX_SECONDS": "2",
        "GATEWAY_STREAM_HEARTBEAT_SECONDS": "2",
        "GATEWAY_S3_TIMEOUT_SECONDS": "5",
        "GATEWAY_UPLOAD_RETRY_BASE_SECONDS": "0.5",
        "GATEWAY_UPLOAD_RETRY_MAX_SECONDS": "5",
        "GATEWAY_UPLOAD_RESCAN_SECONDS": "5",
        "GATEWAY_DASK_WORKERS": "2",
        "GATEWAY_LOG_LEVEL": "info",
    }


class Gateway(LocalGateway):
    """Reader and uploader on one data dir, with what tests and campaigns check of them:
    recovery after a (re)start, ``gateway audit`` and ``gateway status``."""

    def __init__(self, *args, audit_env: dict[str, str] | None = None, **options) -> None:
        """:class:`LocalGateway`'s arguments; ``audit_env`` changes the settings of audits."""
        super().__init__(*args, **options)
        self.audit_env = {**self.env, **(audit_env or {})}

    def recovered(self, service: Service) -> bool:
        """The running process has published its status (the reader: and opened the port)."""
        status = self.status(service.name)
        if status.get("pid") != service.pid or not status.get("running"):
            return False
        return service.name != "reader" or bool(status.get("port_open"))

    def wait_recovered(self, service: Service, timeout: float = 60) -> float:
        """Seconds until ``service`` recovered; raises if it does not or exits."""
        start = time.monotonic()
        while not self.recovered(service):
            problem = service.unexpected_exit()
            if problem:
                raise AssertionError(problem)
            if time.monotonic() - start > timeout:
                raise AssertionError(
                    f"{service.name} did not recover within {timeout} s:\n{service.log_tail()}"
                )
            time.sleep(0.02)
        return time.monotonic() - start

    def wait_all_recovered(self, services: list[Service], timeout: float = 60) -> dict:
        """Seconds from each service's start until it recovered (polled together)."""
        seconds: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(seconds) < len(services):
            for service in services:
                if service.name not in seconds and self.recovered(service):
                    seconds[service.name] = round(time.monotonic() - service.started_at, 2)
                problem = service.unexpected_exit()
                if problem:
                    raise AssertionError(problem)
            if time.monotonic() > deadline:
                late = [s.name for s in services if s.name not in seconds]
                raise AssertionError(f"{', '.join(late)} did not recover within {timeout} s")
            time.sleep(0.02)
        return seconds

    def command(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [GATEWAY, *args],
            env={**os.environ, **self.audit_env},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def audit(self, *args: str) -> tuple[int, dict]:
        """``gateway audit --json`` (past the relay): its exit status and the report."""
        done = self.command("audit", "--json", *args)
        try:
            (report,) = json.loads(done.stdout)
        except ValueError as error:
            raise AssertionError(
                f"gateway audit printed no report (status {done.returncode}): {done.stderr}"
            ) from error
        return done.returncode, report

    def inventory(self) -> dict:
        done = self.command("status", "--json", timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"gateway status failed: {done.stderr}")
        return json.loads(done.stdout)["inventory"]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (``#`` comments, blank lines, optional quotes), as systemd's
    EnvironmentFile and the gateway's GATEWAY_ENV_FILE read them."""
    from dotenv import dotenv_values

    if not path.is_file():
        raise FileNotFoundError(f"gateway settings file {path} does not exist")
    return {key: value for key, value in dotenv_values(path).items() if value is not None}
