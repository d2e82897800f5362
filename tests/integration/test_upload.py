"""The uploader against a real S3 endpoint over HTTP (moto's server as a process)."""

import gzip
import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from gateway.core.keys import object_key, parse_relative_path
from gateway.supervise import free_port, wait_for, wait_http
from gateway.supervise.chain import GATEWAY, MOTO_SERVER, read_status
from gateway.uploader.s3 import NO_WAIT_BODY_BYTES
from tests.support.s3 import (  # noqa: F401 (fixtures: moto, uploader_env)
    BUCKET,
    CREDENTIALS,
    Relay,
    StoreProxy,
    all_versions,
    client,
    is_batch_key,
    is_probe_key,
    moto_fixture,
    uploader_env_fixture,
)
from tests.support.uploads import object_bytes, touched_marks, write_batches


def run_once(env, timeout=120):
    result = subprocess.run(
        [GATEWAY, "uploader", "--once"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return result.returncode, result.stderr


def batch_of(path: Path) -> str:
    return path.relative_to(path.parents[3]).as_posix()


def assert_exactly_once(s3, data_dir, paths, prefix="raw", gateway_id="test-gw"):
    """Every batch: one object (one version) at its deterministic key with the file's bytes,
    and a touched mark that names that key."""
    versions = all_versions(s3, BUCKET)
    marks = touched_marks(data_dir)
    for path in paths:
        key = object_key(prefix, gateway_id, parse_relative_path(batch_of(path)), gzip=True)
        assert versions.get(key) == 1, f"{key}: {versions.get(key)} versions"
        assert object_bytes(s3, BUCKET, key) == path.read_bytes()
        assert marks[path]["key"] == key
    assert sum(1 for key in versions if not key.startswith(f"{prefix}/quarantine/")) == len(paths)


def test_a_backlog_becomes_one_verified_object_per_batch_and_touched_marks(
    moto, uploader_env, tmp_path
):
    env = uploader_env(moto.url)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    paths = write_batches(data_dir, 40, 300)
    status, log = run_once(env)
    assert status == 0, log
    assert_exactly_once(moto.client, data_dir, paths)
    mark = touched_marks(data_dir)[paths[0]]
    head = moto.client.head_object(Bucket=BUCKET, Key=mark["key"], ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == mark["checksum_sha256"]
    assert head["ContentLength"] == mark["size"]
    assert head["Metadata"]["first-seq"] == "0" and head["Metadata"]["last-seq"] == "299"
    assert mark["manifest"]["rows"] == 300 and mark["parts"] == 0
    assert mark["csv_sha256"] == head["Metadata"]["csv-sha256"]
    # 2024-05-01 is over and every batch in it is touched: the folder is marked too.
    assert (paths[0].parent / ".touched").exists()
    counters = read_status(data_dir, "uploader")["counters"]
    assert counters["uploaded"] == 40 and counters["pending"] == 0 and counters["failed"] == 0
    assert counters["bytes"] == sum(m["size"] for m in touched_marks(data_dir).values())
    # gateway status --json carries the uploader's counters.
    shown = subprocess.run(
        [GATEWAY, "status", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    uploader = json.loads(shown.stdout)["services"]["uploader"]
    assert uploader["counters"]["uploaded"] == 40 and uploader["last_error"] is None
    # A second run finds nothing to do and writes nothing.
    status, log = run_once(env)
    assert status == 0, log
    assert read_status(data_dir, "uploader")["counters"]["uploaded"] == 0
    assert_exactly_once(moto.client, data_dir, paths)


def test_an_object_goes_up_in_one_round_trip_and_is_judged_on_one_head_right_after(
    moto, uploader_env
):
    """A small object's PUT carries no ``Expect: 100-continue`` (which costs a round trip of
    its own before the body); a bigger one's does. Each object gets one HEAD: the one its
    upload thread made right after the PUT, which Verify judges."""
    proxy = StoreProxy(moto.port)
    try:
        env = uploader_env(proxy.url, upload_compression="none")
        data_dir = Path(env["GATEWAY_DATA_DIR"])
        small = write_batches(data_dir, 3, 500)
        big = write_batches(data_dir, 1, 45_000, start_seq=1500)
        status, log = run_once(env)
    finally:
        proxy.close()
    assert status == 0, log
    assert big[0].stat().st_size > NO_WAIT_BODY_BYTES > max(p.stat().st_size for p in small)
    keys = {mark["key"]: path for path, mark in touched_marks(data_dir).items()}
    assert all(object_bytes(moto.client, BUCKET, key) == p.read_bytes() for key, p in keys.items())
    batch_requests = [r for r in proxy.requests if is_batch_key(r[1])]
    puts = {key: expect for method, key, expect in batch_requests if method == "PUT"}
    heads = [key for method, key, _ in batch_requests if method == "HEAD"]
    assert len(keys) == 4 and set(puts) == set(keys) and sorted(heads) == sorted(keys)
    assert puts == {key: path in big for key, path in keys.items()}
    assert [r for r in batch_requests if r[0] not in ("PUT", "HEAD")] == []


def test_a_head_that_fails_right_after_its_put_is_made_again_by_verify(moto, uploader_env):
    proxy = StoreProxy(moto.port, refuse_first_heads=True)
    try:
        env = uploader_env(proxy.url)
        data_dir = Path(env["GATEWAY_DATA_DIR"])
        paths = write_batches(data_dir, 3, 200)
        status, log = run_once(env)
    finally:
        proxy.close()
    assert status == 0, log
    assert_exactly_once(moto.client, data_dir, paths)
    heads = [key for method, key, _ in proxy.requests if method == "HEAD" and is_batch_key(key)]
    assert len(proxy.refused_heads) == 3 and sorted(heads) == sorted([*proxy.refused_heads] * 2)


def test_big_objects_go_up_in_parts_with_a_composite_checksum_verify_checks(moto, uploader_env):
    env = uploader_env(moto.url, upload_compression="none", upload_multipart_bytes=5 << 20)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    paths = write_batches(data_dir, 1, 240_000, channels=4)  # about 12 MiB
    assert paths[0].stat().st_size > 10 << 20
    status, log = run_once(env)
    assert status == 0, log
    mark = touched_marks(data_dir)[paths[0]]
    assert mark["key"] == "raw/test-gw/2024/05/01/000000000000-000000239999.csv"
    assert mark["parts"] == 3
    head = moto.client.head_object(Bucket=BUCKET, Key=mark["key"], ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"].split("-")[0] == mark["checksum_sha256"]
    assert head["ETag"].strip('"').endswith("-3")
    assert object_bytes(moto.client, BUCKET, mark["key"]) == paths[0].read_bytes()


def test_invalid_batches_are_quarantined_locally_and_in_s3_with_their_reason(moto, uploader_env):
    env = uploader_env(moto.url)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    paths = write_batches(data_dir, 5, 100)
    gap, cut, misnamed = paths[1], paths[2], paths[3]
    gap.write_bytes(gap.read_bytes().replace(b"\n150,", b"\n151,"))
    cut.write_bytes(cut.read_bytes()[:-7])
    misnamed.rename(misnamed.with_name("000000000300-000000000400.csv"))
    misnamed = misnamed.with_name("000000000300-000000000400.csv")
    originals = {p: p.read_bytes() for p in (gap, cut, misnamed)}
    status, log = run_once(env)
    assert status == 0, log
    reasons = {
        gap: "row 51 has seq 151, expected 150",
        cut: "row 100 is incomplete (",
        misnamed: "rows hold seq 300-399 but the name says 300-400",
    }
    for path, reason in reasons.items():
        batch = batch_of(path)
        kept = data_dir / "quarantine" / "batches" / batch
        assert not path.exists() and kept.read_bytes() == originals[path]
        record = json.loads(kept.with_name(kept.name + ".reason.json").read_text())
        assert record["reason"].startswith(reason), record["reason"]
        key = f"raw/quarantine/test-gw/{batch}"
        assert record["key"] == key
        head = moto.client.head_object(Bucket=BUCKET, Key=key)
        assert head["Metadata"]["reason"].startswith(reason)
        assert moto.client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == originals[path]
    assert_exactly_once(moto.client, data_dir, [paths[0], paths[4]])
    counters = read_status(data_dir, "uploader")["counters"]
    assert (counters["uploaded"], counters["quarantined"], counters["pending"]) == (2, 3, 0)
    assert "event=batch_quarantined" in log and "row 51 has seq 151, expected 150" in log


def test_the_same_batch_already_there_counts_as_done_and_other_content_is_never_overwritten(
    moto, uploader_env
):
    env = uploader_env(moto.url, upload_once_attempts=2)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    same, other, liar, fresh = write_batches(data_dir, 4, 200)
    key = {
        p: object_key("raw", "test-gw", parse_relative_path(batch_of(p)), gzip=True)
        for p in (same, other, liar, fresh)
    }

    def put(path, body, csv_sha256=None):
        metadata = {"csv-sha256": csv_sha256} if csv_sha256 else {}
        moto.client.put_object(
            Bucket=BUCKET, Key=key[path], Body=body, Metadata=metadata, ChecksumAlgorithm="SHA256"
        )

    # The same batch gzipped at another level (say, before a crash and a setting change).
    put(same, gzip.compress(same.read_bytes(), 9), hashlib.sha256(same.read_bytes()).hexdigest())
    put(other, b"someone else's bytes")
    # Metadata claiming this batch over other bytes is not believed: the bytes are checked.
    put(liar, gzip.compress(b"not the batch"), hashlib.sha256(liar.read_bytes()).hexdigest())
    status, log = run_once(env)
    assert status == 1, log
    marks = touched_marks(data_dir)
    assert set(marks) == {same, fresh}
    assert other.exists() and liar.exists()
    body = moto.client.get_object(Bucket=BUCKET, Key=key[other])["Body"].read()
    assert body == b"someone else's bytes"
    assert gzip.decompress(moto.client.get_object(Bucket=BUCKET, Key=key[same])["Body"].read()) == (
        same.read_bytes()
    )
    head = moto.client.head_object(Bucket=BUCKET, Key=key[same], ChecksumMode="ENABLED")
    assert marks[same]["checksum_sha256"] == head["ChecksumSHA256"]
    assert marks[same]["size"] == head["ContentLength"]
    assert all_versions(moto.client, BUCKET) == {k: 1 for k in key.values()}
    published = read_status(data_dir, "uploader")
    assert published["counters"]["already_there"] == 1
    assert published["counters"]["failed"] == 2 and published["counters"]["pending"] == 2
    assert "key is taken by other content, not overwritten: object has 20 bytes" in log
    assert published["last_error"]["error"].startswith(
        "key is taken by other content, not overwritten:"
    )


@pytest.mark.parametrize("strip_checksum", [False, True], ids=["checksum-kept", "checksum-lost"])
def test_bytes_corrupted_on_the_way_are_refused_by_verify_and_never_marked(
    moto, uploader_env, strip_checksum
):
    """moto keeps whatever arrives; a proxy flips a byte of each object body on the way in."""
    proxy = StoreProxy(moto.port, corrupt="objects", request_checksums=not strip_checksum)
    try:
        env = uploader_env(proxy.url, upload_once_attempts=2)
        data_dir = Path(env["GATEWAY_DATA_DIR"])
        paths = write_batches(data_dir, 4, 200)
        status, log = run_once(env)
    finally:
        proxy.close()
    assert status == 1, log
    # Each batch's object, on each attempt (and the store probe's, which therefore finds that
    # the checksums moto keeps unchecked do not describe the bytes it holds).
    assert len({key for key in proxy.corrupted if not is_probe_key(key)}) == 4
    assert touched_marks(data_dir) == {} and all(p.exists() for p in paths)
    published = read_status(data_dir, "uploader")
    assert published["counters"]["uploaded"] == 0 and published["counters"]["failed"] == 4
    # The first attempt stored corrupt bytes and Verify refused them; the retry finds the key
    # taken by those bytes and does not overwrite them (an operator has to look).
    if strip_checksum:  # the store checksummed what it got, as S3 does
        assert 'error="verify refused: object SHA-256 checksum is' in log, log
    else:  # moto kept our checksum header, but its ETag is the MD5 of what it got
        assert 'error="verify refused: object ETag is' in log, log
    assert 'error="key is taken by other content, not overwritten' in log


def test_a_missing_bucket_is_a_clear_counted_error_and_nothing_is_lost(moto, uploader_env):
    env = uploader_env(moto.url, s3_bucket="not-there-yet", upload_once_attempts=2)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    paths = write_batches(data_dir, 3, 100)
    status, log = run_once(env)
    assert status == 1, log
    published = read_status(data_dir, "uploader")
    assert published["last_error"]["error"] == (
        "NoSuchBucket: bucket 'not-there-yet' does not exist (GATEWAY_S3_BUCKET)"
    )
    assert published["counters"]["failures"] == 6 and published["counters"]["pending"] == 3
    assert touched_marks(data_dir) == {} and all(p.exists() for p in paths)
    moto.client.create_bucket(Bucket="not-there-yet")
    status, log = run_once(env)
    assert status == 0, log
    assert len(touched_marks(data_dir)) == 3


def test_bad_credentials_are_counted_and_a_sighup_with_fixed_ones_uploads_everything(
    tmp_path, uploader_env, processes
):
    import boto3

    # Moto checks signatures from the fifth request on: the first four make a user, its key,
    # its policy and the bucket.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = processes.start(
        "moto-auth",
        [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
        env={**CREDENTIALS, "INITIAL_NO_AUTH_ACTION_COUNT": "4"},
    )
    wait_http(f"{url}/moto-api/", 30, service=server)
    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam.create_user(UserName="gateway")
    key = iam.create_access_key(UserName="gateway")["AccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="gateway", PolicyName="s3", PolicyDocument=json.dumps(policy))
    client(url).create_bucket(Bucket=BUCKET)
    env_file = tmp_path / "gateway.env"
    env_file.write_text(f"AWS_ACCESS_KEY_ID={key['AccessKeyId']}\nAWS_SECRET_ACCESS_KEY=wrong\n")
    env = uploader_env(url, env_file=env_file)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    paths = write_batches(data_dir, 6, 100)
    uploader = processes.gateway("uploader", "--foreground", env=env, name="uploader")

    def failing():
        published = read_status(data_dir, "uploader")
        return published and published["counters"]["failures"] >= 6 and published

    published = wait_for(failing, 30, message="failures to be counted")
    assert published["last_error"]["error"] == (
        "SignatureDoesNotMatch: the secret key is wrong: check AWS_SECRET_ACCESS_KEY"
    )
    assert touched_marks(data_dir) == {}
    env_file.write_text(
        f"AWS_ACCESS_KEY_ID={key['AccessKeyId']}\nAWS_SECRET_ACCESS_KEY={key['SecretAccessKey']}\n"
    )
    os.kill(uploader.pid, signal.SIGHUP)
    wait_for(lambda: len(touched_marks(data_dir)) == 6, 30, message="uploads after SIGHUP")
    assert uploader.stop() == 0
    assert "event=settings_reloaded" in uploader.log()
    good = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    for path, mark in touched_marks(data_dir).items():
        assert object_bytes(good, BUCKET, mark["key"]) == path.read_bytes()
    assert set(touched_marks(data_dir)) == set(paths)


def test_several_data_dirs_under_one_parent_upload_under_their_own_gateway_ids(
    moto, uploader_env, tmp_path
):
    parent = tmp_path / "monitors"
    env = uploader_env(moto.url, data_dir=parent)
    a = write_batches(parent / "monitor-a", 3, 50, gateway_id="ward-a")
    b = write_batches(parent / "monitor-b", 2, 50, gateway_id="ward-b", seed=2)
    c = write_batches(parent / "monitor-c", 2, 50, seed=3)  # no identity: GATEWAY_ID
    status, log = run_once(env)
    assert status == 0, log
    for paths, gateway_id in ((a, "ward-a"), (b, "ward-b"), (c, "test-gw")):
        data_dir = paths[0].parents[4]
        for path in paths:
            key = object_key("raw", gateway_id, parse_relative_path(batch_of(path)), gzip=True)
            assert touched_marks(data_dir)[path]["key"] == key
            assert object_bytes(moto.client, BUCKET, key) == path.read_bytes()
        assert read_status(data_dir, "uploader")["counters"]["uploaded"] == len(paths)
    assert len(all_versions(moto.client, BUCKET)) == 7


def test_an_outage_mid_backlog_delays_but_everything_arrives_exactly_once(
    moto, uploader_env, processes
):
    """The server goes away (connections reset, then refused) and comes back on the same port
    with its objects: a versioned bucket shows that no object was written twice."""
    relay = Relay(moto.port)
    try:
        env = uploader_env(relay.url, upload_chunk_batches=4, s3_timeout_seconds=2)
        data_dir = Path(env["GATEWAY_DATA_DIR"])
        paths = write_batches(data_dir, 200, 100)
        uploader = processes.gateway("uploader", "--foreground", env=env, name="uploader")
        wait_for(lambda: len(touched_marks(data_dir)) >= 20, 60, interval=0.01, message="uploads")
        relay.cut()
        error = wait_for(
            lambda: (read_status(data_dir, "uploader") or {}).get("last_error"),
            30,
            message="the outage to be seen",
        )
        during = len(touched_marks(data_dir))
        assert during < len(paths)
        relay.restore()
        wait_for(lambda: len(touched_marks(data_dir)) == len(paths), 90, message="the backlog")
        assert uploader.stop() == 0
    finally:
        relay.close()
    assert error["error"].split(":")[0] in (
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
    ), error
    final = read_status(data_dir, "uploader")["counters"]
    assert final["failures"] >= 1 and final["failed"] == 0 and final["pending"] == 0
    assert_exactly_once(moto.client, data_dir, paths)


def test_a_hung_server_times_out_and_its_late_answers_write_nothing_twice(
    moto, uploader_env, processes
):
    """SIGSTOP the server mid-backlog: requests time out and are retried while the first ones
    still wait in the frozen server, which handles them after SIGCONT. Conditional creates make
    the late duplicates harmless: every key still has one version."""
    env = uploader_env(moto.url, upload_chunk_batches=4, s3_timeout_seconds=1)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    paths = write_batches(data_dir, 60, 100)
    uploader = processes.gateway("uploader", "--foreground", env=env, name="uploader")
    wait_for(lambda: len(touched_marks(data_dir)) >= 8, 60, interval=0.01, message="uploads")
    os.kill(moto.service.pid, signal.SIGSTOP)
    try:
        error = wait_for(
            lambda: (read_status(data_dir, "uploader") or {}).get("last_error"),
            30,
            message="the timeouts to be seen",
        )
    finally:
        os.kill(moto.service.pid, signal.SIGCONT)
    assert "timeout" in error["error"].lower() or "Timeout" in error["error"], error
    wait_for(lambda: len(touched_marks(data_dir)) == len(paths), 90, message="the backlog")
    assert uploader.stop() == 0
    assert_exactly_once(moto.client, data_dir, paths)
