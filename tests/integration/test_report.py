"""gateway report over the real chain (firmware-sim -> reader -> uploader -> moto S3), on one
machine and on a real Dask cluster (a scheduler and two workers, as processes)."""

import datetime as dt
import gzip
import json
import statistics
from fractions import Fraction
from pathlib import Path

import pytest

from gateway.commands.cli import main
from gateway.supervise import free_port
from tests.support.batches import read_rows
from tests.support.dask import dask_cluster as start_dask_cluster
from tests.support.processes import record_and_upload, run_gateway
from tests.support.s3 import (  # noqa: F401 (fixtures: moto, uploader_env)
    BUCKET,
    CREDENTIALS,
    moto_fixture,
    uploader_env_fixture,
)

PNG = b"\x89PNG\r\n\x1a\n"


def report(env, out, *args):
    done = run_gateway(env, "report", "--json", "--out", str(out), *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def dask_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes (the workers find S3 credentials in
    their own environment, as on a real cluster)."""
    with start_dask_cluster(tmp_path, workers=2, threads=1, env=CREDENTIALS) as address:
        yield address


def exact_stats(rows, column):
    values = [Fraction(row[column].decode()) for row in rows]
    return {
        "count": len(values),
        "min": float(min(values)),
        "max": float(max(values)),
        "mean": float(statistics.mean(values)),
        "std": pytest.approx(statistics.stdev(values), rel=1e-15),
        "non_numeric": 0,
    }


def test_the_cluster_gives_the_single_machine_report(
    firmware_sim, processes, moto, uploader_env, dask_cluster, tmp_path
):
    env = {**uploader_env(moto.url), "GATEWAY_BATCH_ROWS": "400"}
    record_and_upload(
        firmware_sim,
        processes,
        env,
        "--rate",
        "2000",
        "--samples",
        "5000",
        "--channels",
        "3",
        "--waveform",
        "ecg",
        "--seed",
        "9",
        "--faults",
        "truncated@700,utf8@1500,garbage@1800,unplug@3000:0.1",
    )
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    rows = read_rows(data_dir)

    local = report(env, tmp_path / "local", "--data-dir", str(data_dir))
    single = report(env, tmp_path / "single", "--from-s3")
    spread = report(env, tmp_path / "cluster", "--dask-scheduler", dask_cluster)

    # The cluster and one machine reading the same objects: the very same summary and plots.
    assert spread == single
    for name in ("overview.png", "timeline.png", "channels.png"):
        drawn = (tmp_path / "cluster" / name).read_bytes()
        assert drawn.startswith(PNG) and len(drawn) > 10_000
        assert drawn == (tmp_path / "single" / name).read_bytes(), name
    assert json.loads((tmp_path / "cluster" / "summary.json").read_text()) == spread

    # What the session holds, checked against the stored rows themselves.
    assert spread["rows"] == len(rows) == 5000 - 1 - 1 - 200
    assert spread["batches"] == len(list((data_dir / "batches").rglob("*.csv")))
    assert spread["channels"] == {
        f"f{i}": exact_stats(rows, 2 + i) for i in range(2, 5)
    }  # the fields after n and t
    assert spread["gaps"]["seq_missing"] == 0
    assert [(g["first"], g["last"]) for g in spread["gaps"]["device"]] == [
        (700, 700),
        (1500, 1500),
        (3000, 3199),
    ]
    assert spread["device_rate_hz"] == pytest.approx(2000, rel=1e-6)
    assert spread["rejects"]["known"] is False
    assert spread["source"] == "s3://fieldgate-test/raw/test-gw/"

    # The data dir adds what only it knows: the quarantine.
    assert local["source"] == str(data_dir)
    assert local["rejects"]["known"] is True
    # truncated (field count), utf8 (invalid UTF-8) and the garbage line (random bytes).
    assert local["rejects"]["total"] == 3
    assert local["rejects"]["by_reason"]["field_count"] >= 1
    assert local["rejects"]["by_reason"]["invalid_utf8"] >= 1
    assert [g["rejected"] for g in local["gaps"]["device"]] == [1, 1, 0]
    assert local["gaps"]["device_rejected"] == 2
    for key in ("source", "rejects", "gaps", "plots"):
        local.pop(key), spread.pop(key)
    assert local == spread


def put_batch(s3, key, first_seq, rows, day, *, compress=True):
    """An object as the uploader writes it: a sealed batch's bytes, gzipped."""
    base = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp()
    lines = ["seq,received_at,n,t,ch0\n"]
    for seq in range(first_seq, first_seq + rows):
        lines.append(f"{seq},{base + seq / 100:.6f},{seq},{seq / 100:.6f},{seq % 10}.25\n")
    body = "".join(lines).encode()
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(body) if compress else body)


