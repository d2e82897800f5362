"""What an operator's tools see: `gateway status`'s exit code, journald priorities."""

import json
import os
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.supervise import Service, free_port, wait_for
from gateway.supervise.chain import GATEWAY, read_status
from tests.support.processes import run_gateway
from tests.support.s3 import (  # noqa: F401 (fixtures: moto, uploader_env)
    moto_fixture,
    uploader_env_fixture,
)


def test_status_exits_3_and_says_dead_after_the_reader_is_killed(
    firmware_sim, processes, reader_env
):
    env = reader_env()
    sim = firmware_sim("--rate", "200")
    reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "local", env=env)

    def shown():
        result = run_gateway(env, "status", "--json")
        return result.returncode, json.loads(result.stdout)

    wait_for(lambda: shown()[1]["services"]["reader"], 20, message="the reader's status")
    code, status = shown()
    assert (code, status["services"]["reader"]["state"]) == (0, "running")

    reader.kill()
    code, status = shown()
    assert (code, status["services"]["reader"]["state"]) == (3, "dead")
    text = run_gateway(env, "status")
    assert text.returncode == 3
    assert f"reader: DEAD (process {reader.pid} is gone)" in text.stdout
    assert "DOWN: reader; see `systemctl status gateway-reader`" in text.stdout


def test_status_exits_3_and_says_stale_when_the_reader_hangs(firmware_sim, processes, reader_env):
    """Alive but silent (a hung main loop, GATEWAY_TEST_HOOKS' SIGUSR2): stale after 10 s."""
    env = reader_env(test_hooks=1)
    sim = firmware_sim("--rate", "200")
    reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "local", env=env)

    def state():
        result = run_gateway(env, "status", "--json")
        service = json.loads(result.stdout)["services"]["reader"]
        return result.returncode, service and service["state"]

    wait_for(lambda: state() == (0, "running"), 20, message="a running reader")
    os.kill(reader.pid, signal.SIGUSR2)
    wait_for(lambda: state() == (3, "stale"), 30, interval=0.5, message="a stale reader")


