"""The steps on one batch that the Luigi tasks map: validate, process, upload, verify, mark.

Each step is a plain function of paths and settings; the tasks only declare how they chain.
Derived files (compressed copies, per-batch processing results) live under
``<data dir>/state/uploader/work/`` and are reused after a crash, so a batch keeps the key and
bytes it was first processed into until it is marked.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gateway.core.batchfile import check_batch
from gateway.core.keys import BadName, object_key, parse_relative_path, quarantine_prefix
from gateway.core.manifest import (
    ObjectDigest,
    build_manifest,
    check_against_name,
    object_digest,
    object_metadata,
    part_sizes,
    quick_check_blocks,
    verify_head,
)
from gateway.store.durable import make_dirs, write_atomic
from gateway.store.layout import DataDir
from gateway.store.marks import mark_touched, quarantine_batch
from gateway.store.workspace import UploadWorkspace
from gateway.uploader import s3

log = logging.getLogger("gateway.uploader")

_ASCII_RE = re.compile(r"[^ -~]")


class Stopped(Exception):
    """A stop was requested before this step began; nothing of it was done."""


def _store(data_dir: str) -> DataDir:
    return DataDir(Path(data_dir))


def workspace(data_dir: str) -> UploadWorkspace:
    return UploadWorkspace(_store(data_dir))


@dataclass(frozen=True)
class Destination:
    """Where one data dir's batches go and how they are shaped."""

    data_dir: str
    gateway_id: str
    bucket: str
    prefix: str
    compression: str
    part_bytes: int
    gzip_level: int = 1


# -- validate ----------------------------------------------------------------------------


def validate(data_dir: str, relpath: str) -> dict:
    """Check a sealed batch: header, rows, seq contiguous, name matching content."""
    path = _store(data_dir).batch_path(relpath)
    try:
        name = parse_relative_path(relpath)
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            check = quick_check_blocks(iter(lambda: file.read(READ_BLOCK), b""), name.first_seq)
        if check is None or check.good_bytes != size:  # something is wrong: say what
            data = path.read_bytes()
            size = len(data)
            check = check_batch(data, name.first_seq)
    except FileNotFoundError:
        return {"batch": relpath, "status": "missing"}
    except BadName as error:
        return {"batch": relpath, "status": "invalid", "problem": str(error)}
    problem = check_against_name(name, check, size)
    if problem:
        return {"batch": relpath, "status": "invalid", "problem": problem}
    return {
        "batch": relpath,
        "status": "valid",
        "manifest": build_manifest(name, check, size).as_dict(),
    }


# -- process -----------------------------------------------------------------------------


READ_BLOCK = 1 << 20  # files are read, compressed and hashed a block at a time


def _digest_file(path: Path, part_bytes: int) -> ObjectDigest:
    """Per-part SHA-256 and MD5 plus the whole SHA-256 of a file, read block by block."""
    size = path.stat().st_size
    sizes = part_sizes(size, part_bytes)
    whole = hashlib.sha256()
    sha, md5 = [], []
    with open(path, "rb") as file:
        for part in sizes:
            part_sha, part_md5, left = hashlib.sha256(), hashlib.md5(), part
            while left:
                block = file.read(min(READ_BLOCK, left))
                if not block:
                    raise OSError(f"{path} shrank while being read")
                part_sha.update(block)
                part_md5.update(block)
                whole.update(block)
                left -= len(block)
            sha.append(part_sha.digest())
            md5.append(part_md5.digest())
    return object_digest(size, sha, md5, whole.digest(), multipart=size >= part_bytes)


def _gzip_file(source: Path, target: Path, level: int) -> str:
    """gzip ``source`` into ``target`` (no name, time 0: the same bytes every time); return
    the SHA-256 of ``source``."""
    csv_sha256 = hashlib.sha256()
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: a gzip wrapper
    make_dirs(target.parent)
    part = target.with_name(target.name + ".part")
    with open(source, "rb") as file, open(part, "wb") as out:
        while block := file.read(READ_BLOCK):
            csv_sha256.update(block)
            out.write(compressor.compress(block))
        out.write(compressor.flush())
    os.replace(part, target)  # not fsynced: see forget_after_reboot
    return csv_sha256.hexdigest()


def _ascii(text: str, limit: int = 1024) -> str:
    return _ASCII_RE.sub("?", text)[:limit]


