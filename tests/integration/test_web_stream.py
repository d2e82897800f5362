"""simulator -> reader -> a real ASGI server (uvicorn) -> a websocket viewer, all real processes."""

import time
from pathlib import Path

import pytest

from gateway.supervise import Supervisor, wait_for
from tests.support.batches import read_rows, seqs
from tests.support.processes import run_gateway
from tests.support.web import TEST_LOGIN, Viewer, start_site, viewer_cookie


@pytest.fixture
def site(tmp_path):
    """The gateway profile on a free port, with gateway 'test-gw' and user 'ann'."""
    with Supervisor(tmp_path / "site") as supervisor:
        site = start_site(supervisor, tmp_path)
        yield site.base, viewer_cookie(site), site.service


def stream_env(reader_env, base: str, token: str = TEST_LOGIN.token, **changes) -> dict:
    return reader_env(
        stream_url=base.replace("http://", "ws://") + "/ws/ingest/",
        stream_token=token,
        stream_heartbeat_seconds=0.5,
        stream_reconnect_max_seconds=1,
        **changes,
    )


def test_a_viewer_receives_frames_covering_every_seq_the_reader_stored(
    site, firmware_sim, processes, reader_env
):
    base, cookie, server = site
    viewer = Viewer(base, "/ws/live/test-gw/", cookie)
    try:
        sim = firmware_sim("--rate", "1000", "--channels", "8", "--samples", "6000", "--seed", "2")
        env = stream_env(reader_env, base)
        reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "full", env=env)
        assert sim.wait(60) == 0, sim.stderr()
        wait_for(lambda: viewer.seqs()[-1:] == [5999], 15, message="the last seq at the viewer")
        assert reader.stop() == 0
    finally:
        viewer.stop()
    stored = seqs(read_rows(Path(env["GATEWAY_DATA_DIR"])))
    assert stored == list(range(6000))
    assert viewer.seqs() == stored  # every stored seq was drawn, in order, none twice
    frames = viewer.frames()
    assert all(len(f["min"]) == 8 for f in frames)
    assert not [m for _, m in viewer.messages if m["type"] == "dropped"]
    assert "event=stream_connected" in reader.log()


def test_after_an_unplug_the_viewer_is_told_what_the_reader_counted_lost(
    site, firmware_sim, processes, reader_env
):
    # Lines sent while the port was away never get a seq: no hole in seq shows them. The frame
    # after the unplug says what the reader counted (device gap) and how long the port was away.
    base, cookie, server = site
    viewer = Viewer(base, "/ws/live/test-gw/", cookie)
    try:
        sim = firmware_sim(
            *("--rate", "1000", "--channels", "2", "--samples", "4000", "--seed", "5"),
            *("--faults", "unplug@1500:0.6"),
        )
        env = stream_env(reader_env, base)
        reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "full", env=env)
        assert sim.wait(60) == 0, sim.stderr()
        (unplug,) = [e for e in sim.fault_entries() if e["fault"] == "unplug"]
        last = 4000 - unplug["lines_lost"] - 1
        wait_for(lambda: viewer.seqs()[-1:] == [last], 15, message=f"seq {last} at the viewer")
        assert reader.stop() == 0
    finally:
        viewer.stop()
    stored = seqs(read_rows(Path(env["GATEWAY_DATA_DIR"])))
    assert unplug["lines_lost"] > 0 and stored == list(range(last + 1))
    gapped = [f for f in viewer.frames() if "gap" in f]
    assert len(gapped) == 1, [f["gap"] for f in gapped]
    gap = gapped[0]["gap"]
    assert gap["device_lines"] == unplug["lines_lost"]
    assert 0.6 <= gap["outage_seconds"] < 3.0, gap
    assert gapped[0]["t"][0] - viewer.frames()[0]["t"][0] > 1.5  # after line 1500 at 1 kHz
    assert viewer.seqs() == stored  # seq goes on over the unplug: nothing else was lost