def test_status_exits_0_after_a_clean_stop(firmware_sim, processes, reader_env):
    env = reader_env()
    sim = firmware_sim("--rate", "200", "--samples", "100")
    reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "local", env=env)
    assert sim.wait(30) == 0
    wait_for(
        lambda: json.loads(run_gateway(env, "status", "--json").stdout)["services"]["reader"],
        20,
        message="the reader's status",
    )
    assert reader.stop() == 0
    result = run_gateway(env, "status", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["services"]["reader"]["state"] == "stopped"


def test_under_journald_each_line_carries_its_priority(tmp_path, reader_env):
    """journald reads an sd-daemon prefix (<4> = warning) only where stderr is the journal."""
    log = tmp_path / "journal.log"
    with open(log, "wb") as stderr:
        stat = os.fstat(stderr.fileno())
        env = {
            **os.environ,
            **reader_env(),
            "JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}",
        }
        reader = subprocess.Popen(
            [GATEWAY, "reader", "--port", str(tmp_path / "no-such-port"), "--mode", "local"],
            env=env,
            stderr=stderr,
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: b"port_unavailable" in log.read_bytes(), 20, message="a warning")
        finally:
            reader.terminate()
            assert reader.wait(20) == 0
    lines = log.read_text().splitlines()
    warning = next(line for line in lines if "event=port_unavailable" in line)
    assert warning.startswith("<4>level=warning ")
    started = next(line for line in lines if "event=reader_started" in line)
    assert started.startswith("<6>level=info ")
    assert "time=" not in warning  # journald stamps lines itself


def test_without_the_journal_lines_carry_a_time_and_no_prefix(tmp_path, reader_env):
    """A child that inherited JOURNAL_STREAM but writes elsewhere gets no prefix."""
    env = {**reader_env(), "JOURNAL_STREAM": "1:2"}
    reader = subprocess.Popen(
        [GATEWAY, "reader", "--port", str(tmp_path / "no-such-port"), "--mode", "local"],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        first = reader.stderr.readline().decode()
    finally:
        reader.terminate()
        reader.communicate(timeout=20)
    assert first.startswith("time=") and "level=" in first


def _families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(families: dict, name: str, **labels) -> float:
    for sample in families[name].samples:
        if all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    raise AssertionError(f"no {name} sample with {labels}: {families[name].samples}")


def test_metrics_say_what_reader_and_uploader_did_in_prometheus_text(
    firmware_sim, processes, reader_env, uploader_env, moto, tmp_path
):
    env = {**reader_env(batch_rows=500), **uploader_env(moto.url)}
    env["GATEWAY_ID"] = "ward-7"
    sim = firmware_sim(
        "--rate", "2000", "--samples", "2000", "--faults", "garbage@100,garbage@200,utf8@300"
    )
    reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "local", env=env)
    assert sim.wait(60) == 0
    wait_for(lambda: b"event=batch_sealed" in reader.log().encode(), 20, message="a batch")
    uploaded = run_gateway(env, "uploader", "--once")
    assert uploaded.returncode == 0, uploaded.stderr

    result = run_gateway(env, "metrics")
    assert result.returncode == 0, result.stderr
    families = _families(result.stdout)
    assert _value(families, "fieldgate_service_up", gateway="ward-7", service="reader") == 1
    assert _value(families, "fieldgate_rows_accepted", gateway="ward-7") == 1999
    rejected = sum(s.value for s in families["fieldgate_rows_rejected"].samples)
    assert rejected == 3  # two lines of random bytes and one with invalid UTF-8
    assert _value(families, "fieldgate_rows_rejected", reason="invalid_utf8") >= 1
    assert _value(families, "fieldgate_uploads", result="uploaded") >= 3
    assert _value(families, "fieldgate_upload_last_success_timestamp_seconds") > 1e9
    assert _value(families, "fieldgate_disk_free_bytes") > 0
    assert families["fieldgate_rows_accepted"].type == "counter"
    assert families["fieldgate_disk_free_bytes"].type == "gauge"
    clock = read_status(Path(env["GATEWAY_DATA_DIR"]))["clock"]
    if clock["synced"] is not None:  # this machine's clock, whatever it is
        assert _value(families, "fieldgate_clock_synchronized") == float(clock["synced"])
    assert _value(families, "fieldgate_clock_steps", gateway="ward-7") == 0

    reader.kill()
    textfile = tmp_path / "textfile" / "fieldgate.prom"
    textfile.parent.mkdir()
    assert run_gateway(env, "metrics", "--textfile", str(textfile)).returncode == 0
    families = _families(textfile.read_text())
    assert _value(families, "fieldgate_service_up", service="reader") == 0
    assert [p.name for p in textfile.parent.iterdir()] == ["fieldgate.prom"]  # no temp left


NODE_EXPORTER = shutil.which("prometheus-node-exporter")  # Debian's; `make setup` installs it


@pytest.mark.skipif(NODE_EXPORTER is None, reason="prometheus-node-exporter missing: make setup")
def test_node_exporter_serves_the_textfile_gateway_metrics_writes(processes, reader_env, tmp_path):
    env = reader_env()
    folder = tmp_path / "textfile"
    folder.mkdir()
    written = run_gateway(env, "metrics", "--textfile", str(folder / "fieldgate.prom"))
    assert written.returncode == 0, written.stderr
    port = free_port()
    exporter = Service(
        "node-exporter",
        [
            NODE_EXPORTER,
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={folder}",
        ],
        tmp_path / "node-exporter.log",
    ).start()
    try:

        def scraped():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    return r.read().decode()
            except OSError:
                return None

        text = wait_for(scraped, 20, message="node_exporter's /metrics")
        families = _families(text)
        assert "fieldgate_data_dirs" in families
        assert "node_textfile_scrape_error 0" in text
        assert _value(families, "node_textfile_mtime_seconds") > 1e9
    finally:
        exporter.stop()


def test_date_options_take_the_forms_people_type_or_say_what_is_wrong(reader_env):
    env = reader_env()
    typed = run_gateway(env, "audit", "--no-s3", "--since", "yesterday", "--until", "today")
    assert "Traceback" not in typed.stderr
    assert typed.stdout.strip() == "no data dir found (nothing holds batches/ yet): FAIL"
    wrong = run_gateway(env, "report", "--since", "last week")
    assert wrong.returncode == 2
    assert wrong.stderr.splitlines()[-1] == (
        "gateway report: error: argument --since: 'last week' is not a day: "
        "use YYYY-MM-DD, today, yesterday, '3 days ago' or -3d"
    )