def process(destination: Destination, validated: dict) -> dict:
    """Compress (or not) and checksum a validated batch; reuse an earlier result if any."""
    relpath = validated["batch"]
    if validated["status"] == "missing":
        return validated
    space = workspace(destination.data_dir)
    record_path = space.record_path(relpath)
    try:
        earlier = json.loads(record_path.read_text())
        if Path(earlier["upload_path"]).exists():
            return earlier
    except (FileNotFoundError, ValueError, KeyError):
        pass
    source = space.data_dir.batch_path(relpath)
    if not source.exists():
        return {"batch": relpath, "status": "missing"}
    name = parse_relative_path(relpath)
    result = dict(validated)
    if validated["status"] == "valid" and destination.compression == "gzip":
        compressed = space.compressed_path(relpath)
        result["csv_sha256"] = _gzip_file(source, compressed, destination.gzip_level)
        result["key"] = object_key(destination.prefix, destination.gateway_id, name, gzip=True)
        result["upload_path"] = str(compressed)
        result["content_type"] = "application/gzip"
        digest = _digest_file(compressed, destination.part_bytes)
    else:
        digest = _digest_file(source, destination.part_bytes)
        result["csv_sha256"] = digest.sha256_hex
        result["upload_path"] = str(source)
        result["content_type"] = "text/csv"
        if validated["status"] == "invalid":
            prefix = quarantine_prefix(destination.prefix)
            result["key"] = object_key(prefix, destination.gateway_id, name, gzip=False)
            result["metadata"] = {"reason": _ascii(validated["problem"])}
        else:
            result["key"] = object_key(destination.prefix, destination.gateway_id, name, gzip=False)
    if validated["status"] == "valid":
        result["metadata"] = object_metadata(validated["manifest"], result["csv_sha256"])
    result["part_bytes"] = destination.part_bytes
    result["digest"] = digest.as_dict()
    make_dirs(record_path.parent)
    write_atomic(record_path, json.dumps(result).encode(), durable=False)
    return result


def forget_processed(data_dir: str, relpath: str) -> None:
    """Drop a batch's derived files (after its mark, or when the store got other bytes)."""
    workspace(data_dir).forget_processed(relpath)


# -- upload and verify -------------------------------------------------------------------


@dataclass
class Runtime:
    """What the tasks of one uploader process share: S3, the stop flag, the event sink."""

    client: object
    uploads: s3.Uploads
    bucket: str
    check_etag: bool
    report: object  # callable(event, data_dir, batch, **fields)
    stop: threading.Event = field(default_factory=threading.Event)

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped()


def _expected(entry: dict) -> ObjectDigest:
    return ObjectDigest(**entry["digest"])


def upload_entries(runtime: Runtime, data_dir: str, entries: list[dict]) -> list[dict]:
    """Upload every processed entry; stop starting new ones once a stop is requested.

    Returns one outcome per entry: ``created``, ``exists`` (an identical object was already
    there: a retry after a crash or a lost answer), ``failed`` or ``not_started``.
    """
    outcomes = []
    running = []
    for entry in entries:
        if entry["status"] == "missing":
            continue
        if runtime.stop.is_set():
            outcomes.append({"batch": entry["batch"], "result": "not_started"})
            continue
        future = s3.start_upload(
            runtime.uploads,
            runtime.bucket,
            entry["key"],
            entry["upload_path"],
            entry["part_bytes"],
            entry["metadata"],
            entry["content_type"],
        )
        running.append((entry, future))
    for entry, future in running:
        outcomes.append(_finish_upload(runtime, data_dir, entry, future))
    return outcomes


def _finish_upload(runtime: Runtime, data_dir: str, entry: dict, future) -> dict:
    outcome = {"batch": entry["batch"], "key": entry["key"]}
    try:
        future.result()
        outcome["result"] = "created"
        runtime.report("sent", data_dir, entry["batch"], bytes=entry["digest"]["size"])
        return outcome
    except Exception as error:  # noqa: BLE001 (every failure is reported and retried later)
        if s3.is_precondition_failed(error):
            return _compare_existing(runtime, data_dir, entry, outcome)
        if s3.is_bad_digest(error):
            forget_processed(data_dir, entry["batch"])
        return _failed(runtime, data_dir, entry, outcome, s3.describe(error, runtime.bucket))


def _compare_existing(runtime: Runtime, data_dir: str, entry: dict, outcome: dict) -> dict:
    try:
        existing = s3.head(runtime.client, runtime.bucket, entry["key"])
    except Exception as error:  # noqa: BLE001
        return _failed(runtime, data_dir, entry, outcome, s3.describe(error, runtime.bucket))
    if existing is None:  # deleted between our PUT and HEAD: try again later
        return _failed(runtime, data_dir, entry, outcome, "object vanished after 412")
    problem = verify_head(_expected(entry), existing, check_etag=runtime.check_etag)
    if problem:
        adopted = _same_batch_other_bytes(runtime, entry, existing)
        if adopted is None:
            message = f"key is taken by other content, not overwritten: {problem}"
            return _failed(runtime, data_dir, entry, outcome, message)
        outcome["adopted"] = adopted
    outcome["result"] = "exists"
    runtime.report("already_there", data_dir, entry["batch"], key=entry["key"])
    return outcome


