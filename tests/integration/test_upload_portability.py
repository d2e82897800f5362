"""The uploader unchanged against stores that support less than AWS S3: every batch exactly
once, byte for byte, marked only once verified, by whatever the store offers.

The stores: SeaweedFS (a second implementation of the S3 API, started by the test), and moto
or SeaweedFS behind :func:`older_store_proxy`, which makes them look like an older store (no
checksums, ``If-None-Match`` ignored) or one whose ETags are no MD5s (SSE-KMS and the like).
"""

import gzip
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from gateway.core.codec import Reason, Rejection
from gateway.core.keys import object_key, parse_relative_path
from gateway.store.layout import DataDir
from gateway.store.quarantine import Quarantine
from gateway.supervise.chain import GATEWAY, read_status
from tests.support.s3 import (  # noqa: F401 (fixtures: moto, seaweedfs..., uploader_env)
    BUCKET,
    CREDENTIALS,
    all_versions,
    client,
    is_probe_key,
    moto_fixture,
    older_store_proxy,
    seaweedfs_fixture,
    seaweedfs_unsigned_fixture,
    uploader_env_fixture,
)
from tests.support.uploads import object_bytes, touched_marks, write_batches

DAY_SECONDS = 1714525200  # 2024-05-01 01:00 UTC, the day write_batches writes


