"""Devices nobody here wrote: what real monitors print reaches the batches whole.

Each test replays a capture written here from the public descriptions (NMEA 0183 sentences as
GNSS receivers send them, Arduino Serial Plotter lines, a lab instrument's CSV with a header,
free text), through firmware-sim on a real PTY, into the reader under its default settings
(`GATEWAY_LINE_FORMAT=auto`) unless a test says otherwise, and compares the rows with the
capture byte for byte.
"""

import csv
import functools
import gzip
import json
import operator
from pathlib import Path

import pytest

from gateway.supervise import wait_for
from tests.support.batches import read_tables
from tests.support.processes import run_gateway
from tests.support.s3 import (  # noqa: F401 (fixtures: moto, uploader_env)
    BUCKET,
    all_versions,
    moto_fixture,
    uploader_env_fixture,
)


def nmea(body: str, start: str = "$") -> str:
    checksum = functools.reduce(operator.xor, body.encode(), 0)
    return f"{start}{body}*{checksum:02X}"


# A GNSS receiver's cycle (GP and GN talkers, a proprietary sentence, AIS), with empty fields,
# text fields and a sentence longer than 82 bytes (u-blox PUBX,00 is about 110).
NMEA_BODIES = [
    "GPRMC,123519.00,A,4807.03800,N,01131.00000,E,0.022,,230394,,,A",
    "GPVTG,,T,,M,0.022,N,0.041,K,A",
    "GPGGA,123519.00,4807.03800,N,01131.00000,E,1,08,0.9,545.4,M,46.9,M,,",
    "GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1",
    "GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00",
    "GPGSV,3,2,11,14,25,170,00,16,57,208,39,18,67,296,40,19,40,246,00",
    "GPGSV,3,3,11,22,42,067,42,24,14,311,43,27,05,244,00",
    "GPGLL,4807.03800,N,01131.00000,E,123519.00,A,A",
    "GNGGA,123520.00,4807.03810,N,01131.00010,E,1,12,0.8,545.5,M,46.9,M,,",
    "PUBX,00,123520.00,4807.03810,N,01131.00010,E,545.503,G3,2.1,2.3,0.021,77.52,0.007,,0.92,1.19,0.77,9,0,0",
    "PGRME,15.0,M,45.0,M,25.0,M",
]
AIS = "AIVDM,1,1,,A,13u?etPv2;0n:dDPwUM1U1Cb069D,0"


def replay(firmware_sim, tmp_path: Path, lines: list[bytes], *options: str):
    capture = tmp_path / "capture.txt"
    capture.write_bytes(b"".join(lines))
    return firmware_sim(
        "--replay", str(capture), "--replay-header", "send", "--rate", "2000", *options
    )


def read_with_defaults(processes, reader_env, sim, **settings):
    env = reader_env(**settings)
    env.pop("GATEWAY_LINE_FORMAT")  # the default, as a new user has it
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "local", env=env)
    assert sim.wait(60) == 0, sim.stderr()
    return reader, data_dir, env


def one_table(data_dir: Path) -> tuple[list[str], list[list[str]]]:
    """Every batch's rows, all under one header."""
    tables = read_tables(data_dir)
    headers = {tuple(header) for header, _ in tables}
    assert len(headers) == 1, headers
    return list(headers.pop()), [row for _, rows in tables for row in rows]


def quarantined(data_dir: Path) -> list[dict]:
    entries = []
    for path in sorted((data_dir / "quarantine").rglob("*.jsonl")):
        entries += [json.loads(line) for line in path.read_text().splitlines()]
    return entries


def test_a_plain_t_value_stream_is_stored_whole_under_default_settings(
    firmware_sim, processes, reader_env
):
    """The most common Arduino or lab output, 't,value': not one line refused."""
    sim = firmware_sim("--format", "csv", "--channels", "1", "--rate", "2000", "--samples", "6000")
    reader, data_dir, _ = read_with_defaults(processes, reader_env, sim)
    assert reader.stop() == 0
    header, rows = one_table(data_dir)
    assert header == ["seq", "received_at", "f0", "f1"]
    assert [row[2] for row in rows] == [f"{n / 2000:.6f}" for n in range(6000)]
    assert "event=format_detected format=csv" in reader.log()
    assert quarantined(data_dir) == []
    identity = json.loads((data_dir / "state" / "identity.json").read_text())
    assert identity["line_format"] == "csv"


