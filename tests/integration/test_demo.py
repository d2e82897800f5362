"""``make demo`` as a user runs it: the site answers (``/healthz`` without a login), batches
reach S3, Ctrl-C stops every process it started and exits 0."""

import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

from gateway.supervise import Supervisor, free_port, wait_for, wait_http
from gateway.supervise.chain import read_status
from tests.support.procstat import alive
from tests.support.web import login_cookie


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now: its children, theirs, and so on."""
    found: set[int] = set()
    parents = [pid]
    while parents:
        parent = parents.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = {int(child) for child in (task / "children").read_text().split()}
            except FileNotFoundError:  # the task ended meanwhile
                continue
            parents += children - found
            found |= children
    return found


def served_history_and_export(base: str) -> None:
    """The demo's site reads its gateway's own batches: the last minute as frames, a range as
    the CSV the batches hold."""
    cookie = login_cookie(base, "demo", "demo-password")

    def get(path: str) -> bytes:
        request = urllib.request.Request(base + path, headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200, path
            return response.read()

    history = json.loads(get("/gateways/demo/history.json?seconds=60"))
    assert history["frames"], history
    now = time.time()
    rows = get(f"/gateways/demo/export.csv?from={now - 120:.0f}&to={now + 5:.0f}")
    header, first = rows.decode().splitlines()[:2]
    assert header.startswith("seq,received_at,") and first.split(",")[0].isdigit(), rows[:200]


def test_make_demo_serves_the_site_uploads_and_ctrl_c_stops_every_process(tmp_path):
    port = free_port()  # not 8000: the machine may run a demo of its own
    data_dir = tmp_path / "demo-data" / "data"
    started: set[int] = set()
    with Supervisor(tmp_path / "logs") as supervisor:
        demo = supervisor.start(
            "demo",
            [sys.executable, "-m", "gateway.commands.demo", "--port", str(port)],
            cwd=tmp_path,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/accounts/login/", 60, service=demo)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as health:
                assert health.status == 200
                assert json.load(health) == {
                    "status": "ok",
                    "database": "ok",
                    "channel_layer": "ok",
                }
            wait_for(
                lambda: (
                    (read_status(data_dir, "uploader") or {}).get("counters", {}).get("uploaded")
                ),
                45,
                "a batch uploaded",
                service=demo,
            )
            served_history_and_export(f"http://127.0.0.1:{port}")
            started = descendants(demo.pid)
            reader, uploader = read_status(data_dir, "reader"), read_status(data_dir, "uploader")
            assert {reader["pid"], uploader["pid"]} <= started
            assert len(started) >= 7  # s3, site, simulator + socat, reader + relay, uploader
            os.kill(demo.pid, signal.SIGINT)
            assert demo.wait(60) == 0, demo.log_tail()
            wait_for(
                lambda: not [pid for pid in started if alive(pid)],
                5,
                f"every process the demo started to end: {sorted(started)}",
            )
        finally:
            for pid in started:  # if the demo left any, the machine is still left clean
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
    output = demo.log()
    assert (
        f"Live view:  http://127.0.0.1:{port}/gateways/demo/   (login: demo / demo-password)"
        in (output)
    )
    assert "Ctrl-C stops everything." in output
    final = output.splitlines()[-2]
    assert final.startswith("seq ") and " uploaded 0 " not in final, final
    assert output.splitlines()[-1].startswith(f"stopped; `GATEWAY_DATA_DIR={data_dir} ")
