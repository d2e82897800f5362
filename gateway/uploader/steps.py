"""The steps on the batches of one chunk: validate, process, upload, verify, mark.

Each step is a plain function of paths, settings and the results of the steps before it
(``gateway/uploader/results.py``); the Luigi tasks only declare how they chain. Validate and
Process run per batch (Dask maps them); Upload, Verify and Mark take a chunk's batches at once
and report what happens to the service as events (``gateway/uploader/events.py``). Derived
files (compressed copies, per-batch processing results) live in the store's workspace and are
reused after a crash, so a batch keeps the key and bytes it was first processed into until it
is marked.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import os
import re
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gateway.core.batchfile import check_batch
from gateway.core.clock import RunClock, StepSeen, batch_clock
from gateway.core.keys import BadName, object_key, parse_relative_path, quarantine_prefix
from gateway.core.manifest import (
    Manifest,
    ObjectDigest,
    ObjectHasher,
    build_manifest,
    check_against_name,
    object_metadata,
    quick_check_blocks,
)
from gateway.core.verification import Proven, Refused
from gateway.logs import log_event
from gateway.store.durable import make_dirs, write_atomic
from gateway.store.layout import DataDir
from gateway.store.ledgers import clock_steps, runs
from gateway.store.marks import mark_touched, quarantine_batch
from gateway.store.seals import read_seal
from gateway.store.workspace import UploadWorkspace
from gateway.uploader import s3
from gateway.uploader.copies import CompressedCopies
from gateway.uploader.events import AlreadyThere, Failed, Quarantined, Sent, Uploaded
from gateway.uploader.results import (
    BatchStatus,
    Marked,
    MarkResult,
    Processed,
    UploadOutcome,
    UploadResult,
    Validated,
    Verified,
)
from gateway.uploader.runtime import TaskRuntime

log = logging.getLogger("gateway.uploader")

READ_BLOCK = 1 << 20  # files are read, compressed and hashed a block at a time

_ASCII_RE = re.compile(r"[^ -~]")


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


def batch_size(data_dir: str, relpath: str) -> int:
    """The batch's bytes (0 when it is gone): how much work its steps read."""
    return _size(_store(data_dir).batch_path(relpath))


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


# -- validate ----------------------------------------------------------------------------


def validate(data_dir: str, relpath: str, *, trust_seal: bool = True) -> Validated:
    """Check a sealed batch: header, rows, seq contiguous, name matching content.

    A batch with a seal record that agrees with its name and size takes the record's word for
    its rows (``gateway/core/seal.py``), to be confirmed by its SHA-256 in :func:`process`.
    """
    path = _store(data_dir).batch_path(relpath)
    try:
        name = parse_relative_path(relpath)
        sealed = read_seal(path) if trust_seal else None
        if sealed is not None:
            check = sealed.as_check()
            size = os.stat(path).st_size
            doubt = check_against_name(name, check, size)
            if doubt is None:
                manifest = build_manifest(name, check, size)
                return Validated(relpath, BatchStatus.VALID, manifest, sealed_sha256=sealed.sha256)
            _log_seal_doubt(relpath, f"against its seal record: {doubt}")  # then read the rows
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            check = quick_check_blocks(iter(lambda: file.read(READ_BLOCK), b""), name.first_seq)
        if check is None or check.good_bytes != size:  # something is wrong: say what
            data = path.read_bytes()
            size = len(data)
            check = check_batch(data, name.first_seq)
    except FileNotFoundError:
        return Validated(relpath, BatchStatus.MISSING)
    except BadName as error:
        return Validated(relpath, BatchStatus.INVALID, problem=str(error))
    problem = check_against_name(name, check, size)
    if problem:
        return Validated(relpath, BatchStatus.INVALID, problem=problem)
    return Validated(relpath, BatchStatus.VALID, manifest=build_manifest(name, check, size))


# -- process -----------------------------------------------------------------------------


