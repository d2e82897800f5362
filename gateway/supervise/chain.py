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
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.store.layout import DataDir
from gateway.supervise.process import Service, Supervisor, free_port, wait_for, wait_http

BIN = Path(sys.executable).parent
GATEWAY = str(BIN / "gateway")
MOTO_SERVER = str(BIN / "moto_server")
# web/ is installed next to gateway/ (the checkout, or site-packages).
MANAGE = str(Path(__file__).resolve().parents[2] / "web" / "manage.py")
READY_SECONDS = 30.0  # how long a server may take to answer after its start


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
    ) -> None:
        self.env = dict(env)
        self.login = login
        if login is not None:
            manage(
                self.env,
                "demo_setup",
                *("--gateway", login.gateway_id, "--token", login.token),
                *("--user", login.user, "--password", login.password),
            )
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ingest_url = f"ws://127.0.0.1:{self.port}/ws/ingest/"
        self.service = supervisor.service(
            name,
            [sys.executable, MANAGE, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
        )
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
    ) -> None:
        self.env = dict(env)
        self.data_dir = Path(self.env["GATEWAY_DATA_DIR"])
        reader = [GATEWAY, "reader", "--port", port, "--mode", mode]
        if baud:
            reader += ["--baud", str(baud)]
        self.reader = supervisor.service("reader", reader, env=self.env)
        self.uploader = supervisor.service(
            "uploader", [GATEWAY, "uploader", "--foreground"], env=self.env
        )

    def start(self) -> LocalGateway:
        self.reader.start()
        self.uploader.start()
        return self

    def status(self, service: str = "reader") -> dict:
        """What ``service`` last published ({} before it first did)."""
        return read_status(self.data_dir, service) or {}