def test_demo_mode_streams_and_writes_no_files(site, firmware_sim, processes, reader_env, tmp_path):
    base, cookie, server = site
    viewer = Viewer(base, "/ws/live/test-gw/", cookie)
    try:
        sim = firmware_sim("--rate", "500", "--channels", "2", "--samples", "1500")
        env = stream_env(reader_env, base)
        data_dir = Path(env["GATEWAY_DATA_DIR"])
        reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "demo", env=env)
        assert sim.wait(60) == 0, sim.stderr()
        wait_for(lambda: viewer.seqs()[-1:] == [1499], 15, message="the last seq at the viewer")
        assert reader.stop() == 0
    finally:
        viewer.stop()
    assert viewer.seqs() == list(range(1500))
    assert not data_dir.exists() or list(data_dir.rglob("*")) == []


def test_a_refused_token_never_stops_the_reader_storing(site, firmware_sim, processes, reader_env):
    base, cookie, server = site
    sim = firmware_sim("--rate", "1000", "--samples", "3000")
    env = stream_env(reader_env, base, token="fgt_wrong-token-0123456789")
    reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "full", env=env)
    assert sim.wait(60) == 0, sim.stderr()
    assert reader.stop() == 0
    assert seqs(read_rows(Path(env["GATEWAY_DATA_DIR"]))) == list(range(3000))
    log = reader.log()
    assert "event=stream_unavailable url=ws://" in log
    assert 'error="closed 4403 wrong token"' in log
    assert 'event=ingest_refused gateway=test-gw reason="wrong token"' in server.log()


def test_frames_pause_while_nobody_watches_and_resume_when_a_viewer_opens(
    tmp_path, firmware_sim, processes, reader_env
):
    """The site tells the reader nobody has watched it for 3 x FIELDGATE_WEB_WATCH_SECONDS:
    the reader stops building frames (it still stores every row and sends its status) until a
    live view opens, whose frames then start within a gather or two. Meanwhile the reader
    gathers GATEWAY_GATHER_UNWATCHED_SECONDS (0.2 s) instead of 0.07: a third of the reads."""
    from gateway.supervise.chain import read_status

    with Supervisor(tmp_path / "site") as supervisor:
        site = start_site(supervisor, tmp_path, FIELDGATE_WEB_WATCH_SECONDS="1")
        sim = firmware_sim("--rate", "1000", "--channels", "4", "--samples", "14000", "--seed", "3")
        env = stream_env(reader_env, site.base, status_seconds=0.2)
        data_dir = Path(env["GATEWAY_DATA_DIR"])
        reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "full", env=env)

        def stream() -> dict:
            return (read_status(data_dir) or {}).get("stream") or {}

        def reads_per_second() -> float:
            """The reader's hand-offs (one per gather at this trickle) over 1.2 seconds."""
            first = read_status(data_dir)
            time.sleep(1.2)
            last = read_status(data_dir)
            reads = last["port_hand_offs"] - first["port_hand_offs"]
            return reads / (last["updated_at"] - first["updated_at"])

        wait_for(lambda: stream().get("frames_sent", 0) > 0, 20, message="frames while new")
        wait_for(lambda: stream().get("watched") is False, 20, message="the pause (3 s unwatched)")
        paused = stream()
        time.sleep(1.0)
        still = stream()
        assert still["frames_built"] <= paused["frames_built"] + 1  # one may have been on its way
        assert still["rows_unwatched"] > paused["rows_unwatched"] + 500  # rows go on, unframed
        unwatched_reads = reads_per_second()
        assert "event=stream_unwatched" in reader.log()
        metrics = run_gateway(env, "metrics").stdout
        assert 'fieldgate_stream_watched{gateway="test-gw"} 0.0' in metrics, metrics[-2000:]
        viewer = Viewer(site.base, "/ws/live/test-gw/", viewer_cookie(site))
        try:
            opened = time.monotonic()
            wait_for(lambda: viewer.frames(), 10, message="a frame at the new viewer")
            resumed_in = time.monotonic() - opened
            wait_for(lambda: stream().get("watched") is True, 5, message="the reader's status")
            watched_reads = reads_per_second()
        finally:
            viewer.stop()
        assert sim.wait(60) == 0, sim.stderr()
        assert reader.stop() == 0
    assert resumed_in < 3.0, f"frames took {resumed_in:.2f} s to resume"
    assert 3 <= unwatched_reads <= 7 and watched_reads >= 11, (unwatched_reads, watched_reads)
    assert "event=stream_watched" in reader.log()
    assert seqs(read_rows(data_dir)) == list(range(14000))  # nothing stored was skipped
