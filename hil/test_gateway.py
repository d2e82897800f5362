"""The gateway end to end against the monitor (simulated, or the real one with --monitor).

Each test starts its own reader and uploader on a fresh data dir; see conftest.py.
"""

from __future__ import annotations

import json
import statistics
import time

from gateway.supervise import wait_for
from tests.support.batches import sealed_files
from tests.support.uploads import object_bytes, touched_marks


def counters(gateway) -> dict:
    return gateway.status().get("counters", {})


def seqs(rows: list[list[str]]) -> list[int]:
    return [int(row[0]) for row in rows]


def stored_since_start(gateway) -> bool:
    """The running reader has stored a row (its next seq is past where its run began)."""
    runs = (gateway.data_dir / "state" / "reader.runs.jsonl").read_text().splitlines()
    run = json.loads(runs[-1])
    status = gateway.status()
    return (
        run["pid"] == gateway.reader.pid
        and status.get("pid") == gateway.reader.pid
        and status["next_seq"] > run["first_seq"]
    )


def wait_uploaded(gateway, timeout: float = 120) -> None:
    """Until every sealed batch carries its touched mark (uploaded and verified)."""

    def done():
        sealed = sealed_files(gateway.data_dir)
        return sealed and len(touched_marks(gateway.data_dir)) == len(sealed)

    wait_for(done, timeout, "every sealed batch uploaded", interval=0.2)


def test_the_port_opens_and_lines_arrive(gateway, figures):
    gw = gateway()
    gw.reader.start()
    figures("port_open_seconds", gw.wait_recovered(gw.reader, 30), "s")
    start = time.monotonic()
    wait_for(lambda: counters(gw).get("rows_accepted", 0) > 0, 30, message="a first valid line")
    figures("first_line_seconds", time.monotonic() - start, "s")
    assert gw.reader.stop() == 0, gw.reader.log_tail()
    assert gw.rows(), "no row was stored"


