"""The chain's local pieces, as ``make demo`` and the tests start them, each under a
:class:`~gateway.supervise.process.Supervisor`::

    firmware-sim on a PTY link --> gateway reader --> data dir --> gateway uploader --> local S3
                                        \\--> live stream --> the site (manage.py serve)

The local S3 endpoint is moto's standalone server, a development tool (``make setup`` installs
it); boto3 is imported only to create its bucket, so this module imports without either.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.store.layout import DataDir
from gateway.supervise.process import (
    Service,
    Supervisor,
    free_port,
    listening,
    wait_for,
    wait_http,
)

BIN = Path(sys.executable).parent
GATEWAY = str(BIN / "gateway")
MOTO_SERVER = str(BIN / "moto_server")
# web/ is installed next to gateway/ (the checkout, or site-packages).
MANAGE = str(Path(__file__).resolve().parents[2] / "web" / "manage.py")
READY_SECONDS = 30.0  # how long a server may take to answer after its start
PG_BIN = Path("/usr/lib/postgresql/15/bin")  # Debian 12's postgresql package


def read_status(data_dir: Path, service: str = "reader") -> dict | None:
    """The counters ``service`` last published in ``data_dir``; None before it first did."""
    try:
        return json.loads(DataDir(data_dir).status_file(service).read_text())
    except (FileNotFoundError, ValueError):  # not yet written, or caught mid-rewrite
        return None


# -- S3 -----------------------------------------------------------------------------------------


def s3_client(url: str, credentials: Mapping[str, str]):
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        region_name=credentials.get("AWS_DEFAULT_REGION", "us-east-1"),
    ).client("s3", endpoint_url=url, config=Config(s3={"addressing_style": "path"}))


class LocalS3:
    """moto's S3 server on 127.0.0.1 with ``bucket`` created (versioned: every overwrite
    shows); it keeps objects in memory, for as long as it runs."""

    def __init__(
        self,
        supervisor: Supervisor,
        bucket: str,
        credentials: Mapping[str, str],
        *,
        versioned: bool = False,
        port: int | None = None,
        name: str = "s3",
    ) -> None:
        self.bucket = bucket
        self.credentials = dict(credentials)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service = supervisor.start(
            name, [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)], env=self.credentials
        )
        wait_http(f"{self.url}/moto-api/", READY_SECONDS, service=self.service)
        self.client = s3_client(self.url, self.credentials)
        self.client.create_bucket(Bucket=bucket)
        if versioned:
            self.client.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )

    def gateway_env(self, prefix: str) -> dict[str, str]:
        """Settings for an uploader (or audit) writing under ``prefix`` of the bucket."""
        return {
            **self.credentials,
            "GATEWAY_S3_BUCKET": self.bucket,
            "GATEWAY_S3_PREFIX": prefix,
            "GATEWAY_S3_ENDPOINT_URL": self.url,
        }


# -- Redis and PostgreSQL (the site's central profile) ----------------------------------------


def start_redis(supervisor: Supervisor, directory: Path) -> int:
    """A Redis server on 127.0.0.1 that saves nothing; returns its port."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    redis = supervisor.start(
        "redis",
        [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
            *("--save", "", "--appendonly", "no"),
        ],
    )
    wait_for(lambda: listening(port), 20, f"redis on port {port}", service=redis)
    return port


