"""``gateway audit`` of a gateway whose services are running (as hil/ and the crash campaign
audit it): cleanup deletes uploaded batches and the reader seals new ones while it looks.

Each test makes one such event happen at the worst moment, against real files and a real S3
endpoint (moto's server): a batch deleted between the listing of the data dir and the reading
of its rows, and two batches sealed while the bucket is listed with the later one uploaded
first. Neither may fail the audit: nothing was lost.
"""

import gzip
import json
import os
from pathlib import Path

import gateway.commands.audit
from gateway.commands.audit import audit_data_dir
from gateway.core.keys import object_key, parse_relative_path
from gateway.settings import Settings
from gateway.store.layout import DataDir
from gateway.uploader.s3 import make_client
from tests.support.s3 import (  # noqa: F401 (fixtures: moto, uploader_env)
    BUCKET,
    moto_fixture,
    uploader_env_fixture,
)

DAY = "2026/11/28"


def seal(data_dir: Path, first: int, rows: int = 100) -> Path:
    """A sealed csv-seq batch as the reader writes it: seq, received_at, device counter, value."""
    folder = data_dir / "batches" / DAY
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(
        f"{s},{1795000000 + s / 1000:.6f},{s + 7},{s % 13}.5\n" for s in range(first, first + rows)
    )
    path = folder / f"{first:012d}-{first + rows - 1:012d}.csv"
    path.write_text("seq,received_at,f0,f1\n" + body)
    return path


def upload(s3, data_dir: Path, path: Path) -> None:
    """What the uploader does for one batch: the object, then the touched mark."""
    relative = path.relative_to(data_dir / "batches").as_posix()
    key = object_key("raw", "live-gw", parse_relative_path(relative), gzip=True)
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(path.read_bytes()))
    path.with_name(path.name + ".touched").write_text(json.dumps({"key": key}))


def setup(moto, uploader_env, monkeypatch):
    env = uploader_env(moto.url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # make_client takes AWS_* credentials from here
    settings = Settings.from_env({**os.environ, **env})
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    (data_dir / "state").mkdir(parents=True)
    (data_dir / "quarantine").mkdir()
    (data_dir / "state" / "identity.json").write_text(
        json.dumps({"gateway_id": "live-gw", "line_format": "csv-seq"})
    )
    batches = [seal(data_dir, first) for first in range(0, 500, 100)]
    for path in batches:
        upload(moto.client, data_dir, path)
    return settings, data_dir, batches


def test_a_batch_cleanup_deletes_while_the_audit_reads_is_not_a_crash(
    moto, uploader_env, monkeypatch
):
    settings, data_dir, batches = setup(moto, uploader_env, monkeypatch)
    listed = gateway.commands.audit.sealed_batches

    def listing_then_cleanup(where):
        found = listed(where)
        if batches[0].exists():  # uploaded and old: cleanup deletes it, then its mark
            batches[0].unlink()
            batches[0].with_name(batches[0].name + ".touched").unlink()
        return found

    monkeypatch.setattr(gateway.commands.audit, "sealed_batches", listing_then_cleanup)
    audit = audit_data_dir(DataDir(data_dir), settings, make_client(settings))
    assert audit.report.passed, audit.report.failures
    assert (audit.report.seq_first, audit.report.seq_last) == (0, 499)
    assert audit.report.rows_local == 400 and audit.report.rows_in_s3 == 500


class SealsWhileListing:
    """An S3 client whose bucket listing happens while the reader seals two batches and the
    uploader, running two pipelines, finishes the later one first."""

    def __init__(self, client, data_dir: Path) -> None:
        self.client = client
        self.data_dir = data_dir

    def get_paginator(self, name):
        later = seal(self.data_dir, 600)
        seal(self.data_dir, 500)
        upload(self.client, self.data_dir, later)
        return self.client.get_paginator(name)


def test_batches_sealed_and_uploaded_out_of_order_while_listing_leave_no_false_hole(
    moto, uploader_env, monkeypatch
):
    settings, data_dir, _ = setup(moto, uploader_env, monkeypatch)
    client = SealsWhileListing(make_client(settings), data_dir)
    audit = audit_data_dir(DataDir(data_dir), settings, client)
    assert audit.report.passed, audit.report.failures
    assert audit.report.seq_last == 699
    assert [span.first for span in audit.report.pending_upload] == [500]