def test_days_gateways_duplicates_and_bad_objects(
    moto, uploader_env, tmp_path, monkeypatch, capsys
):
    for key, value in uploader_env(moto.url).items():
        monkeypatch.setenv(key, value)
    may1, may2 = dt.date(2024, 5, 1), dt.date(2024, 5, 2)
    put_batch(moto.client, "raw/test-gw/2024/05/01/000000000000-000000000099.csv.gz", 0, 100, may1)
    put_batch(
        moto.client, "raw/test-gw/2024/05/01/000000000100-000000000199.csv.gz", 100, 100, may1
    )
    # The same batch once more, uncompressed (a compression change): read once.
    put_batch(
        moto.client,
        "raw/test-gw/2024/05/01/000000000100-000000000199.csv",
        100,
        100,
        may1,
        compress=False,
    )
    put_batch(moto.client, "raw/test-gw/2024/05/02/000000000300-000000000349.csv.gz", 300, 50, may2)

    def report_json(*args):
        assert main(["report", "--json", "--out", str(tmp_path / "out"), *args]) == 0
        return json.loads(capsys.readouterr().out)

    everything = report_json("--from-s3")
    assert (everything["rows"], everything["batches"], everything["duplicate_objects"]) == (
        250,
        3,
        1,
    )
    assert everything["gaps"]["seq"] == [
        {"first": 200, "last": 299, "count": 100, "after": "2024-05-01T12:00:01.990000+00:00"}
    ]
    assert everything["channels"]["ch0"]["mean"] == 4.75
    assert report_json("--from-s3", "--since", "2024-05-02")["rows"] == 50
    assert report_json("--from-s3", "--until", "2024-05-01")["rows"] == 200
    assert report_json("--from-s3", "--until", "2000-01-01")["rows"] == 0

    # A second gateway in the bucket: the report asks which one.
    moto.client.put_object(
        Bucket=BUCKET,
        Key="raw/other-gw/2024/05/01/000000000000-000000000001.csv.gz",
        Body=b"not gzip",
    )
    assert main(["report", "--from-s3", "--out", str(tmp_path / "x")]) == 2
    assert (
        "s3://fieldgate-test/raw/ holds 2 gateways (other-gw, test-gw): pick one with --gateway"
        in capsys.readouterr().err
    )
    # Nothing to read is said as such.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", "--data-dir", str(empty), "--out", str(tmp_path / "e")]) == 2
    assert f"no data dir under {empty} (nothing holds batches/)" in capsys.readouterr().err
    # A bucket that cannot be reached: no report, and why.
    monkeypatch.setenv("GATEWAY_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("GATEWAY_S3_TIMEOUT_SECONDS", "1")
    assert main(["report", "--from-s3", "--gateway", "test-gw", "--out", str(tmp_path / "u")]) == 2
    assert "gateway report: cannot read the batches: Could not connect" in capsys.readouterr().err
    monkeypatch.setenv("GATEWAY_S3_ENDPOINT_URL", moto.url)
    # A damaged object is named, left out, and makes the exit status 1.
    out = str(tmp_path / "o")
    assert main(["report", "--from-s3", "--gateway", "other-gw", "--out", out]) == 1
    assert (
        "unreadable: 2024/05/01/000000000000-000000000001.csv.gz: not gzip:"
        in capsys.readouterr().out
    )