def start_postgres(supervisor: Supervisor, directory: Path) -> int:
    """A throw-away cluster (initdb) with database and user ``fieldgate``, owned by 'nobody'
    if we are root (PostgreSQL refuses to run as root, so ``directory`` must be reachable by
    it: not under a private home); returns its port."""
    port = free_port()
    user = "nobody" if os.getuid() == 0 else None
    identity = {}
    if user is not None:
        account = pwd.getpwnam(user)
        identity = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    data, sockets = directory / "pgdata", directory / "pgsock"
    for path in (directory, sockets):
        path.mkdir(parents=True, exist_ok=True)
        if user is not None:
            os.chown(path, identity["user"], identity["group"])
    subprocess.run(
        [str(PG_BIN / "initdb"), "-D", str(data), "-U", "fieldgate", "--auth=trust"]
        + ["--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
        cwd=directory,
        **identity,
    )
    postgres = supervisor.start(
        "postgres",
        [
            *(str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets)),
            *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
        ],
        user=user,
        cwd=directory,
    )

    def ready() -> bool:
        probe = [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]
        return subprocess.run(probe, capture_output=True).returncode == 0

    wait_for(ready, 30, "postgres to accept connections", interval=0.1, service=postgres)
    subprocess.run(
        [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
        + ["-U", "fieldgate", "fieldgate"],
        check=True,
        capture_output=True,
    )
    return port


# -- the site -----------------------------------------------------------------------------------


def site_env(data_dir: Path, profile: str = "gateway") -> dict[str, str]:
    """Settings of the site with the ``profile`` settings (gateway: SQLite in ``data_dir``)."""
    return {
        "DJANGO_SETTINGS_MODULE": f"web.settings.{profile}",
        "FIELDGATE_WEB_DATA_DIR": str(data_dir),
    }


def manage(env: Mapping[str, str], *args: str) -> str:
    """``web/manage.py ARGS`` to completion: its output. Raises ``RuntimeError`` with its
    error output if it fails."""
    done = subprocess.run(
        [sys.executable, MANAGE, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


@dataclass(frozen=True)
class SiteLogin:
    """A gateway with its ingest token and a person who may view it, as ``demo_setup`` makes
    them (and resets them on every run)."""

    gateway_id: str
    token: str
    user: str
    password: str


class LocalSite:
    """The site (``manage.py serve``: uvicorn) on 127.0.0.1:``port``, restartable on that
    port; with ``login``, its gateway and viewer are set up first."""

    def __init__(
        self,
        supervisor: Supervisor,
        env: Mapping[str, str],
        *,
        login: SiteLogin | None = None,
        port: int | None = None,
        name: str = "site",
        workers: int = 1,
        more_gateways: Mapping[str, str] | None = None,
    ) -> None:
        self.env = dict(env)
        self.login = login
        if login is not None:
            more = [f"{gateway}={token}" for gateway, token in (more_gateways or {}).items()]
            manage(
                self.env,
                "demo_setup",
                *("--gateway", login.gateway_id, "--token", login.token),
                *("--user", login.user, "--password", login.password),
                *(arg for pair in more for arg in ("--more", pair)),
            )
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ingest_url = f"ws://127.0.0.1:{self.port}/ws/ingest/"
        serve = [sys.executable, MANAGE, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if workers > 1:
            serve += ["--workers", str(workers)]
        self.service = supervisor.service(name, serve, env=self.env)
        self.start()

    def start(self) -> None:
        """Start the server (again) and wait until its login page answers."""
        self.service.start()
        wait_http(f"{self.base}/accounts/login/", READY_SECONDS, service=self.service)

    def gateway_env(self) -> dict[str, str]:
        """Settings that stream a reader to this site as ``login``'s gateway."""
        if self.login is None:
            raise RuntimeError("this site was started without a gateway login")
        return {"GATEWAY_STREAM_URL": self.ingest_url, "GATEWAY_STREAM_TOKEN": self.login.token}


# -- the monitor and the gateway ----------------------------------------------------------------


def start_simulator(
    supervisor: Supervisor, link: Path, *args: str, name: str = "firmware-sim"
) -> Service:
    """``firmware-sim --link LINK ARGS``: a simulated monitor on a socat PTY pair, returned
    once ``link`` exists; it starts sending when a reader opens the port."""
    service = supervisor.start(
        name, [sys.executable, "-m", "firmware_sim", "--link", str(link), *args]
    )
    wait_for(lambda: os.path.islink(link), 15, f"firmware-sim to create {link}", service=service)
    return service


class LocalGateway:
    """``gateway reader`` on ``port`` and ``gateway uploader --foreground``, on the data dir
    and with the settings of ``env``; made, not started."""

    def __init__(
        self,
        supervisor: Supervisor,
        env: Mapping[str, str],
        port: str,
        *,
        mode: str = "full",
        baud: int | None = None,
        name: str = "",
    ) -> None:
        self.env = dict(env)
        self.data_dir = Path(self.env["GATEWAY_DATA_DIR"])
        reader = [GATEWAY, "reader", "--port", port, "--mode", mode]
        if baud:
            reader += ["--baud", str(baud)]
        prefix = f"{name}-" if name else ""  # several gateways under one supervisor
        self.reader = supervisor.service(f"{prefix}reader", reader, env=self.env)
        self.uploader = supervisor.service(
            f"{prefix}uploader", [GATEWAY, "uploader", "--foreground"], env=self.env
        )

    def start(self) -> LocalGateway:
        self.reader.start()
        self.uploader.start()
        return self

    def status(self, service: str = "reader") -> dict:
        """What ``service`` last published ({} before it first did)."""
        return read_status(self.data_dir, service) or {}
