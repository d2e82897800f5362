"""The central profile: real Redis and PostgreSQL servers started here, two ASGI workers; a
viewer on one worker receives what a gateway ingests on the other."""

import shutil
import tempfile
from pathlib import Path

import pytest

from gateway.supervise import Supervisor, wait_for
from gateway.supervise.chain import LocalSite, manage
from tests.support.web import (
    PG_BIN,
    Viewer,
    login_cookie,
    start_postgres,
    start_redis,
    web_env,
)

for tool in ("redis-server", str(PG_BIN / "initdb")):
    if shutil.which(tool) is None:  # make setup installs redis-server and postgresql
        pytest.skip(f"{tool} is not installed: run make setup", allow_module_level=True)

TOKEN = "fgt_central-token-0123456789abcdef"


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
            )
            manage(env, "migrate", "--noinput")
            manage(
                env,
                "demo_setup",
                *("--gateway", "remote-gw", "--token", TOKEN),
                *("--user", "ann", "--password", "pw-123"),
            )
            workers = [LocalSite(supervisor, env, name=f"worker{i}").port for i in (1, 2)]
            yield env, workers
    finally:
        shutil.rmtree(pg_dir, ignore_errors=True)


def test_a_viewer_on_one_worker_sees_frames_ingested_on_the_other(
    central, firmware_sim, processes, reader_env
):
    env, (viewer_port, ingest_port) = central
    base = f"http://127.0.0.1:{viewer_port}"
    viewer = Viewer(base, "/ws/live/remote-gw/", login_cookie(base, "ann", "pw-123"))
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