def process(
    destination: Destination, validated: Validated, copies: CompressedCopies | None = None
) -> Processed | None:
    """Compress (or not) and checksum a validated batch; None when the batch is gone.

    With ``copies`` (Dask's workers share this process's memory), a small batch's compressed
    copy is kept there for Upload instead of written to the workspace (``copies.py``).

    What it gives is kept in the chunk's ``processed.json``, not per batch: a chunk that
    crashed before that output exists is processed again, into the same bytes (gzip with no
    name and time 0), so the retried upload finds its object there already. A record per batch
    would save that work after a crash only, and cost a file created and removed per batch
    (measured: 3 % of the daemon's time on 1,000 x 64 KiB batches; creating a file is the
    dearest thing the uploader does to a disk, on an SD card too)."""
    if validated.status is BatchStatus.MISSING:
        return None
    space = workspace(destination.data_dir)
    source = space.data_dir.batch_path(validated.batch)
    if not source.exists():
        return None
    compressed = space.compressed_path(validated.batch)
    processed = _make_object(destination, validated, source, compressed, copies)
    if validated.sealed_sha256 not in (None, processed.csv_sha256):
        _log_seal_doubt(
            validated.batch, f"SHA-256 {processed.csv_sha256}, sealed as {validated.sealed_sha256}"
        )
        revalidated = validate(destination.data_dir, validated.batch, trust_seal=False)
        if revalidated.status is BatchStatus.MISSING:
            return None
        processed = _make_object(destination, revalidated, source, compressed, copies)
    return processed


def _log_seal_doubt(relpath: str, found: str) -> None:
    log_event(
        log,
        logging.WARNING,
        "batch_differs_from_seal",
        batch=relpath,
        found=found,
        hint="its bytes changed after the reader sealed it (a failing SD card?): "
        "validated row by row instead; check the card (fsck, dmesg)",
    )


def _make_object(
    destination: Destination,
    validated: Validated,
    source: Path,
    compressed: Path,
    copies: CompressedCopies | None,
) -> Processed:
    """The object a batch becomes: a valid one gzipped if so configured, an invalid one as it
    is under the quarantine prefix, with its key, metadata and digests."""
    valid = validated.status is BatchStatus.VALID
    gzipped = valid and destination.compression == "gzip"
    if gzipped:
        csv_sha256, digest = _gzip_file(
            source, compressed, destination.gzip_level, destination.part_bytes, copies
        )
        upload_path = compressed
    else:
        upload_path = source
        digest = _digest_file(source, destination.part_bytes)
        csv_sha256 = digest.sha256_hex
    if valid:
        prefix = destination.prefix
        metadata = object_metadata(validated.manifest.as_dict(), csv_sha256)
        metadata["clock"] = _clock_of(destination.data_dir, validated.manifest)
    else:
        prefix = quarantine_prefix(destination.prefix)
        metadata = {"reason": _ascii(validated.problem)}
    name = parse_relative_path(validated.batch)
    return Processed(
        validated=validated,
        key=object_key(prefix, destination.gateway_id, name, gzip=gzipped),
        upload_path=str(upload_path),
        content_type="application/gzip" if gzipped else "text/csv",
        metadata=metadata,
        csv_sha256=csv_sha256,
        part_bytes=destination.part_bytes,
        digest=digest,
    )


def _clock_of(data_dir: str, manifest: Manifest) -> str:
    """The batch's clock state for its object's metadata, from the reader's ledgers."""
    store = _store(data_dir)
    versions = (_version(store.runs_file), _version(store.clock_steps_file))
    history, seen = _clock_ledgers(data_dir, versions)
    return batch_clock(manifest.first_seq, manifest.earliest, history, seen)


