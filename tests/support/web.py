"""Run the site as real processes (ASGI servers, Redis, PostgreSQL) and talk to it like a
browser or a gateway would. Every process is stopped by PID at teardown.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support.processes import LoggedProcess, free_port

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
MANAGE = str(REPO / "web" / "manage.py")
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args[:3]} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on port {port} after {timeout} s")
        time.sleep(0.05)


Process = LoggedProcess


class Processes:
    """Everything a test started; ``stop_all()`` at teardown, newest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Process] = []

    def start(self, name: str, args: list[str], env: dict | None = None, **popen) -> Process:
        process = Process(args, self.directory / f"{name}.log", env, **popen)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()


def web_env(data_dir: Path, profile: str = "gateway", **extra: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": f"web.settings.{profile}",
        "FIELDGATE_WEB_DATA_DIR": str(data_dir),
        "FIELDGATE_WEB_SECRET_KEY": "test-secret-key-not-for-production-0123456789",
        "PYTHONPATH": str(REPO),
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, MANAGE, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


def start_site(processes: Processes, env: dict[str, str], name: str = "site", port: int = 0):
    """``manage.py serve`` (uvicorn + uvloop) on a free port; returns (process, port)."""
    port = port or free_port()
    process = processes.start(name, [PYTHON, MANAGE, "serve", "--port", str(port)], env)
    wait_for_port(port, 30, process.process)
    return process, port


def login_cookie(base_url: str, user: str, password: str) -> str:
    """Log in through the login form like a browser; return the Cookie header to send."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base_url}/accounts/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    form = urllib.parse.urlencode(
        {"username": user, "password": password, "csrfmiddlewaretoken": token, "next": "/"}
    ).encode()
    request = urllib.request.Request(
        f"{base_url}/accounts/login/", data=form, headers={"Referer": f"{base_url}/"}
    )
    opener.open(request, timeout=10).read()
    cookies = {cookie.name: cookie.value for cookie in jar}
    if "sessionid" not in cookies:
        raise AssertionError(f"login as {user!r} failed")
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


# -- Redis and PostgreSQL for the central profile ----------------------------------------------


def start_redis(processes: Processes, directory: Path) -> int:
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    redis = processes.start(
        "redis",
        [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    )
    wait_for_port(port, 20, redis.process)
    return port


def _demote():
    """PostgreSQL refuses to run as root: run it as 'nobody' when we are root."""
    if os.getuid() == 0:
        import pwd

        nobody = pwd.getpwnam("nobody")
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)


def start_postgres(processes: Processes, directory: Path) -> int:
    """A throw-away cluster (initdb) owned by 'nobody' if we are root; returns its port."""
    port = free_port()
    data, sockets = directory / "pgdata", directory / "pgsock"
    for path in (directory, sockets):
        path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        import pwd

        nobody = pwd.getpwnam("nobody")
        for path in (directory, sockets):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
    subprocess.run(
        [
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "fieldgate",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
        preexec_fn=_demote,
        cwd=directory,
    )
    postgres = processes.start(
        "postgres",
        [
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(sockets),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
        ],
        preexec_fn=_demote,
        cwd=directory,
    )
    deadline = time.monotonic() + 30
    while True:
        ready = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
            capture_output=True,
        )
        if ready.returncode == 0:
            break
        if postgres.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"postgres did not start: {postgres.log()[-2000:]}")
        time.sleep(0.1)
    subprocess.run(
        [str(PG_BIN.parent / "bin" / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
        + ["-U", "fieldgate", "fieldgate"],
        check=True,
        capture_output=True,
    )
    return port


class Viewer:
    """A viewer socket in its own thread, acknowledging like the browser does; records every
    message it receives with the time it arrived."""

    def __init__(self, base_url: str, path: str, cookie: str) -> None:
        import threading

        self.url = base_url.replace("http://", "ws://") + path
        self.headers = {"Cookie": cookie, "Origin": base_url}
        self.messages: list[tuple[float, dict]] = []
        self.close_code: int | None = None
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self.opened.wait(15):
            raise TimeoutError(f"viewer could not open {self.url}")

    def _run(self) -> None:
        import asyncio

        asyncio.run(self._main())

    async def _main(self) -> None:
        import asyncio
        import json

        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        async with connect(self.url, additional_headers=self.headers, proxy=None) as socket:
            self.opened.set()
            received, ack_every = 0, 8
            try:
                while not self._stop.is_set():
                    try:
                        text = await asyncio.wait_for(socket.recv(), 0.2)
                    except TimeoutError:
                        continue
                    message = json.loads(text)
                    self.messages.append((time.time(), message))
                    received += 1
                    if message["type"] == "hello":
                        ack_every = message["ack_every"]
                    if received % ack_every == 0:
                        await socket.send(json.dumps({"type": "ack", "received": received}))
            except ConnectionClosed as closed:
                self.close_code = closed.rcvd.code if closed.rcvd else None

    def frames(self) -> list[dict]:
        return [m for _, m in list(self.messages) if m["type"] == "frame"]

    def seqs(self) -> list[int]:
        return [s for f in self.frames() for s in range(f["seq"][0], f["seq"][1] + 1)]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "artifacts" / "web"


class Site:
    """The site on a free port with one gateway and one login, as ``make demo`` sets it up."""

    token = "fgt_integration-token-0123456789abcdef"
    user, password = "ann", "ann-pw-123"

    def __init__(self, directory: Path, gateway: str = "test-gw", **env: str) -> None:
        self.processes = Processes(directory)
        self.gateway = gateway
        self.env = web_env(directory / "web", **env)
        manage(
            self.env,
            "demo_setup",
            *("--gateway", gateway, "--token", self.token),
            *("--user", self.user, "--password", self.password),
        )
        try:
            self.server, self.port = start_site(self.processes, self.env)
        except BaseException:
            self.processes.stop_all()
            raise
        self.base = f"http://127.0.0.1:{self.port}"
        self.ingest_url = f"ws://127.0.0.1:{self.port}/ws/ingest/"

    def cookie(self) -> str:
        return login_cookie(self.base, self.user, self.password)

    def stop(self) -> None:
        self.processes.stop_all()