def run_once(env, *args, timeout=180):
    result = subprocess.run(
        [GATEWAY, "uploader", "--once", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return result.returncode, result.stderr


def s3_check(env, *args):
    return subprocess.run(
        [GATEWAY, "s3", "check", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def batch_of(path: Path) -> str:
    return path.relative_to(path.parents[3]).as_posix()


def key_of(path: Path, *, gzip: bool = True) -> str:
    return object_key("raw", "test-gw", parse_relative_path(batch_of(path)), gzip=gzip)


def write_rejected_lines(data_dir: Path) -> Path:
    """One sealed segment of rejected lines, as the reader leaves it."""
    quarantine = Quarantine(DataDir(data_dir))
    rejections = [
        Rejection(Reason.FIELD_COUNT, "3 fields, expected 5", b"1,2,3", 5, DAY_SECONDS + i)
        for i in range(20)
    ]
    quarantine.add(rejections)
    return quarantine.seal()


# Each store, with how it is expected to verify single-PUT and multipart objects.
STORES = {
    # SeaweedFS keeps SHA-256 checksums and MD5 ETags and honours If-None-Match, like S3.
    "seaweedfs": ("seaweedfs", {}, "checksum+etag", "checksum+etag", False),
    # Without checksums, moto's ETags still are MD5s (of the bytes, of the part MD5s).
    "older-moto": ("moto", {}, "etag", "etag", True),
    # ETags that are no MD5s either: only reading the object back proves it.
    "opaque-moto": ("moto", {"opaque_etags": True}, "read", "read", True),
    "opaque-seaweedfs": ("seaweedfs_unsigned", {"opaque_etags": True}, "read", "read", True),
}


@pytest.fixture(params=list(STORES))
def store(request):
    """(the server, the URL the uploader uses, the proxy or None, expectations)."""
    server_name, proxy_options, single, multipart, checks_first = STORES[request.param]
    server = request.getfixturevalue(server_name)
    proxy = None
    if request.param != "seaweedfs":
        proxy = older_store_proxy(server.port, **proxy_options)
    yield server, (proxy.url if proxy else server.url), proxy, (single, multipart, checks_first)
    if proxy:
        proxy.close()


def assert_exactly_once(s3, paths, *, gzipped=True):
    """Every batch: one object, one version, the file's bytes (after gunzip); no other."""
    versions = all_versions(s3, BUCKET)
    for path in paths:
        key = key_of(path, gzip=gzipped)
        assert versions.get(key) == 1, f"{key}: {versions.get(key)} versions"
        assert object_bytes(s3, BUCKET, key) == path.read_bytes()
    batch_keys = [key for key in versions if "/quarantine/" not in key]
    assert len(batch_keys) == len(paths), batch_keys


def test_every_batch_and_rejected_line_arrives_once_verified_with_what_the_store_offers(
    store, uploader_env
):
    server, url, proxy, (single, _, checks_first) = store
    env = uploader_env(url)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    paths = write_batches(data_dir, 12, 200)
    segment = write_rejected_lines(data_dir)
    status, log = run_once(env)
    assert status == 0, log
    assert_exactly_once(server.client, paths)
    marks = touched_marks(data_dir)
    assert set(marks) == set(paths)
    assert {mark["verified_by"] for mark in marks.values()} == {single}
    rejected_mark = json.loads(segment.with_name(segment.name + ".touched").read_text())
    assert rejected_mark["verified_by"] == single
    body = server.client.get_object(Bucket=BUCKET, Key=rejected_mark["key"])["Body"].read()
    assert gzip.decompress(body) == segment.read_bytes()
    published = read_status(data_dir, "uploader")
    assert published["counters"]["uploaded"] == 12 and published["counters"]["failures"] == 0
    found = published["s3"]
    assert found["verify_single"] == single and found["check_before_write"] is checks_first
    assert found["conditional_put"] == ("ignored" if proxy else "honoured")
    assert found["checksum_sha256"] is (proxy is None) and found["probe_removed"] is True
    assert "event=s3_capabilities" in log
    assert [line for line in log.splitlines() if "event=s3_capabilities" in line][0].count(
        "\n"
    ) == 0
    # The probe left nothing behind: no version of any probe object.
    listed = server.client.list_object_versions(Bucket=BUCKET).get("Versions", [])
    assert not [v for v in listed if is_probe_key(v["Key"])]
    # A second run finds nothing to do and writes nothing.
    status, log = run_once(env)
    assert status == 0, log
    assert read_status(data_dir, "uploader")["counters"]["uploaded"] == 0
    assert_exactly_once(server.client, paths)


def test_big_batches_go_up_in_parts_and_are_verified_by_what_the_store_offers(store, uploader_env):
    server, url, _, (_, multipart, _) = store
    env = uploader_env(url, upload_compression="none", upload_multipart_bytes=5 << 20)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    paths = write_batches(data_dir, 1, 130_000, channels=4)  # about 6.5 MiB: two parts
    assert paths[0].stat().st_size > 5 << 20
    status, log = run_once(env)
    assert status == 0, log
    mark = touched_marks(data_dir)[paths[0]]
    assert mark["parts"] == 2 and mark["verified_by"] == multipart
    assert_exactly_once(server.client, paths, gzipped=False)


def test_without_conditional_writes_an_object_already_there_is_adopted_or_never_overwritten(
    moto, uploader_env
):
    """moto's bucket is versioned, so any overwrite would show as a second version."""
    proxy = older_store_proxy(moto.port)
    try:
        env = uploader_env(proxy.url, upload_once_attempts=2)
        data_dir = Path(env["GATEWAY_DATA_DIR"])
        same, other, fresh = write_batches(data_dir, 3, 200)
        # An earlier run's object (a crash before the mark), and someone else's bytes.
        earlier = gzip.compress(same.read_bytes(), compresslevel=1, mtime=0)
        moto.client.put_object(Bucket=BUCKET, Key=key_of(same), Body=earlier)
        moto.client.put_object(Bucket=BUCKET, Key=key_of(other), Body=b"someone else's bytes")
        status, log = run_once(env)
    finally:
        proxy.close()
    assert status == 1, log
    assert set(touched_marks(data_dir)) == {same, fresh}
    assert moto.client.get_object(Bucket=BUCKET, Key=key_of(other))["Body"].read() == (
        b"someone else's bytes"
    )
    assert all_versions(moto.client, BUCKET) == {key_of(p): 1 for p in (same, other, fresh)}
    published = read_status(data_dir, "uploader")
    assert published["counters"]["already_there"] == 1
    assert published["last_error"]["error"] == (
        "key is taken by other content, not overwritten: object has 20 bytes, sent "
        f"{len(gzip.compress(other.read_bytes(), compresslevel=1, mtime=0))}"
    )
    assert proxy.dropped_if_none_match > 0  # sent, where harmless, and ignored


@pytest.mark.parametrize("opaque_etags", [False, True], ids=["etag", "read"])
def test_bytes_corrupted_on_the_way_are_caught_by_the_fallback_verification(
    moto, uploader_env, opaque_etags
):
    """No checksums reach the uploader; a byte of each batch object flips on the way in."""
    proxy = older_store_proxy(moto.port, opaque_etags=opaque_etags, corrupt=True)
    try:
        env = uploader_env(proxy.url, upload_once_attempts=2)
        data_dir = Path(env["GATEWAY_DATA_DIR"])
        paths = write_batches(data_dir, 3, 200)
        status, log = run_once(env)
    finally:
        proxy.close()
    assert status == 1, log
    assert len(set(proxy.corrupted)) == 3
    assert touched_marks(data_dir) == {} and all(p.exists() for p in paths)
    published = read_status(data_dir, "uploader")
    assert published["counters"]["uploaded"] == 0 and published["counters"]["failures"] == 6
    sent = gzip.compress(paths[0].read_bytes(), compresslevel=1, mtime=0)
    if opaque_etags:
        assert 'error="verify refused: object read back has SHA-256 ' in log, log
        assert f"sent {hashlib.sha256(sent).hexdigest()}" in log
    else:
        assert 'error="verify refused: object ETag is ' in log, log
        assert f"the bytes sent have {hashlib.md5(sent).hexdigest()}" in log
    # The retry finds the corrupt object at the key and does not write over it.
    assert 'error="key is taken by other content, not overwritten: ' in log
    assert all(count == 1 for count in all_versions(moto.client, BUCKET).values())


# -- gateway s3 check --------------------------------------------------------------------


def test_s3_check_says_what_the_store_supports_and_how_uploads_will_be_verified(
    store, uploader_env
):
    _, url, proxy, (single, multipart, checks_first) = store
    shown = s3_check(uploader_env(url))
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"single PUT objects: {single}" in out and f"multipart objects: {multipart}" in out
    assert ("HEAD before each create" in out) is checks_first
    assert out.splitlines()[-1].startswith("gateway s3 check: OK: uploads will be verified")
    as_json = json.loads(s3_check(uploader_env(url), "--json").stdout)
    assert as_json["verifiable"] is True and as_json["verify_single"] == single


def test_s3_check_against_moto_relies_on_checksums_etags_and_conditional_writes(moto, uploader_env):
    shown = s3_check(uploader_env(moto.url))
    assert shown.returncode == 0, shown.stderr
    assert "single PUT objects: checksum+etag" in shown.stdout
    assert "If-None-Match on PutObject: honoured" in shown.stdout


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        (
            {"s3_bucket": "not-there"},
            "gateway s3 check: cannot upload: NoSuchBucket: bucket 'not-there' does not exist "
            "(GATEWAY_S3_BUCKET)",
        ),
        (
            {"s3_verify": "checksum", "proxy": True},
            "gateway s3 check: uploads would not be verified: GATEWAY_S3_VERIFY=checksum but "
            "the store reports no SHA-256 checksum (single PUT objects)",
        ),
    ],
    ids=["no-bucket", "checksum-required"],
)
def test_s3_check_fails_with_one_line_that_says_why(moto, uploader_env, changes, error):
    proxy = older_store_proxy(moto.port) if changes.pop("proxy", False) else None
    try:
        shown = s3_check(uploader_env(proxy.url if proxy else moto.url, **changes))
    finally:
        if proxy:
            proxy.close()
    assert shown.returncode == 1
    assert shown.stderr.strip() == error


def test_s3_check_without_credentials_says_so(moto, uploader_env, tmp_path):
    env = uploader_env(moto.url)
    for name in CREDENTIALS:
        env.pop(name)
    env = {
        **env,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
    }
    shown = subprocess.run(
        [GATEWAY, "s3", "check"],
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 1
    assert shown.stderr.strip() == (
        "gateway s3 check: cannot upload: no AWS credentials: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (or a profile)"
    )
