"""gateway audit over the real chain: firmware-sim -> reader -> uploader -> moto S3."""

import json
from pathlib import Path

from tests.support.batches import sealed_files
from tests.support.processes import record_and_upload, run_gateway
from tests.support.s3 import (  # noqa: F401 (fixtures: moto, uploader_env)
    BUCKET,
    moto_fixture,
    uploader_env_fixture,
)


def audit(env, *args):
    done = run_gateway(env, "audit", "--json", *args)
    (report,) = json.loads(done.stdout)
    return done.returncode, report


def test_audit_names_every_gap_and_passes_a_clean_chain(
    firmware_sim, processes, moto, uploader_env
):
    env = {**uploader_env(moto.url), "GATEWAY_BATCH_ROWS": "500"}
    record_and_upload(
        firmware_sim,
        processes,
        env,
        "--rate",
        "2000",
        "--samples",
        "4000",
        "--seed",
        "12",
        "--faults",
        "truncated@700,utf8@1500,garbage@1800,unplug@3000:0.1",
    )
    code, report = audit(env)
    assert code == 0 and report["passed"], report["failures"]
    rows = report["seq_last"] + 1
    assert (report["seq_first"], report["rows_local"], report["rows_in_s3"]) == (0, rows, rows)
    assert rows == 4000 - 1 - 1 - 200
    device = [(g["first"], g["last"], g["cause"]) for g in report["gaps"] if g["level"] == "device"]
    assert device == [
        (700, 700, "rejected by the reader (see quarantine)"),
        (1500, 1500, "rejected by the reader (see quarantine)"),
        (3000, 3199, "lost on the wire"),  # the unplug: 0.1 s at 2 kHz
    ]
    assert [g for g in report["gaps"] if g["level"] == "seq"] == []
    strict = audit(env, "--strict")
    assert strict[0] == 1 and len(strict[1]["failures"]) == 3


def test_audit_fails_on_missing_objects_and_missing_batches(
    firmware_sim, processes, moto, uploader_env
):
    env = {**uploader_env(moto.url), "GATEWAY_BATCH_ROWS": "300"}
    record_and_upload(
        firmware_sim, processes, env, "--rate", "3000", "--samples", "3000", "--seed", "3"
    )
    assert audit(env)[0] == 0
    batches = sealed_files(Path(env["GATEWAY_DATA_DIR"]))
    mark = json.loads(batches[2].with_name(batches[2].name + ".touched").read_text())
    for version in moto.client.list_object_versions(Bucket=BUCKET, Prefix=mark["key"])["Versions"]:
        moto.client.delete_object(Bucket=BUCKET, Key=mark["key"], VersionId=version["VersionId"])
    code, report = audit(env)
    assert code == 1
    assert report["failures"] == [
        f"{batches[2].relative_to(batches[2].parents[3]).as_posix()}"
        " is marked uploaded but not in S3"
    ]
    # Batch 5 gone from the disk and from the bucket: its seq range has no trace anywhere.
    key5 = json.loads(batches[5].with_name(batches[5].name + ".touched").read_text())["key"]
    assert "000000001500-000000001799" in key5
    for version in moto.client.list_object_versions(Bucket=BUCKET, Prefix=key5)["Versions"]:
        moto.client.delete_object(Bucket=BUCKET, Key=key5, VersionId=version["VersionId"])
    batches[5].with_name(batches[5].name + ".touched").unlink()
    batches[5].unlink()
    code, report = audit(env)
    assert code == 1
    assert "seq 1500-1799 missing without a recorded reason" in report["failures"]