def test_data_flows_into_sealed_batches_at_a_plausible_rate(gateway, hil, figures):
    gw = gateway(batch_seconds=2)
    gw.reader.start()
    gw.wait_recovered(gw.reader, 30)
    time.sleep(hil.seconds)
    assert gw.reader.stop() == 0, gw.reader.log_tail()
    rows = gw.rows()  # every file parses; every file's seq matches its name
    assert len(rows) > 1, "fewer than two rows stored"
    assert seqs(rows) == list(range(len(rows))), "seq has a gap or a duplicate"
    received = [float(row[1]) for row in rows]
    seconds = received[-1] - received[0]
    # The rate from the second second on: a port that was open before may hand over a
    # backlog at once when the reader opens it.
    steady = [t for t in received if t >= received[0] + 1.0]
    assert len(steady) > 1, f"no steady flow: {len(rows)} rows in {seconds:.1f} s"
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    status = gw.status()
    batches = len(sealed_files(gw.data_dir))
    figures("rows", len(rows))
    figures("stored_lines_per_second", rate, "lines/s")
    figures("sealed_batches", batches)
    figures("rejected_lines", status["counters"]["rows_rejected"])
    # Sealed by age every 2 s, and once more at SIGTERM.
    assert batches >= int(seconds // 2), f"{batches} batches over {seconds:.1f} s"
    figures("stored_format", gw.stored_format())
    device = gw.device_counters(rows)
    if device is not None:
        span = device[-1] - device[0] + 1
        lost = span - len(rows)
        steady_device = [c for c, t in zip(device, received, strict=True) if t >= steady[0]]
        device_rate = (steady_device[-1] - steady_device[0]) / (steady[-1] - steady[0])
        figures("device_lines_per_second", device_rate, "lines/s")
        figures("device_lines_missing", lost)
        figures("device_gaps", status["counters"]["device_gaps"])
        assert device == sorted(set(device)), "a device line was stored twice or out of order"
        if hil.simulated:  # a clean simulated line: nothing may be missing
            assert lost == 0, f"{lost} lines missing on a clean simulated line"
        else:
            assert lost <= span // 100, f"{lost} of {span} device lines missing (over 1 %)"
    expected = hil.expect_rate or (hil.sim_rate if hil.simulated else None)
    if expected:
        figures("expected_lines_per_second", expected, "lines/s")
        assert abs(rate - expected) <= 0.05 * expected, f"{rate:.1f} lines/s, {expected} expected"
    else:
        assert rate > 0


def test_sealed_batches_reach_the_s3_endpoint(gateway, figures):
    gw = gateway(batch_seconds=1)
    gw.uploader.start()
    gw.reader.start()
    gw.wait_all_recovered([gw.reader, gw.uploader])
    time.sleep(6)
    assert gw.reader.stop() == 0, gw.reader.log_tail()
    wait_uploaded(gw)
    assert gw.uploader.stop() == 0
    sealed = sealed_files(gw.data_dir)
    marks = touched_marks(gw.data_dir)
    for path in sealed:
        assert object_bytes(gw.s3.client, gw.s3.bucket, marks[path]["key"]) == path.read_bytes()
    # From the seal (the batch's last write) to its touched mark (uploaded and verified).
    latencies = sorted(
        path.with_name(path.name + ".touched").stat().st_mtime - path.stat().st_mtime
        for path in sealed
    )
    figures("batches_uploaded", len(sealed))
    figures("seal_to_verified_upload_median_seconds", statistics.median(latencies), "s")
    figures("seal_to_verified_upload_max_seconds", latencies[-1], "s")
    code, report = gw.audit()
    assert code == 0, report["failures"]
    assert report["rows_in_s3"] == report["rows_local"] == report["seq_last"] + 1


def test_the_stream_reaches_the_site(gateway, figures):
    gw = gateway()
    watcher = gw.watcher()  # None: a site of the settings file and no --site-login
    gw.reader.start()
    gw.wait_recovered(gw.reader, 30)
    wait_for(
        lambda: gw.status().get("stream", {}).get("frames_sent", 0) > 0,
        30,
        message="the reader's first frame sent to the site",
    )
    if watcher is not None:
        wait_for(lambda: watcher.frames > 0, 30, message="a first frame at the viewer")
    start_frames = watcher.frames if watcher else 0
    start = time.monotonic()
    time.sleep(5)
    stream = gw.status()["stream"]
    assert stream["connected"], f"the stream is not connected: {stream['last_error']}"
    assert gw.reader.stop() == 0, gw.reader.log_tail()
    figures("frames_sent", stream["frames_sent"])
    figures("frames_dropped_by_reader", stream["frames_dropped"])
    if watcher is None:
        return
    rate = (watcher.frames - start_frames) / (time.monotonic() - start)
    stored = seqs(gw.rows())
    figures("viewer_frames_per_second", rate, "frames/s")
    figures("serial_to_viewer_latency_p50_ms", watcher.latency_ms(0.5), "ms")
    figures("serial_to_viewer_latency_p95_ms", watcher.latency_ms(0.95), "ms")
    figures("viewer_seq_holes", watcher.holes)
    assert rate > 5, f"only {rate:.1f} frames/s at the viewer"
    assert watcher.first_seq >= stored[0] and watcher.last_seq <= stored[-1]


def test_unplug_and_replug_recover_by_themselves(gateway, hil, figures):
    hil.needs_fault_injection("unplugging the monitor on cue")
    at, seconds = 3 * hil.sim_rate, 2.0
    gw = gateway("--faults", f"unplug@{at}:{seconds}")
    gw.reader.start()
    wait_for(lambda: counters(gw).get("reconnects", 0) >= 1, 30, message="the port back")
    back_at = counters(gw).get("rows_accepted", 0)
    wait_for(lambda: counters(gw).get("rows_accepted", 0) > back_at, 10, message="lines after it")
    assert gw.reader.stop() == 0, gw.reader.log_tail()
    (unplug,) = [e for e in gw.sim.fault_entries() if e["fault"] == "unplug"]
    (outage,) = gw.status()["recent_outages"]
    figures("port_outage_seconds", outage["seconds"], "s")
    figures("reopened_after_replug_seconds", outage["seconds"] - seconds, "s")
    assert seconds <= outage["seconds"] < seconds + 2, outage
    rows = gw.rows()
    assert seqs(rows) == list(range(len(rows)))
    device = gw.device_counters(rows)
    if device is None:  # no counter on the wire: the reconnect and the audit are the checks
        code, report = gw.audit("--no-s3")
        assert code == 0, report["failures"]
        return
    missing = sorted(set(range(device[0], device[-1] + 1)) - set(device))
    assert missing == list(range(unplug["first_lost"], unplug["last_lost"] + 1))
    code, report = gw.audit("--no-s3")
    assert code == 0, report["failures"]
    gaps = [(g["first"], g["last"], g["cause"]) for g in report["gaps"]]
    assert gaps == [(unplug["first_lost"], unplug["last_lost"], "lost on the wire")]
    figures("lines_lost_while_unplugged", len(missing))


def test_a_power_cut_kills_every_service_and_the_restart_passes_the_audit(gateway, hil, figures):
    gw = gateway(batch_seconds=1)
    site = gw.site.service  # None: the settings file's site is not ours to kill
    watcher = gw.watcher()
    gw.uploader.start()
    gw.reader.start()
    gw.wait_all_recovered([gw.reader, gw.uploader])
    time.sleep(4)
    victims = [s for s in (gw.reader, gw.uploader, site) if s is not None]
    for service in victims:  # SIGKILL, one right after the other
        service.kill()
    time.sleep(1)  # the power is out; the monitor goes on sending
    if site is not None:
        gw.site.start()
    restarted = time.monotonic()
    gw.reader.start()
    gw.uploader.start()
    frames = watcher.frames if watcher is not None else 0
    # Poll everything together, so each time is from the restart to when it happened.
    back: dict[str, float] = {}
    checks = {
        "reader_back_seconds": lambda: gw.recovered(gw.reader),
        "uploader_back_seconds": lambda: gw.recovered(gw.uploader),
        "storing_again_seconds": lambda: stored_since_start(gw),
    }
    if watcher is not None:
        checks["stream_back_seconds"] = lambda: watcher.frames > frames
    while len(back) < len(checks):
        for name, check in checks.items():
            if name not in back and check():
                back[name] = time.monotonic() - restarted
        for service in (gw.reader, gw.uploader):
            assert service.unexpected_exit() is None, service.log_tail()
        assert time.monotonic() - restarted < 90, f"not back after 90 s: {set(checks) - set(back)}"
        time.sleep(0.02)
    for name, seconds in back.items():
        figures(name, seconds, "s")
    time.sleep(3)
    assert gw.reader.stop() == 0, gw.reader.log_tail()
    wait_uploaded(gw)
    assert gw.uploader.stop() == 0
    code, report = gw.audit()
    assert code == 0, report["failures"]
    assert report["rows_in_s3"] == report["seq_last"] + 1 and not report["duplicates"]
    restart = [g for g in report["gaps"] if g["cause"] == "the reader restarted"]
    figures("lines_lost_at_the_cut", sum(g["count"] for g in restart))
    if hil.simulated:  # a clean simulated line: the cut is the only cause of a gap
        assert [g for g in report["gaps"] if g not in restart] == []
