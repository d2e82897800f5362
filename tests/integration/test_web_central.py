"""The central profile: real Redis and PostgreSQL servers started here, two ASGI workers; a
viewer on one worker receives what a gateway ingests on the other; /metrics sums what both
workers counted; /healthz names the server that stopped answering."""

import json
import re
import shutil
import signal
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.supervise import Service, Supervisor, wait_for
from gateway.supervise.chain import LocalSite, manage
from tests.support.web import (
    PG_BIN,
    Viewer,
    gateway_frame,
    login_cookie,
    start_postgres,
    start_redis,
    web_env,
)

for tool in ("redis-server", str(PG_BIN / "initdb")):
    if shutil.which(tool) is None:  # make setup installs redis-server and postgresql
        pytest.skip(f"{tool} is not installed: run make setup", allow_module_level=True)

TOKEN = "fgt_central-token-0123456789abcdef"


@dataclass
class Central:
    env: dict[str, str]
    workers: list[int]  # their ports
    redis: Service
    postgres: Service


def named(supervisor: Supervisor, name: str) -> Service:
    return next(service for service in supervisor.services if service.name == name)


@pytest.fixture
def central(tmp_path):
    # PostgreSQL runs as 'nobody' under root: its directory must be reachable, so not under
    # pytest's private tmp_path.
    pg_dir = Path(tempfile.mkdtemp(prefix="fieldgate-pg-"))
    try:
        with Supervisor(tmp_path / "central") as supervisor:
            redis_port = start_redis(supervisor, tmp_path / "redis")
            pg_port = start_postgres(supervisor, pg_dir)
            env = web_env(
                tmp_path / "web",
                profile="central",
                FIELDGATE_WEB_DB_PORT=str(pg_port),
                FIELDGATE_WEB_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
                FIELDGATE_WEB_LOGIN_FAILURES_PER_CLIENT="4",
                # Long: a revocation must close sockets through Redis, not at this check.
                FIELDGATE_WEB_TOKEN_CHECK_SECONDS="60",
                FIELDGATE_WEB_WATCH_SECONDS="1",  # a gateway nobody watches pauses after 3 s
            )
            manage(env, "migrate", "--noinput")
            manage(
                env,
                "demo_setup",
                *("--gateway", "remote-gw", "--token", TOKEN),
                *("--user", "ann", "--password", "pw-123"),
            )
            workers = [LocalSite(supervisor, env, name=f"worker{i}").port for i in (1, 2)]
            yield Central(env, workers, named(supervisor, "redis"), named(supervisor, "postgres"))
    finally:
        shutil.rmtree(pg_dir, ignore_errors=True)


def test_a_viewer_on_one_worker_sees_frames_ingested_on_the_other(
    central, firmware_sim, processes, reader_env
):
    env, (viewer_port, ingest_port) = central.env, central.workers
    base = f"http://127.0.0.1:{viewer_port}"
    cookie = login_cookie(base, "ann", "pw-123")
    viewer = Viewer(base, "/ws/live/remote-gw/", cookie)
    try:
        sim = firmware_sim("--rate", "1000", "--channels", "4", "--samples", "3000")
        reader_settings = reader_env(
            id="remote-gw",
            stream_url=f"ws://127.0.0.1:{ingest_port}/ws/ingest/",
            stream_token=TOKEN,
            stream_heartbeat_seconds=0.5,
        )
        reader = processes.gateway(
            "reader", "--port", str(sim.port), "--mode", "demo", env=reader_settings
        )
        assert sim.wait(60) == 0, sim.stderr()
        wait_for(lambda: viewer.seqs()[-1:] == [2999], 15, message="the last seq via Redis")
        status = [m for _, m in viewer.messages if m["type"] == "status"]
        assert reader.stop() == 0
    finally:
        viewer.stop()
    assert viewer.seqs() == list(range(3000))
    assert viewer.binary_messages == len(viewer.frames())  # binary frames cross Redis as sent
    # Status went through PostgreSQL and Redis: the viewer's worker never saw the gateway.
    assert status and status[-1]["online"] is True and status[-1]["sample_rate"] > 0
    counts = manage(
        env,
        "shell",
        "--verbosity=0",
        "-c",
        "from web.fleet.models import Gateway; g = Gateway.objects.get(name='remote-gw'); "
        "print(g.frames_in > 0, g.connections)",
    )
    assert counts.split() == ["True", "0"]
    # The fleet page as PostgreSQL has it, without a script: the rate written, a sparkline.
    assert len(status[-1]["rates"]) >= 2
    request = urllib.request.Request(f"{base}/", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as response:
        page = response.read().decode()
    row = page.split('data-name="remote-gw"', 1)[1].split("</tr>", 1)[0]
    assert re.search(r'<td class="sample_rate">[0-9,]+ /s</td>', row), row
    assert re.search(r'<path d="M[0-9.]+ [0-9.]+ L', row), row


def test_a_viewer_on_one_worker_resumes_frames_paused_on_the_other(
    central, firmware_sim, processes, reader_env
):
    """Nobody watches: the ingesting worker pauses the reader's frames. A live view opening on
    the other worker renews its watch through Redis, and the frames come back to it."""
    from gateway.supervise.chain import read_status

    viewer_port, ingest_port = central.workers
    sim = firmware_sim("--rate", "1000", "--channels", "4", "--samples", "12000", "--seed", "4")
    settings = reader_env(
        id="remote-gw",
        stream_url=f"ws://127.0.0.1:{ingest_port}/ws/ingest/",
        stream_token=TOKEN,
        stream_heartbeat_seconds=0.5,
    )
    reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "full", env=settings)

    def stream() -> dict:
        return (read_status(Path(settings["GATEWAY_DATA_DIR"])) or {}).get("stream") or {}

    wait_for(lambda: stream().get("watched") is False, 20, message="the pause, nobody watching")
    base = f"http://127.0.0.1:{viewer_port}"
    viewer = Viewer(base, "/ws/live/remote-gw/", login_cookie(base, "ann", "pw-123"))
    try:
        wait_for(viewer.frames, 5, message="frames at the viewer on the other worker")
        wait_for(lambda: stream().get("watched") is True, 5, message="the reader resumed")
    finally:
        viewer.stop()
    assert reader.stop() == 0
    sim.stop()
    assert stream()["rows_unwatched"] > 0


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def health(port: int) -> tuple[int, dict]:
    status, body = get(port, "/healthz")
    return status, json.loads(body)


