"""The whole gateway chain as real processes, shared by hil/ and the soak and crash campaigns.

    monitor (firmware-sim on a PTY, or a real serial device) --> gateway reader --> data dir
      --> gateway uploader --> S3 (moto's server behind a relay that can be cut, or a real
      endpoint); reader --> stream --> the site (manage.py serve) --> a watcher socket

Every long-running process is a :class:`Service`: started, SIGKILLed and restarted on purpose,
checked for exits nobody asked for, and stopped by PID at the end, whatever happens.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from firmware_sim.launcher import simulator_command
from tests.support.processes import GATEWAY, read_status
from tests.support.s3 import CREDENTIALS, MotoServer, Relay, client
from tests.support.web import MANAGE, PYTHON, login_cookie, manage, wait_for_port, web_env

REPO = Path(__file__).resolve().parents[2]


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


class Service:
    """One long-running process of the chain; its output appended to ``log_path`` across
    restarts. ``kill`` is an injected crash; any other exit is :meth:`unexpected_exit`."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        *,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0  # time.monotonic() when the current process started
        self.starts = 0
        self.kills = 0
        self._exit_expected = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Service:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        with open(self.log_path, "ab") as log:
            log.write(f"--- {self.name} start {self.starts} at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
            )
        self.started_at = time.monotonic()
        self.starts += 1
        self._exit_expected = False
        return self

    def kill(self) -> None:
        """SIGKILL (an injected crash or power cut); waits until the process is gone."""
        self._exit_expected = True
        if self.running:
            self.process.kill()
            self.kills += 1
        if self.process is not None:
            self.process.wait(30)

    def terminate(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait: the exit status, or None if it had to be SIGKILLed."""
        self._exit_expected = True
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
                return None
        return self.process.returncode

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL after 10 s; never leaves the process behind."""
        self.terminate(10)

    def unexpected_exit(self) -> str | None:
        """A description if the process ended without being killed or stopped on purpose."""
        if self.process is None or self._exit_expected or self.process.poll() is None:
            return None
        self._exit_expected = True  # report it once
        return (
            f"{self.name} (pid {self.process.pid}) exited by itself with status "
            f"{self.process.returncode}; last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


# -- S3 -----------------------------------------------------------------------------------------


class LocalS3:
    """moto's standalone server as a process, a versioned bucket, and a :class:`Relay` in front
    of it: the gateway talks to the relay (``cut()`` is an outage), checks talk to the server.

    moto keeps objects in memory, so an outage is made at the network (the relay resets every
    connection and refuses new ones, as when a server dies), never by stopping the server.
    """

    def __init__(self, directory: Path, bucket: str = "fieldgate-hil", prefix: str = "hil") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.bucket = bucket
        self.prefix = prefix
        self.server = MotoServer(directory / "moto.log")
        try:
            self.client = client(self.server.url)
            self.client.create_bucket(Bucket=bucket)
            self.client.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
            self.relay = Relay(self.server.port, port=quiet_port())
        except BaseException:
            self.server.stop()
            raise
        self.outages = 0

    @property
    def pid(self) -> int:
        return self.server.process.pid

    def gateway_env(self, *, direct: bool = False) -> dict[str, str]:
        """Settings for a gateway service; ``direct``: past the relay (for audits)."""
        return {
            **CREDENTIALS,
            "GATEWAY_S3_BUCKET": self.bucket,
            "GATEWAY_S3_PREFIX": self.prefix,
            "GATEWAY_S3_ENDPOINT_URL": self.server.url if direct else self.relay.url,
        }

    def cut(self) -> None:
        self.relay.cut()
        self.outages += 1

    def restore(self) -> None:
        if self.relay._listener is None:
            self.relay.restore()

    def unexpected_exit(self) -> str | None:
        if self.server.process.poll() is not None:
            return f"moto_server exited by itself with status {self.server.process.returncode}"
        return None

    def stop(self) -> None:
        self.relay.close()
        self.server.stop()


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

    def unexpected_exit(self) -> str | None:
        return None

    def stop(self) -> None:
        pass


# -- the site -----------------------------------------------------------------------------------


class LocalSite:
    """The site (gateway profile) on a fixed free port, restartable on the same port, with
    one registered gateway and one login (as ``make demo`` sets it up)."""

    token = "fgt_chain-token-0123456789abcdef"
    user, password = "hil", "hil-password-123"

    def __init__(self, directory: Path, gateway_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.gateway_id = gateway_id
        self.env = web_env(directory / "web")
        manage(
            self.env,
            "demo_setup",
            *("--gateway", gateway_id, "--token", self.token),
            *("--user", self.user, "--password", self.password),
        )
        self.port = quiet_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ingest_url = f"ws://127.0.0.1:{self.port}/ws/ingest/"
        self.data_dir = directory / "web"
        self.service = Service(
            "site",
            [PYTHON, MANAGE, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            self.env,
            directory / "site.log",
            cwd=REPO,
        )
        self.start()

    def start(self) -> None:
        self.service.start()
        try:
            wait_for_port(self.port, 30, self.service.process)
        except BaseException:
            self.service.stop()
            raise

    def gateway_env(self) -> dict[str, str]:
        return {"GATEWAY_STREAM_URL": self.ingest_url, "GATEWAY_STREAM_TOKEN": self.token}

    def cookie(self) -> str:
        return login_cookie(self.base, self.user, self.password)

    def stop(self) -> None:
        self.service.stop()


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
            message = json.loads(text)
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


def simulator(directory: Path, *args: str, name: str = "firmware-sim") -> tuple[Service, Path]:
    """firmware-sim as a :class:`Service` on ``directory/ttyFG`` with a fault log; returns
    once the link exists (the simulator starts sending when a reader opens it)."""
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / "ttyFG"
    fault_log = directory / "faults.jsonl"
    service = Service(
        name,
        simulator_command("--link", str(link), "--fault-log", str(fault_log), *args),
        {},
        directory / f"{name}.log",
    )
    service.start()
    deadline = time.monotonic() + 15
    while not os.path.islink(link):
        if not service.running or time.monotonic() > deadline:
            service.stop()
            raise RuntimeError(f"firmware-sim did not create {link}: {service.log_tail()}")
        time.sleep(0.01)
    service.fault_log = fault_log
    return service, link


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


class Gateway:
    """``gateway reader`` and ``gateway uploader --foreground`` on one data dir."""

    def __init__(
        self,
        directory: Path,
        env: dict[str, str],
        port: str,
        *,
        mode: str = "full",
        baud: int | None = None,
        audit_env: dict[str, str] | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.audit_env = {**env, **(audit_env or {})}
        self.data_dir = Path(env["GATEWAY_DATA_DIR"])
        reader_args = [GATEWAY, "reader", "--port", port, "--mode", mode]
        if baud:
            reader_args += ["--baud", str(baud)]
        self.reader = Service("reader", reader_args, env, directory / "reader.log")
        self.uploader = Service(
            "uploader", [GATEWAY, "uploader", "--foreground"], env, directory / "uploader.log"
        )

    def status(self, service: str = "reader") -> dict:
        return read_status(self.data_dir, service) or {}

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

    def stop(self) -> None:
        self.reader.stop()
        self.uploader.stop()


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (``#`` comments, blank lines, optional quotes), as systemd's
    EnvironmentFile and the gateway's GATEWAY_ENV_FILE read them."""
    from dotenv import dotenv_values

    if not path.is_file():
        raise FileNotFoundError(f"gateway settings file {path} does not exist")
    return {key: value for key, value in dotenv_values(path).items() if value is not None}
