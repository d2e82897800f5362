"""The reader over real PTYs driven by firmware-sim, as separate processes."""

import json
import random
import threading
import time
from pathlib import Path

import serial

from gateway.reader.port import open_port
from gateway.supervise import wait_for
from gateway.supervise.chain import read_status
from tests.support.batches import device_fields, part_files, read_rows, sealed_files, seqs


def write_recording(path: Path, lines: int, seed: int = 7) -> list[bytes]:
    """A csv-seq recording with varied values (negative, long, short) to replay."""
    rng = random.Random(seed)
    body = [
        b"%d,%.6f,%s,%s,%s"
        % (
            n,
            n / 2000,
            b"%.4f" % rng.uniform(-5, 5),
            b"%d" % rng.randint(-99999, 99999),
            b"%.1f" % rng.uniform(0, 1),
        )
        for n in range(lines)
    ]
    path.write_bytes(b"".join(line + b"\n" for line in body))
    return body


def start_reader(processes, reader_env, port, **settings):
    env = reader_env(**settings)
    reader = processes.gateway(
        "reader", "--port", str(port), "--mode", "local", env=env, name="reader"
    )
    return reader, Path(env["GATEWAY_DATA_DIR"])


def final_status(data_dir):
    status = read_status(data_dir)
    assert status is not None and status["running"] is False, "reader did not publish at exit"
    return status


def test_20000_lines_at_2khz_become_exactly_20000_rows(
    firmware_sim, processes, reader_env, tmp_path
):
    sent = write_recording(tmp_path / "recording.csv", 20_000)
    sim = firmware_sim("--replay", str(tmp_path / "recording.csv"), "--rate", "2000")
    reader, data_dir = start_reader(processes, reader_env, sim.port, batch_rows=3000)
    assert sim.wait(60) == 0, sim.stderr()
    assert reader.stop() == 0
    rows = read_rows(data_dir)
    assert seqs(rows) == list(range(20_000))
    assert device_fields(rows) == sent
    assert part_files(data_dir) == []
    assert len(sealed_files(data_dir)) == 7  # 6 full batches of 3000 and the rest at SIGTERM
    counters = final_status(data_dir)["counters"]
    assert counters["rows_accepted"] == 20_000
    assert counters["rows_rejected"] == 0
    assert counters["device_gaps"] == 0