def _same_batch_other_bytes(runtime: Runtime, entry: dict, existing: dict) -> dict | None:
    """The digest of an existing object that holds this very batch in other bytes (gzipped at
    another level, or by another zlib, before a crash), or None.

    Its metadata must name the batch's SHA-256, and its bytes, fetched and decompressed here,
    must have it: a rare path (after a reboot and a setting change), so a GET is affordable.
    """
    if existing.get("Metadata", {}).get("csv-sha256") != entry["csv_sha256"]:
        return None
    try:
        body = runtime.client.get_object(Bucket=runtime.bucket, Key=entry["key"])["Body"].read()
        data = gzip.decompress(body) if entry["key"].endswith(".gz") else body
    except Exception:  # noqa: BLE001 (unreadable or not gzip: not our batch)
        return None
    if hashlib.sha256(data).hexdigest() != entry["csv_sha256"]:
        return None
    checksum = existing.get("ChecksumSHA256") or ""
    value, _, parts = checksum.partition("-")
    if not value or len(body) != existing.get("ContentLength"):
        return None
    return ObjectDigest(
        size=len(body),
        parts=int(parts) if parts else _parts_of(existing),
        checksum_sha256=value,
        etag=(existing.get("ETag") or "").strip('"'),
        sha256_hex=hashlib.sha256(body).hexdigest(),
    ).as_dict()


def _parts_of(head: dict) -> int:
    _, _, parts = (head.get("ETag") or "").strip('"').partition("-")
    return int(parts) if parts.isdigit() else 0


def _failed(runtime: Runtime, data_dir: str, entry: dict, outcome: dict, message: str) -> dict:
    outcome["result"] = "failed"
    outcome["error"] = message
    runtime.report("failed", data_dir, entry["batch"], key=entry.get("key"), error=message)
    return outcome


def verify_entries(runtime: Runtime, data_dir: str, entries: list[dict], uploaded: list[dict]):
    """HEAD every uploaded object: size and SHA-256 (and MD5 ETag) must be what was sent."""
    by_batch = {entry["batch"]: entry for entry in entries}
    todo = [o for o in uploaded if o["result"] in ("created", "exists")]
    with ThreadPoolExecutor(runtime.uploads.threads) as pool:
        heads = list(pool.map(lambda o: _head_or_error(runtime, o["key"]), todo))
    results = []
    for outcome, (found, error) in zip(todo, heads, strict=True):
        entry = by_batch[outcome["batch"]]
        result = {"batch": entry["batch"], "key": entry["key"]}
        if error is not None:
            results.append(_failed(runtime, data_dir, entry, result, error))
            continue
        expected = ObjectDigest(**outcome["adopted"]) if "adopted" in outcome else _expected(entry)
        problem = (
            "HEAD found no object"
            if found is None
            else verify_head(expected, found, check_etag=runtime.check_etag)
        )
        if problem:
            results.append(_failed(runtime, data_dir, entry, result, f"verify refused: {problem}"))
            continue
        result["result"] = "verified"
        result["etag"] = found.get("ETag", "").strip('"')
        result["digest"] = expected.as_dict()
        results.append(result)
    return results


def _head_or_error(runtime: Runtime, key: str) -> tuple[dict | None, str | None]:
    try:
        return s3.head(runtime.client, runtime.bucket, key), None
    except Exception as error:  # noqa: BLE001
        return None, s3.describe(error, runtime.bucket)


# -- mark --------------------------------------------------------------------------------


def mark_entries(runtime: Runtime, data_dir: str, entries: list[dict], verified: list[dict]):
    """Write a touched mark per verified batch, or move a verified invalid one to quarantine."""
    by_batch = {entry["batch"]: entry for entry in entries}
    touched, quarantined = [], []
    for result in verified:
        if result.get("result") != "verified":
            continue
        entry = by_batch[result["batch"]]
        digest = result["digest"]
        record = {
            "bucket": runtime.bucket,
            "key": entry["key"],
            "etag": result["etag"],
            "size": digest["size"],
            "sha256": digest["sha256_hex"],
            "checksum_sha256": digest["checksum_sha256"],
            "parts": digest["parts"],
            "csv_sha256": entry["csv_sha256"],
            "verified_at": round(time.time(), 3),
        }
        if entry["status"] == "valid":
            record["manifest"] = entry["manifest"]
            touched.append((entry, record))
        else:
            record["reason"] = entry["problem"]
            quarantined.append((entry, record))
    store = _store(data_dir)
    mark_touched(store, [(entry["batch"], record) for entry, record in touched])
    for entry, record in quarantined:
        quarantine_batch(store, entry["batch"], record)
    marked = []
    for event, done in (("uploaded", touched), ("quarantined", quarantined)):
        for entry, record in done:
            forget_processed(data_dir, entry["batch"])
            runtime.report(
                event,
                data_dir,
                entry["batch"],
                key=entry["key"],
                bytes=record["size"],
                reason=record.get("reason"),
            )
            marked.append({"batch": entry["batch"], "result": event, "key": entry["key"]})
    return marked
