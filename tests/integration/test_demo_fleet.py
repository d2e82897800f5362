"""``make demo FLEET=1`` as a newcomer runs it: three gateways of different kinds online on a
central site with its own PostgreSQL and Redis, each uploading; revoking the demo gateway
closes its stream within 10 s (its reader logs the refusal) while the others stream on; Ctrl-C
leaves no process and no server files behind."""

import json
import shutil
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.supervise import Supervisor, free_port, wait_for, wait_http
from gateway.supervise.chain import PG_BIN, manage, read_status
from tests.integration.test_demo import descendants
from tests.support.procstat import alive
from tests.support.web import login_cookie

for tool in ("redis-server", "socat", str(PG_BIN / "initdb")):
    if shutil.which(tool) is None:  # make setup installs them
        pytest.skip(f"{tool} is not installed: run make setup", allow_module_level=True)

GATEWAYS = ("demo", "gps", "uno")


def server_dirs() -> set[Path]:
    return set(Path("/tmp").glob("fieldgate-demo-fleet-*"))


def fleet_rows(base: str, cookie: str) -> dict[str, dict]:
    request = urllib.request.Request(f"{base}/fleet/gateways.json", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as response:
        return {row["name"]: row for row in json.load(response)["rows"]}


def test_the_fleet_demo_streams_three_kinds_and_a_revocation_closes_one(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    root = tmp_path / "demo-data" / "fleet"
    before = server_dirs()
    with Supervisor(tmp_path / "logs") as supervisor:
        demo = supervisor.start(
            "demo",
            [sys.executable, "-m", "gateway.commands.demo", "--fleet", "--port", str(port)],
            cwd=tmp_path,
        )
        wait_http(f"{base}/accounts/login/", 90, service=demo)
        cookie = login_cookie(base, "demo", "demo-password")

        def all_online_and_uploading() -> bool:
            rows = fleet_rows(base, cookie)
            uploaded = [
                (read_status(root / name, "uploader") or {}).get("counters", {}).get("uploaded")
                for name in GATEWAYS
            ]
            return all(rows[name]["online"] for name in GATEWAYS) and all(uploaded)

        wait_for(all_online_and_uploading, 90, "3 gateways online and uploading", service=demo)
        rows = fleet_rows(base, cookie)
        assert {name: rows[name]["sample_rate"] > 0 for name in GATEWAYS} == dict.fromkeys(
            GATEWAYS, True
        )

        site_env = dict(line.split("=", 1) for line in (root / "site.env").read_text().splitlines())
        reader_log = root / "logs" / "demo-reader.log"
        began = time.monotonic()
        manage(site_env, "revoke_gateway", "demo")
        wait_for(
            lambda: "closed 4410 token revoked" in reader_log.read_text(),
            10 - (time.monotonic() - began),
            "the demo reader to log the revocation",
        )
        took = time.monotonic() - began
        rows = fleet_rows(base, cookie)
        assert rows["demo"]["revoked"] and not rows["demo"]["online"]
        assert rows["gps"]["online"] and rows["uno"]["online"]
        assert (
            'event=ingest_closed gateway=demo reason="token revoked"'
            in (root / "logs" / "site.log").read_text()
        )

        started = descendants(demo.pid)
        demo.process.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0, demo.log_tail()
    print(f"revocation to the reader's log: {took:.2f} s")
    assert started and not [pid for pid in started if alive(pid)]
    assert server_dirs() <= before  # PostgreSQL's and Redis' files removed
    assert not (root / "site.env").exists()
    assert "stopped; each gateway's data is under" in demo.log()