def test_reader_counters_match_the_simulator_fault_log(firmware_sim, processes, reader_env):
    sim = firmware_sim(
        "--rate",
        "2000",
        "--samples",
        "12000",
        "--seed",
        "11",
        "--channels",
        "4",
        "--faults",
        "garbage=0.01,truncated=0.005,overlong=0.002,utf8=0.004",
    )
    reader, data_dir = start_reader(processes, reader_env, sim.port)
    assert sim.wait(60) == 0, sim.stderr()
    assert reader.stop() == 0
    faults = sim.fault_entries()
    kinds = {entry["fault"] for entry in faults}
    assert kinds == {"garbage", "truncated", "overlong", "utf8"}, kinds
    counters = final_status(data_dir)["counters"]
    by_reason = counters["rejected_by_reason"]
    assert counters["rows_rejected"] == sum(entry["rejected"] for entry in faults)
    assert by_reason.get("too_long", 0) == sum(e["fault"] == "overlong" for e in faults)
    assert by_reason.get("field_count", 0) >= sum(e["fault"] == "truncated" for e in faults)
    lost = sum(entry["lines_lost"] for entry in faults)
    assert counters["device_lines_lost"] == lost
    assert counters["rows_accepted"] == 12_000 - lost
    rows = read_rows(data_dir)
    assert seqs(rows) == list(range(12_000 - lost))
    lost_counters = {e["n"] for e in faults if e["lines_lost"]}
    assert [int(row[2]) for row in rows] == [n for n in range(12_000) if n not in lost_counters]
    quarantined = [
        json.loads(line)
        for path in (data_dir / "quarantine").rglob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert len(quarantined) == counters["rows_rejected"]


def test_unplug_and_replug_resume_by_themselves(firmware_sim, processes, reader_env):
    sim = firmware_sim(
        "--rate",
        "1000",
        "--samples",
        "6000",
        "--seed",
        "3",
        "--faults",
        "unplug@2000:1.0,unplug@4000:0.5",
    )
    reader, data_dir = start_reader(processes, reader_env, sim.port)
    assert sim.wait(60) == 0, sim.stderr()
    # The simulator's exit is noticed within a gather (200 ms in local mode) and reported at
    # the next status; stopping before then would leave it out.
    wait_for(
        lambda: (read_status(data_dir) or {}).get("counters", {}).get("port_outages") == 3,
        10,
        message="the simulator's exit as the third outage",
    )
    assert reader.stop() == 0
    unplugs = [entry for entry in sim.fault_entries() if entry["fault"] == "unplug"]
    assert len(unplugs) == 2
    status = final_status(data_dir)
    counters = status["counters"]
    assert counters["reconnects"] == 2
    # Two unplugs came back; the simulator's exit at the end is a third loss, never back.
    assert counters["port_outages"] == 3
    outages = [o["seconds"] for o in status["recent_outages"]]
    assert len(outages) == 2
    assert 1.0 <= outages[0] < 3.0 and 0.5 <= outages[1] < 2.5, outages
    lost = sum(entry["lines_lost"] for entry in unplugs)
    assert counters["device_lines_lost"] == lost
    assert counters["device_gaps"] == 2
    assert seqs(read_rows(data_dir)) == list(range(6000 - lost))


def test_sigterm_seals_the_open_batch_and_exits_0(firmware_sim, processes, reader_env):
    sim = firmware_sim("--rate", "500")  # runs until stopped
    reader, data_dir = start_reader(processes, reader_env, sim.port, batch_rows=100_000)
    wait_for(
        lambda: (read_status(data_dir) or {}).get("open_batch_rows", 0) > 200,
        20,
        message="rows in the open batch",
    )
    assert part_files(data_dir), "expected an open .part before SIGTERM"
    assert reader.stop() == 0
    assert part_files(data_dir) == []
    rows = read_rows(data_dir)
    assert len(rows) > 200
    assert final_status(data_dir)["counters"]["rows_accepted"] == len(rows)
    assert '"reader_stopped"' not in reader.log() and "event=reader_stopped" in reader.log()


def test_a_restart_keeps_what_the_device_sent_meanwhile(firmware_sim, processes, reader_env):
    """Bytes waiting in the kernel's buffer while the reader was down are not discarded."""
    sim = firmware_sim("--rate", "300", "--samples", "2400", "--seed", "5")
    reader, data_dir = start_reader(processes, reader_env, sim.port)
    wait_for(
        lambda: (read_status(data_dir) or {}).get("next_seq", 0) > 300, 20, message="first rows"
    )
    assert reader.stop() == 0
    time.sleep(1.5)  # ~450 lines (about 16 KiB) wait in the PTY meanwhile
    reader, data_dir = start_reader(processes, reader_env, sim.port)
    assert sim.wait(30) == 0, sim.stderr()
    assert reader.stop() == 0
    counters = final_status(data_dir)["counters"]
    assert counters["device_gaps"] == 0
    assert counters["rejected_by_reason"] == {}
    rows = read_rows(data_dir)
    assert [int(row[2]) for row in rows] == list(range(2400))
    assert seqs(rows) == list(range(2400))


def test_plain_pyserial_open_would_discard_buffered_input(firmware_sim):
    """Why KeepInputSerial exists: measured here, not assumed."""
    first_line = b"0,0.000000,"

    def first_bytes(open_it):
        sim = firmware_sim("--rate", "2000", "--seed", "1", "--no-wait-reader")
        time.sleep(0.5)  # the device sends; the kernel buffers; nobody has opened the port
        port = open_it(str(sim.port))
        try:
            return port.read(len(first_line))
        finally:
            port.close()
            sim.stop()

    assert first_bytes(lambda path: serial.Serial(path, timeout=1)) != first_line
    assert first_bytes(lambda path: open_port(path, timeout=1)) == first_line


def test_a_port_missing_at_start_is_waited_for(firmware_sim, processes, reader_env, tmp_path):
    link = tmp_path / "late-port"
    reader, data_dir = start_reader(processes, reader_env, link)
    time.sleep(1.0)
    assert reader.poll() is None, "reader exited although the port is only missing"
    sim = firmware_sim("--rate", "1000", "--samples", "1000", link=link)
    assert sim.wait(30) == 0, sim.stderr()
    assert reader.stop() == 0
    assert len(read_rows(data_dir)) == 1000
    assert "event=port_unavailable" in reader.log()


def test_a_writer_falling_behind_is_counted_never_silent(firmware_sim, processes, reader_env):
    sim = firmware_sim("--rate", "5000", "--samples", "5000", "--seed", "1")
    reader, data_dir = start_reader(processes, reader_env, sim.port, queue_bytes=64)
    assert sim.wait(60) == 0, sim.stderr()
    assert reader.stop() == 0
    counters = final_status(data_dir)["counters"]
    assert counters["overflow_bytes"] > 0 and counters["overflow_events"] > 0
    rows = read_rows(data_dir)
    assert seqs(rows) == list(range(len(rows)))
    assert counters["rows_accepted"] == len(rows) < 5000
    assert "event=handoff_overflow" in reader.log()


def test_pyserial_urls_work_as_ports(processes, reader_env):
    """Any pyserial URL: here socket://, fed by a TCP server in the test."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    host, port = server.getsockname()
    lines = [b"%d,%.6f,1.5" % (n, n / 100) for n in range(500)]

    def serve():
        connection, _ = server.accept()
        with connection:
            connection.sendall(b"".join(line + b"\n" for line in lines))
            time.sleep(2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    reader, data_dir = start_reader(processes, reader_env, f"socket://{host}:{port}")
    wait_for(
        lambda: (read_status(data_dir) or {}).get("next_seq") == 500,
        20,
        message="500 rows over socket://",
    )
    assert reader.stop() == 0
    server.close()
    assert device_fields(read_rows(data_dir)) == lines


def test_status_json_works_with_and_without_services(firmware_sim, processes, reader_env):
    env = reader_env()

    def status():
        command = processes.gateway("status", "--json", env=env, name="status")
        assert command.wait(20) == 0
        return json.loads(command.log())

    empty = status()
    assert empty["inventory"]["sealed_batches"] == 0
    assert empty["services"]["reader"] is None
    assert empty["inventory"]["bytes_free"] > 0

    sim = firmware_sim("--rate", "1000", "--samples", "1500")
    reader, _ = start_reader(processes, reader_env, sim.port, batch_rows=1000)

    def accepted():
        reader_status = status()["services"]["reader"] or {"counters": {}}
        return reader_status["counters"].get("rows_accepted", 0)

    wait_for(lambda: accepted() > 0, 20, message="a running reader in gateway status")
    assert status()["services"]["reader"]["alive"] is True
    assert sim.wait(30) == 0
    assert reader.stop() == 0
    after = status()
    assert after["inventory"]["sealed_batches"] == 2
    assert (after["inventory"]["first_seq"], after["inventory"]["last_seq"]) == (0, 1499)
    assert after["inventory"]["pending_batches"] == 2
    assert after["services"]["reader"]["alive"] is False
    assert after["services"]["reader"]["counters"]["rows_accepted"] == 1500
