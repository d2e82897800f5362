"""Reader and uploader together, as on a gateway: firmware-sim -> reader -> batches -> S3."""

import json
import os
import subprocess
from pathlib import Path

from gateway.core.batchfile import check_batch
from gateway.core.keys import object_key, parse_relative_path
from gateway.store.seals import read_seal
from gateway.supervise import wait_for
from gateway.supervise.chain import GATEWAY, read_status
from tests.support.batches import part_files, sealed_files
from tests.support.s3 import (  # noqa: F401 (fixtures: moto, uploader_env)
    BUCKET,
    all_versions,
    moto_fixture,
    uploader_env_fixture,
)
from tests.support.uploads import object_bytes, touched_marks


def test_batches_the_reader_seals_become_objects_equal_to_the_files(
    firmware_sim, processes, reader_env, uploader_env, moto
):
    env = uploader_env(moto.url, upload_rescan_seconds=300)  # inotify alone must find them
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    data_dir.mkdir(parents=True)
    uploader = processes.gateway("uploader", "--foreground", env=env, name="uploader")
    # Its first scan sees an empty data dir: from here on only inotify can find new batches.
    wait_for(lambda: "event=uploader_started" in uploader.log(), 30, message="the uploader")
    sim = firmware_sim("--rate", "2000", "--samples", "9000", "--channels", "4", "--seed", "5")
    reader = processes.gateway(
        "reader",
        "--port",
        str(sim.port),
        "--mode",
        "local",
        env=reader_env(id="ward-7", batch_rows=1000),
        name="reader",
    )
    assert sim.wait(60) == 0, sim.stderr()
    assert reader.stop() == 0
    sealed = sealed_files(data_dir)
    assert len(sealed) == 9 and part_files(data_dir) == []
    wait_for(lambda: len(touched_marks(data_dir)) == len(sealed), 60, message="every batch touched")
    assert uploader.stop() == 0
    # The gateway id comes from the reader's state/identity.json, not the uploader's GATEWAY_ID.
    assert json.loads((data_dir / "state" / "identity.json").read_text())["gateway_id"] == "ward-7"
    marks = touched_marks(data_dir)
    for path in sealed:
        relpath = path.relative_to(data_dir / "batches").as_posix()
        key = object_key("raw", "ward-7", parse_relative_path(relpath), gzip=True)
        assert marks[path]["key"] == key
        assert object_bytes(moto.client, BUCKET, key) == path.read_bytes()
        # The reader's seal record was the uploader's word for the rows, and its hash held.
        record = read_seal(path)
        assert record.sha256 == marks[path]["csv_sha256"]
        assert record.as_check() == check_batch(path.read_bytes(), record.first_seq)
    assert "batch_differs_from_seal" not in uploader.log()
    assert all_versions(moto.client, BUCKET) == {m["key"]: 1 for m in marks.values()}
    shown = subprocess.run(
        [GATEWAY, "status", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    status = json.loads(shown.stdout)
    assert status["inventory"]["touched_batches"] == 9
    assert status["inventory"]["pending_batches"] == 0
    counters = status["services"]["uploader"]["counters"]
    assert counters["uploaded"] == 9 and counters["pending"] == 0
    assert read_status(data_dir, "uploader")["last_success"]["key"] == marks[sealed[-1]]["key"]