def _version(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _clock_ledgers(data_dir: str, versions: tuple) -> tuple[list[RunClock], list[StepSeen]]:
    """The reader's runs and clock steps, read once per version of the two files (they only
    grow, and rarely) instead of once per batch."""
    store = _store(data_dir)
    history = [RunClock(r.at, r.pid, r.first_seq, r.clock_synced) for r in runs(store)]
    seen = [StepSeen(s.at, s.step_seconds, s.synced, s.pid) for s in clock_steps(store)]
    return history, seen


def _digest_file(path: Path, part_bytes: int) -> ObjectDigest:
    """Per-part SHA-256 and MD5 plus the whole SHA-256 of a file, read block by block."""
    hasher = ObjectHasher(part_bytes)
    with open(path, "rb") as file:
        while block := file.read(READ_BLOCK):
            hasher.update(block)
    return hasher.digest()


def _gzip_file(
    source: Path, target: Path, level: int, part_bytes: int, copies: CompressedCopies | None
) -> tuple[str, ObjectDigest]:
    """gzip ``source`` into ``target`` (no name, time 0: the same bytes every time); return
    the SHA-256 of ``source`` and the digest of ``target``, both hashed on the way through
    (one read of the batch, no read of the copy). A batch no bigger than ``copies`` keeps in
    memory is compressed in one piece and kept there when they take it."""
    csv_sha256 = hashlib.sha256()
    hasher = ObjectHasher(part_bytes)
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: a gzip wrapper
    if copies is not None and _size(source) <= copies.most_bytes:
        data = source.read_bytes()
        csv_sha256.update(data)
        body = compressor.compress(data) + compressor.flush()
        hasher.update(body)
        if not copies.keep(str(target), body):
            make_dirs(target.parent)
            write_atomic(target, body, durable=False)  # see forget_after_reboot
        return csv_sha256.hexdigest(), hasher.digest()
    make_dirs(target.parent)
    part = target.with_name(target.name + ".part")
    with open(source, "rb") as file, open(part, "wb") as out:
        while block := file.read(READ_BLOCK):
            csv_sha256.update(block)
            compressed = compressor.compress(block)
            hasher.update(compressed)
            out.write(compressed)
        compressed = compressor.flush()
        hasher.update(compressed)
        out.write(compressed)
    os.replace(part, target)  # not fsynced: see forget_after_reboot
    return csv_sha256.hexdigest(), hasher.digest()


def _ascii(text: str, limit: int = 1024) -> str:
    return _ASCII_RE.sub("?", text)[:limit]


def forget_processed(data_dir: str, relpath: str) -> None:
    """Drop a batch's compressed copy (after its mark, or when the store got other bytes)."""
    workspace(data_dir).forget_processed(relpath)


# -- upload ------------------------------------------------------------------------------


def upload(runtime: TaskRuntime, data_dir: str, processed: list[Processed]) -> list[UploadOutcome]:
    """Upload every processed batch; stop starting new ones once a stop is requested.

    Every object is created only if its key is free: by ``If-None-Match: *`` where the store
    honours it, else by a HEAD first (the one uploader per data dir, held by its pid file, is
    the only writer of its keys). When the key is taken, the object there is compared with the
    one meant (EXISTS when it is this batch, FAILED when it is not); nothing is overwritten.
    """
    outcomes = []
    to_send = []
    for entry in processed:
        if runtime.stop.is_set():
            outcomes.append(UploadOutcome(entry.batch, entry.key, UploadResult.NOT_STARTED))
        else:
            to_send.append(entry)
    looked_up = _heads_before_write(runtime, to_send)
    running = []
    for entry in to_send:
        copy = runtime.copies.take(entry.upload_path)  # taken, so that none is left behind
        if entry.batch in looked_up:
            found, error = looked_up[entry.batch]
            if error:
                outcomes.append(_failed(runtime, data_dir, entry, error))
                continue
            if found is not None:
                outcomes.append(_compare_existing(runtime, data_dir, entry, found))
                continue
        future = s3.start_upload(
            runtime.uploads,
            runtime.bucket,
            entry.key,
            entry.upload_path if copy is None else copy,
            entry.part_bytes,
            entry.metadata,
            entry.content_type,
            # one PUT: the checksum made in Process goes as it is (the store checks it)
            checksum_sha256=entry.digest.checksum_sha256 if entry.digest.parts == 0 else None,
        )
        running.append((entry, future))
    for entry, future in running:
        outcomes.append(_finish_upload(runtime, data_dir, entry, future))
    return outcomes


def _heads_before_write(
    runtime: TaskRuntime, entries: list[Processed]
) -> dict[str, tuple[dict | None, str | None]]:
    """HEAD each key the store may write over (it ignores ``If-None-Match``), by batch."""
    checked = [e for e in entries if runtime.policy.check_before_write(e.digest.parts > 0)]
    if not checked:
        return {}
    with ThreadPoolExecutor(runtime.uploads.threads) as pool:
        heads = pool.map(lambda entry: _head_or_error(runtime, entry.key), checked)
        return {entry.batch: found for entry, found in zip(checked, heads, strict=True)}


def _finish_upload(
    runtime: TaskRuntime, data_dir: str, entry: Processed, future: Future
) -> UploadOutcome:
    try:
        found = future.result()
    except Exception as error:  # noqa: BLE001 (every failure is reported and retried later)
        if s3.is_precondition_failed(error):
            return _compare_existing(runtime, data_dir, entry)
        if s3.is_bad_digest(error):
            forget_processed(data_dir, entry.batch)
        return _failed(runtime, data_dir, entry, s3.describe(error, runtime.bucket))
    runtime.emit(Sent(data_dir, entry.batch, entry.digest.size))
    return UploadOutcome(entry.batch, entry.key, UploadResult.CREATED, head=found)


def _compare_existing(
    runtime: TaskRuntime, data_dir: str, entry: Processed, existing: dict | None = None
) -> UploadOutcome:
    """The key is taken (a 412, or the HEAD before writing found it): EXISTS when the object
    is this batch, FAILED when it is not (or cannot be told)."""
    try:
        if existing is None:
            existing = s3.head(runtime.client, runtime.bucket, entry.key)
            if existing is None:  # deleted between our PUT and HEAD: try again later
                return _failed(runtime, data_dir, entry, "object vanished after 412")
        verdict = s3.prove(
            runtime.client, runtime.bucket, entry.key, entry.digest, runtime.policy, existing
        )
    except Exception as error:  # noqa: BLE001
        return _failed(runtime, data_dir, entry, s3.describe(error, runtime.bucket))
    adopted = None
    if isinstance(verdict, Refused):
        adopted = _same_batch_other_bytes(runtime, entry, existing)
        if adopted is None:
            message = f"key is taken by other content, not overwritten: {verdict.problem}"
            return _failed(runtime, data_dir, entry, message)
    runtime.emit(AlreadyThere(data_dir, entry.batch, entry.key))
    return UploadOutcome(entry.batch, entry.key, UploadResult.EXISTS, adopted=adopted)


def _same_batch_other_bytes(
    runtime: TaskRuntime, entry: Processed, existing: dict
) -> ObjectDigest | None:
    """The digest of an existing object that holds this very batch in other bytes (gzipped at
    another level, or by another zlib, before a crash), or None.

    Its metadata must name the batch's SHA-256, and its bytes, fetched and decompressed here,
    must have it: a rare path (after a reboot and a setting change), so a GET is affordable.
    The digest is of the bytes fetched, with the checksum and ETag the store reported for
    them, so that Verify compares the object with what was checked here.
    """
    if existing.get("Metadata", {}).get("csv-sha256") != entry.csv_sha256:
        return None
    try:
        body = runtime.client.get_object(Bucket=runtime.bucket, Key=entry.key)["Body"].read()
        data = gzip.decompress(body) if entry.key.endswith(".gz") else body
    except Exception:  # noqa: BLE001 (unreadable or not gzip: not our batch)
        return None
    if hashlib.sha256(data).hexdigest() != entry.csv_sha256:
        return None
    if len(body) != existing.get("ContentLength"):
        return None
    checksum = existing.get("ChecksumSHA256") or ""
    value, _, parts = checksum.partition("-")
    return ObjectDigest(
        size=len(body),
        parts=int(parts) if parts.isdigit() else _parts_of(existing),
        checksum_sha256=value,
        etag=(existing.get("ETag") or "").strip('"'),
        sha256_hex=hashlib.sha256(body).hexdigest(),
    )


def _parts_of(head: dict) -> int:
    _, _, parts = (head.get("ETag") or "").strip('"').partition("-")
    return int(parts) if parts.isdigit() else 0


def _failed(runtime: TaskRuntime, data_dir: str, entry: Processed, error: str) -> UploadOutcome:
    runtime.emit(Failed(data_dir, entry.batch, entry.key, error))
    return UploadOutcome(entry.batch, entry.key, UploadResult.FAILED, error=error)


# -- verify ------------------------------------------------------------------------------


def verify(
    runtime: TaskRuntime, data_dir: str, processed: list[Processed], outcomes: list[UploadOutcome]
) -> list[Verified]:
    """Prove every object in the store holds the bytes sent: the size and what its HEAD
    reports (SHA-256 checksum, MD5 ETag), or, where the store reports neither, its bytes read
    back (``core/verification.py`` decides which).

    An object that fails is reported (:class:`Failed`) and left out: only what is returned
    may be marked.
    """
    by_batch = {entry.batch: entry for entry in processed}
    in_store = [outcome for outcome in outcomes if outcome.result.in_store]

    def expected_of(outcome: UploadOutcome) -> ObjectDigest:
        entry = by_batch[outcome.batch]
        return entry.digest if outcome.adopted is None else outcome.adopted

    with ThreadPoolExecutor(runtime.uploads.threads) as pool:
        proofs = list(
            pool.map(
                lambda outcome: _prove(runtime, outcome.key, expected_of(outcome), outcome.head),
                in_store,
            )
        )
    verified = []
    for outcome, (proof, etag) in zip(in_store, proofs, strict=True):
        entry = by_batch[outcome.batch]
        if isinstance(proof, str):
            runtime.emit(Failed(data_dir, entry.batch, entry.key, proof))
            continue
        verified.append(
            Verified(entry.batch, entry.key, etag, expected_of(outcome), proof.verified_by)
        )
    return verified


def _prove(
    runtime: TaskRuntime, key: str, expected: ObjectDigest, head_after_put: dict | None = None
) -> tuple[Proven | str, str]:
    """(the proof, the object's ETag), or (why the object is refused, ""): judged on
    ``head_after_put`` (what the upload thread's HEAD reported) when there is one, else on a
    HEAD made now."""
    try:
        found = head_after_put or s3.head(runtime.client, runtime.bucket, key)
        if found is None:
            return "verify refused: HEAD found no object", ""
        verdict = s3.prove(runtime.client, runtime.bucket, key, expected, runtime.policy, found)
    except Exception as error:  # noqa: BLE001
        return s3.describe(error, runtime.bucket), ""
    if isinstance(verdict, Refused):
        return f"verify refused: {verdict.problem}", ""
    return verdict, found.get("ETag", "").strip('"')


def _head_or_error(runtime: TaskRuntime, key: str) -> tuple[dict | None, str | None]:
    try:
        return s3.head(runtime.client, runtime.bucket, key), None
    except Exception as error:  # noqa: BLE001
        return None, s3.describe(error, runtime.bucket)


# -- mark --------------------------------------------------------------------------------


def mark(
    runtime: TaskRuntime, data_dir: str, processed: list[Processed], verified: list[Verified]
) -> list[Marked]:
    """Write a touched mark per verified valid batch; move a verified invalid one to quarantine."""
    by_batch = {entry.batch: entry for entry in processed}
    touched, quarantined = [], []
    for found in verified:
        entry = by_batch[found.batch]
        record = _mark_record(runtime.bucket, entry, found)
        if entry.validated.status is BatchStatus.VALID:
            touched.append((entry, record | {"manifest": entry.validated.manifest.as_dict()}))
        else:
            quarantined.append((entry, record | {"reason": entry.validated.problem}))
    store = _store(data_dir)
    mark_touched(store, [(entry.batch, record) for entry, record in touched])
    for entry, record in quarantined:
        quarantine_batch(store, entry.batch, record)
    for entry, record in touched:
        forget_processed(data_dir, entry.batch)
        runtime.emit(Uploaded(data_dir, entry.batch, entry.key, record["size"]))
    for entry, record in quarantined:
        forget_processed(data_dir, entry.batch)
        runtime.emit(
            Quarantined(data_dir, entry.batch, entry.key, record["size"], record["reason"])
        )
    return [Marked(entry.batch, entry.key, MarkResult.UPLOADED) for entry, _ in touched] + [
        Marked(entry.batch, entry.key, MarkResult.QUARANTINED) for entry, _ in quarantined
    ]


def _mark_record(bucket: str, entry: Processed, found: Verified) -> dict:
    """What a touched mark (or a quarantined batch's reason file) says of its object."""
    return {
        "bucket": bucket,
        "key": entry.key,
        "etag": found.etag,
        "size": found.digest.size,
        "sha256": found.digest.sha256_hex,
        "checksum_sha256": found.digest.checksum_sha256,
        "parts": found.digest.parts,
        "csv_sha256": entry.csv_sha256,
        "verified_by": found.verified_by,
        "verified_at": round(time.time(), 3),
    }
