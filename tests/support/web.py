"""Run the site as real processes (ASGI servers, Redis, PostgreSQL) on the shared supervisor
(:mod:`gateway.supervise`) and talk to it like a browser or a gateway would. Every process is
stopped by PID at teardown.
"""

from __future__ import annotations

import http.cookiejar
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

from gateway.core.stream_protocol import viewer_message
from gateway.supervise import Supervisor
from gateway.supervise.chain import (  # noqa: F401 - the tests import them from here
    PG_BIN,
    LocalSite,
    SiteLogin,
    site_env,
    start_postgres,
    start_redis,
)

REPO = Path(__file__).resolve().parents[2]


def web_env(data_dir: Path, profile: str = "gateway", **extra: str) -> dict[str, str]:
    return {
        **site_env(data_dir, profile),
        "FIELDGATE_WEB_SECRET_KEY": "test-secret-key-not-for-production-0123456789",
        "PYTHONPATH": str(REPO),
        **extra,
    }


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


# Redis and PostgreSQL for the central profile: gateway/supervise/chain.py starts them for the
# tests and for `make demo-fleet` alike.


def gateway_frame(first: int, last: int, value: float = 1.0) -> dict:
    """A valid ingest frame of one channel for seqs ``first..last`` (docs/stream-protocol.md)."""
    count = last - first + 1
    return {
        "type": "frame",
        "seq": [first, last],
        "received_at": 100.0,
        "sent_at": 100.5,
        "samples": count,
        "t": [first / 1000 + i / 1000 for i in range(count)],
        "min": [[value] * count],
        "max": [[value] * count],
    }


class Viewer:
    """A viewer socket in its own thread, acknowledging like the browser does; records every
    message it receives with the time it arrived."""

    def __init__(self, base_url: str, path: str, cookie: str) -> None:
        import threading

        self.url = base_url.replace("http://", "ws://") + path
        self.headers = {"Cookie": cookie, "Origin": base_url}
        self.messages: list[tuple[float, dict]] = []
        self.binary_messages = 0  # frames that came as binary messages (decoded in messages)
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
                    message = viewer_message(text)
                    self.binary_messages += isinstance(text, bytes)
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


TEST_LOGIN = SiteLogin("test-gw", "fgt_integration-token-0123456789abcdef", "ann", "ann-pw-123")


def start_site(
    supervisor: Supervisor,
    directory: Path,
    *,
    login: SiteLogin = TEST_LOGIN,
    port: int | None = None,
    **env: str,
) -> LocalSite:
    """The site (gateway profile, data under ``directory/web``) with one gateway and one login,
    as ``make demo`` sets it up."""
    return LocalSite(supervisor, web_env(directory / "web", **env), login=login, port=port)


def viewer_cookie(site) -> str:
    """The Cookie header of ``site.login``'s viewer, logged in through the form."""
    return login_cookie(site.base, site.login.user, site.login.password)