def test_healthz_names_the_server_that_stopped_answering(central):
    port = central.workers[0]
    assert health(port) == (200, {"status": "ok", "database": "ok", "channel_layer": "ok"})

    central.redis.stop()
    assert health(port) == (503, {"status": "failing", "database": "ok", "channel_layer": "failed"})
    central.redis.start()  # same port: the workers reconnect by themselves
    wait_for(lambda: health(port)[0] == 200, 20, "the channel layer back")

    central.postgres.process.send_signal(signal.SIGINT)  # fast shutdown: sessions are cut
    central.postgres.wait(30)
    assert health(port) == (503, {"status": "failing", "database": "failed", "channel_layer": "ok"})


def metric_samples(port: int) -> dict[tuple[str, tuple], float]:
    status, text = get(port, "/metrics")
    assert status == 200, text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def ingest(port: int, token: str, frames: range) -> int | None:
    """One gateway socket on worker ``port``: the frames, then a close; the close code the site
    sent (None when it accepted and we closed)."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {token}", "X-Fieldgate-Gateway": "remote-gw"}
    url = f"ws://127.0.0.1:{port}/ws/ingest/"
    with connect(url, additional_headers=headers, proxy=None) as socket:
        try:
            welcome = json.loads(socket.recv(10))
            assert welcome["type"] == "welcome"
            for n in frames:
                socket.send(json.dumps(gateway_frame(n * 10, n * 10 + 9)))
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
    return None


def test_metrics_sum_what_every_worker_counted(central):
    first, second = central.workers
    assert ingest(first, TOKEN, range(0, 40)) is None
    assert ingest(second, TOKEN, range(40, 65)) is None
    for port, refusals in ((first, 2), (second, 3)):
        for _ in range(refusals):
            assert ingest(port, "fgt_not-the-token-of-anyone", range(0)) == 4403
    frames = ("fieldgate_frames_received_total", (("gateway", "remote-gw"),))
    counted = ("fieldgate_ingest_frames_total", ())
    refused = ("fieldgate_ingest_connections_refused_total", (("reason", "wrong_token"),))

    def summed(port: int) -> bool:
        found = metric_samples(port)
        return (found[frames], found[counted], found[refused]) == (65, 65, 5)

    # Each worker adds its counts to Redis within a second; either one answers for both.
    wait_for(lambda: summed(first) and summed(second), 10, "both workers' counts in /metrics")
    found = metric_samples(second)
    assert found[("fieldgate_gateways", (("state", "offline"),))] == 1
    assert found[("fieldgate_gateways", (("state", "online"),))] == 0


def login_status(port: int, password: str) -> int:
    """POST the login form of worker ``port`` (its CSRF cookie and token first)."""
    import http.cookiejar
    import re
    import urllib.parse

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(jar), urllib.request.ProxyHandler({})
    )
    base = f"http://127.0.0.1:{port}"
    page = opener.open(f"{base}/accounts/login/", timeout=15).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    form = {"username": "ann", "password": password, "csrfmiddlewaretoken": token}
    request = urllib.request.Request(
        f"{base}/accounts/login/",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Referer": f"{base}/"},
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    opener.add_handler(NoRedirect())
    try:
        with opener.open(request, timeout=15) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_limits_and_revocations_reach_every_worker_through_redis(central):
    import time

    first, second = central.workers
    wrong = [login_status(port, "wrong") for port in (first, second, first, second)]
    assert wrong == [200] * 4  # the form again, with its error
    # FIELDGATE_WEB_LOGIN_FAILURES_PER_CLIENT=4, counted in Redis: both workers refuse now.
    assert login_status(first, "pw-123") == 429
    assert login_status(second, "pw-123") == 429

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {TOKEN}", "X-Fieldgate-Gateway": "remote-gw"}
    url = f"ws://127.0.0.1:{central.workers[1]}/ws/ingest/"
    with connect(url, additional_headers=headers, proxy=None) as socket:
        assert json.loads(socket.recv(10))["type"] == "welcome"
        # Idle for longer than the layer's 5 s blocking pop: the socket stays (redis-py 8's
        # 5 s read timeout used to end the consumer here, without a close code).
        with pytest.raises(TimeoutError):
            socket.recv(7)
        began = time.monotonic()
        manage(central.env, "revoke_gateway", "remote-gw")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.recv(10)
        took = time.monotonic() - began
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4410, "token revoked")
    assert took < 10  # the command's own start-up is most of it; the check is 60 s away