def test_a_mixed_nmea_0183_stream_keeps_every_sentence_with_a_valid_checksum(
    firmware_sim, processes, reader_env, tmp_path
):
    good = [nmea(body) for body in NMEA_BODIES * 20] + [nmea(AIS, "!")]
    bad = [good[5][:-2] + ("00" if not good[5].endswith("00") else "01")]
    lines = good[:100] + bad + good[100:]
    sim = replay(firmware_sim, tmp_path, [line.encode() + b"\r\n" for line in lines])
    reader, data_dir, _ = read_with_defaults(processes, reader_env, sim)
    assert reader.stop() == 0
    header, rows = one_table(data_dir)
    assert header == ["seq", "received_at", "record_type", "fields"]
    # Each row gives back its sentence: start, address, fields verbatim, checksum.
    rebuilt = [nmea(f"{row[2]},{row[3]}", "!" if row[2] == "AIVDM" else "$") for row in rows]
    assert rebuilt == good
    assert {row[2] for row in rows} >= {"GPGGA", "GPGSV", "GNGGA", "PUBX", "PGRME", "AIVDM"}
    assert "event=format_detected format=nmea0183" in reader.log()
    (rejected,) = quarantined(data_dir)
    assert rejected["reason"] == "bad_checksum" and rejected["line"] == bad[0]
    # An analyst's view: one rectangular table per sentence type.
    env = reader_env()
    done = run_gateway(env, "tables", "--data-dir", str(data_dir), "--out", str(tmp_path / "t"))
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "t" / "GPGGA.csv", newline="") as file:
        gga = list(csv.reader(file))
    assert gga[0][:4] == ["seq", "received_at", "f1", "f2"] and len(gga) == 1 + 20
    expected = [body.split(",")[1:] for body in NMEA_BODIES if body.startswith("GPGGA")] * 20
    assert [row[2:] for row in gga[1:]] == expected
    assert "20 rows" in done.stdout and "PUBX.csv" in done.stdout


def test_arduino_serial_plotter_lines_keep_their_names_and_values(
    firmware_sim, processes, reader_env, tmp_path
):
    lines = [
        f"temp:{20 + n / 100:.2f},humidity:{40 + n % 7}.5,light:{n % 1024}" for n in range(400)
    ]
    sim = replay(firmware_sim, tmp_path, [line.encode() + b"\r\n" for line in lines])
    reader, data_dir, _ = read_with_defaults(processes, reader_env, sim)
    assert reader.stop() == 0
    header, rows = one_table(data_dir)
    assert header == ["seq", "received_at", "temp", "humidity", "light"]
    assert [f"temp:{row[2]},humidity:{row[3]},light:{row[4]}" for row in rows] == lines
    assert "event=format_detected format=keyvalue" in reader.log()


def test_a_lab_instrument_with_a_header_and_european_decimals(
    firmware_sim, processes, reader_env, tmp_path
):
    header = "time;temperature °C;pressure hPa;status"
    lines = [header] + [
        f"12:{n // 60:02d}:{n % 60:02d};{21 + n / 10:.1f};{1013 + n % 5},2;OK".replace(".", ",")
        for n in range(300)
    ]
    sim = replay(firmware_sim, tmp_path, [line.encode() + b"\n" for line in lines])
    reader, data_dir, _ = read_with_defaults(processes, reader_env, sim)
    assert reader.stop() == 0
    names, rows = one_table(data_dir)
    assert names == ["seq", "received_at", "time", "temperature °C", "pressure hPa", "status"]
    assert [";".join(row[2:]) for row in rows] == lines[1:]
    assert "event=format_detected format=delimited" in reader.log()


def test_raw_keeps_any_text_line_verbatim(firmware_sim, processes, reader_env, tmp_path):
    lines = [
        'sensor "A", value 3,5 µS/cm — ok',
        "\tindented, with a tab and trailing space ",
        "温度 21.5 °C 🌡",
        '"quoted",,"empty fields"',
        "",
        "ATZ",
        "OK",
    ] * 30
    sim = replay(firmware_sim, tmp_path, [line.encode() + b"\n" for line in lines])
    reader, data_dir, _ = read_with_defaults(processes, reader_env, sim, line_format="raw")
    assert reader.stop() == 0
    header, rows = one_table(data_dir)
    assert header == ["seq", "received_at", "line"]
    assert [row[2] for row in rows] == lines


def test_a_stream_the_configured_format_refuses_is_loud_with_a_hint(
    firmware_sim, processes, reader_env
):
    """csv-seq configured, the device prints t,value: warnings say so, with the fix."""
    env = reader_env()  # GATEWAY_LINE_FORMAT=csv-seq
    sim = firmware_sim("--format", "csv", "--channels", "1", "--rate", "500")
    reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "local", env=env)
    wait_for(lambda: "event=lines_rejected_high" in reader.log(), 20, message="a warning")
    warning = next(
        line for line in reader.log().splitlines() if "event=lines_rejected_high" in line
    )
    assert "level=warning" in warning and 'reasons="bad_counter:' in warning
    assert "these lines look like csv, not csv-seq; set GATEWAY_LINE_FORMAT=csv or auto" in warning

    def alert():
        status = json.loads(run_gateway(env, "status", "--json").stdout)
        return status["services"]["reader"]["rejection_alert"]

    shown = wait_for(alert, 10, message="the alert in gateway status")
    assert shown["share"] == 1.0 and "GATEWAY_LINE_FORMAT=csv" in shown["hint"]
    text = run_gateway(env, "status").stdout
    assert "REJECTING 100% of lines in the last 60 s (bad_counter" in text
    assert "set GATEWAY_LINE_FORMAT=csv or auto" in text
    assert reader.stop() == 0


