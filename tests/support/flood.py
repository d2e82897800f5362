"""A flood of wrong ingest tokens from one client address while a legitimate gateway, from
another, connects again and again: how long its welcome takes (issue 17's probe).

The flood comes from 127.0.0.2 (any 127.x address reaches a server on 127.0.0.1 over Linux's
loopback), the gateway from 127.0.0.1, so a per-client limit can tell them apart as it would
two hosts. ``python -m tests.support.flood`` measures a site of its own and prints the figures.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field

FLOOD_ADDRESS = "127.0.0.2"


@dataclass
class FloodResult:
    welcome_seconds: list[float] = field(default_factory=list)  # the legitimate gateway's
    flood_attempts: int = 0
    flood_close_codes: dict[int, int] = field(default_factory=dict)

    def summary(self) -> dict:
        times = sorted(self.welcome_seconds)
        return {
            "welcomes": len(times),
            "welcome_median_s": round(statistics.median(times), 4) if times else None,
            "welcome_max_s": round(times[-1], 4) if times else None,
            "flood_attempts": self.flood_attempts,
            "flood_close_codes": dict(sorted(self.flood_close_codes.items())),
        }


async def _attempt(url: str, headers: dict, local_address: str | None) -> int | None:
    """One ingest socket: the close code the site sent, or None once welcomed (then closed)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    options = {"local_addr": (local_address, 0)} if local_address else {}
    try:
        async with connect(
            url, additional_headers=headers, proxy=None, open_timeout=30, **options
        ) as socket:
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), 30))
                if message.get("type") == "welcome":
                    return None
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else -1
    except (OSError, TimeoutError, ConnectionClosed):
        return -1
    return -1


async def measure(
    ingest_url: str,
    gateway: str,
    token: str,
    *,
    seconds: float,
    flood_per_second: float,
    welcome_every: float = 0.25,
) -> FloodResult:
    """For ``seconds``: wrong tokens at ``flood_per_second`` (each attempt its own task, so a
    slow site does not slow the flood), and the right one every ``welcome_every`` s."""
    result = FloodResult()
    wrong = {"Authorization": "Bearer fgt_not-the-token-0123456789", "X-Fieldgate-Gateway": gateway}
    right = {"Authorization": f"Bearer {token}", "X-Fieldgate-Gateway": gateway}
    tasks: set[asyncio.Task] = set()

    async def flood_one() -> None:
        code = await _attempt(ingest_url, wrong, FLOOD_ADDRESS)
        result.flood_close_codes[code] = result.flood_close_codes.get(code, 0) + 1

    async def flood() -> None:
        if flood_per_second <= 0:
            return
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            while result.flood_attempts < elapsed * flood_per_second:
                result.flood_attempts += 1
                task = asyncio.create_task(flood_one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(0.005)

    async def legitimate() -> None:
        await asyncio.sleep(min(1.0, seconds / 4))  # let the flood build up first
        end = time.monotonic() + seconds - min(1.0, seconds / 4)
        while time.monotonic() < end:
            began = time.perf_counter()
            code = await _attempt(ingest_url, right, None)
            if code is not None:
                raise AssertionError(f"the legitimate gateway was refused with {code}")
            result.welcome_seconds.append(time.perf_counter() - began)
            await asyncio.sleep(welcome_every)

    await asyncio.gather(flood(), legitimate())
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    return result


def main() -> int:
    import argparse
    import tempfile
    from pathlib import Path

    from gateway.supervise import Supervisor
    from tests.support.web import start_postgres, start_redis, start_site

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=100, help="wrong tokens per second")
    parser.add_argument("--central", action="store_true", help="PostgreSQL and Redis")
    arguments = parser.parse_args()
    # PostgreSQL runs as 'nobody' under root: a directory it can reach.
    with (
        tempfile.TemporaryDirectory(dir="/tmp") as directory,
        Supervisor(Path(directory) / "logs") as supervisor,
    ):
        Path(directory).chmod(0o755)
        env = {}
        if arguments.central:
            redis = start_redis(supervisor, Path(directory) / "redis")
            postgres = start_postgres(supervisor, Path(directory) / "pg")
            env = {
                "DJANGO_SETTINGS_MODULE": "web.settings.central",
                "FIELDGATE_WEB_DB_PORT": str(postgres),
                "FIELDGATE_WEB_REDIS_URL": f"redis://127.0.0.1:{redis}/0",
            }
        site = start_site(supervisor, Path(directory), **env)
        login = site.login
        for rate in (0, arguments.rate):
            result = asyncio.run(
                measure(
                    site.ingest_url,
                    login.gateway_id,
                    login.token,
                    seconds=arguments.seconds,
                    flood_per_second=rate,
                )
            )
            print(json.dumps({"flood_per_second": rate, **result.summary()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
