"""SIGKILL the uploader at random moments, restart it each time: no batch lost, no object
written twice, no touched mark without a verified object."""

import os
import random
import time
from pathlib import Path

from gateway.core.keys import object_key, parse_relative_path
from tests.support.s3 import (  # noqa: F401 (fixtures: moto, uploader_env)
    BUCKET,
    all_versions,
    moto_fixture,
    uploader_env_fixture,
)
from tests.support.uploads import object_bytes, touched_marks, write_batches

KILLS = int(os.environ.get("FIELDGATE_UPLOAD_KILLS", "32"))
ROUND_BATCHES = 24  # sealed between two kills


def key_of(path: Path) -> str:
    relpath = path.relative_to(path.parents[3]).as_posix()
    return object_key("raw", "test-gw", parse_relative_path(relpath), gzip=True)


def check_invariants(s3, data_dir: Path, paths: list[Path]) -> int:
    """After a kill: each touched mark names an object S3 holds with the mark's size and
    checksum; no key has two versions; no key belongs to no batch."""
    versions = all_versions(s3, BUCKET)
    assert all(count == 1 for count in versions.values()), versions
    assert set(versions) <= {key_of(p) for p in paths}
    marks = touched_marks(data_dir)
    for path, mark in marks.items():
        head = s3.head_object(Bucket=BUCKET, Key=mark["key"], ChecksumMode="ENABLED")
        assert head["ContentLength"] == mark["size"]
        assert head["ChecksumSHA256"].split("-")[0] == mark["checksum_sha256"]
        assert mark["key"] == key_of(path)
    return len(marks)


def test_random_sigkills_lose_nothing_duplicate_nothing_and_mark_only_verified(
    moto, uploader_env, processes
):
    rng = random.Random(int(os.environ.get("FIELDGATE_SEED", "0")) or None)
    env = uploader_env(moto.url, upload_chunk_batches=6, upload_multipart_bytes=5 << 20)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    # A batch big enough to go up in parts even gzipped, then a stream of small ones.
    paths = write_batches(data_dir, 1, 420_000, channels=6, seed=9)
    paths += write_batches(data_dir, 60, 200, start_seq=420_000)
    next_seq = 420_000 + 60 * 200
    moments, interrupted = [], 0
    for round_ in range(KILLS):
        # The reader goes on sealing batches while the uploader crashes and restarts: enough
        # each round that most kills land mid-work (the uploader, lean since issue 18, starts
        # fast and had uploaded 8 before most kills).
        new = write_batches(data_dir, ROUND_BATCHES, 200, start_seq=next_seq, seed=round_ + 100)
        paths += new
        next_seq += ROUND_BATCHES * 200
        uploader = processes.gateway("uploader", "--foreground", env=env, name="uploader")
        moment = rng.uniform(0.2, 1.2)
        time.sleep(moment)
        uploader.kill()
        moments.append(round(moment, 2))
        if check_invariants(moto.client, data_dir, paths) < len(paths):
            interrupted += 1  # killed with work left: mid-cycle, not idle
    print(f"{interrupted} of {KILLS} kills found work left")
    assert interrupted >= KILLS // 3, f"only {interrupted} kills found work left"
    # At the end, one clean run drains what is left.
    final = processes.gateway("uploader", "--once", env=env, name="final")
    assert final.wait(120) == 0, final.log()
    assert check_invariants(moto.client, data_dir, paths) == len(paths), moments
    versions = all_versions(moto.client, BUCKET)
    assert len(versions) == len(paths)
    for path in paths:
        assert object_bytes(moto.client, BUCKET, key_of(path)) == path.read_bytes()