def test_rejected_lines_reach_the_bucket_with_their_reasons(
    firmware_sim, processes, reader_env, uploader_env, moto, tmp_path
):
    """Nothing a device said is lost centrally: the quarantine goes up too, exactly once."""
    lines = [nmea(body) for body in NMEA_BODIES * 10]
    lines[7] = lines[7][:-2] + ("00" if not lines[7].endswith("00") else "01")  # a bad checksum
    lines[30] = "u-blox AG - www.u-blox.com"  # a boot banner, not a sentence
    sim = replay(firmware_sim, tmp_path, [line.encode() + b"\r\n" for line in lines])
    env = {**reader_env(), **uploader_env(moto.url)}
    env.pop("GATEWAY_LINE_FORMAT")
    reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "local", env=env)
    assert sim.wait(60) == 0
    assert reader.stop() == 0
    for _ in range(2):  # the second run finds nothing left to do
        uploaded = run_gateway(env, "uploader", "--once")
        assert uploaded.returncode == 0, uploaded.stderr
    listed = moto.client.list_objects_v2(Bucket=BUCKET, Prefix="raw/test-gw/quarantine/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert keys and all(key.endswith(".jsonl.gz") for key in keys)
    entries = []
    for key in keys:
        body = moto.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        entries += [json.loads(line) for line in gzip.decompress(body).splitlines()]
    assert [(e["reason"], e["line"]) for e in entries] == [
        ("bad_checksum", lines[7]),
        ("malformed", lines[30]),
    ]
    assert all_versions(moto.client, BUCKET) == {
        key: 1 for key in all_versions(moto.client, BUCKET)
    }
    marks = list((Path(env["GATEWAY_DATA_DIR"]) / "quarantine").rglob("*.jsonl.touched"))
    assert len(marks) == len(keys)


# A line of each format with a device counter: (counter, time, value) as the device prints it.
SEQ_LINES = {
    "csv-seq": lambda n, t, v: f"{n},{t},{v}",
    "json": lambda n, t, v: f'{{"n": {n}, "t": {t}, "ch": [{v}]}}',
}


@pytest.mark.parametrize("line_format", sorted(SEQ_LINES))
def test_a_five_thousand_digit_counter_is_a_counted_rejection_and_its_neighbours_are_kept(
    firmware_sim, processes, reader_env, tmp_path, line_format
):
    """Numbers of any size are counted rejections or stored text, never an exception: a device
    counter of 5,000 digits (Python refuses int() past 4,300) and a value of 5,000 digits, in
    a stream read under GATEWAY_MAX_LINE_BYTES=8192 over a real PTY, through status and
    audit."""
    line = SEQ_LINES[line_format]
    good = [line(n, f"{n / 1000:.3f}", f"{n % 7}.25") for n in range(1200)]
    monster = line("9" * 5000, "0.500", "1.25")
    huge_value = line(600, "0.600", "8" * 5000)  # a value, not a counter: kept as sent
    lines = good[:500] + [monster] + good[500:600] + [huge_value] + good[601:]
    sim = replay(firmware_sim, tmp_path, [text.encode() + b"\n" for text in lines])
    env = reader_env(max_line_bytes=8192, line_format=line_format)
    reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "local", env=env)
    assert sim.wait(60) == 0, sim.stderr()
    assert reader.stop() == 0
    assert "Traceback" not in reader.log()
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    _, rows = one_table(data_dir)
    assert [row[2] for row in rows] == [str(n) for n in range(1200)]
    assert rows[600][4] == "8" * 5000
    (rejected,) = quarantined(data_dir)
    assert rejected["reason"] == "bad_counter"
    assert rejected["detail"] == "counter has 5000 digits; at most 20 are read"
    assert rejected["length"] == len(monster) and rejected["truncated"] is True
    status = json.loads(run_gateway(env, "status", "--json").stdout)
    counters = status["services"]["reader"]["counters"]
    assert counters["rejected_by_reason"] == {"bad_counter": 1}
    assert counters["rows_accepted"] == len(lines) - 1
    audited = run_gateway(env, "audit", "--no-s3", "--json")
    assert audited.returncode == 0, audited.stderr
    (report,) = json.loads(audited.stdout)
    assert report["gaps"] == [] and report["rows_local"] == len(lines) - 1
