"""Rejected lines to S3: every sealed segment of the quarantine (and every tail recovery cut
off a batch) becomes one gzipped object under ``<prefix>/<gateway>/quarantine/``, so the
central side has every byte a device sent, not only the rows the reader accepted.

These files are small (a day holds at most half of ``GATEWAY_MAX_QUARANTINE_BYTES``) and need
no validation or Dask work, so they go up in one PUT each beside the batches' Luigi DAG, with
the same guarantees: a conditional create (``If-None-Match: *``), so a retry never overwrites;
a HEAD that must report the bytes sent; then a touched mark beside the file, the only thing
cleanup trusts.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from dataclasses import dataclass

from gateway.core.keys import rejected_lines_key
from gateway.core.manifest import ObjectDigest, object_digest, verify_head
from gateway.store.layout import DataDir
from gateway.store.marks import mark_touched_files
from gateway.store.quarantine import RejectionFile
from gateway.uploader import s3


class RejectedUploadFailed(Exception):
    """One file could not be uploaded and verified; ``str()`` says why, for the log."""


@dataclass(frozen=True, slots=True)
class RejectedUploaded:
    key: str
    size: int
    already_there: bool


def upload_rejected(
    client,
    bucket: str,
    prefix: str,
    gateway_id: str,
    data_dir: DataDir,
    file: RejectionFile,
    *,
    gzip_level: int,
    check_etag: bool,
) -> RejectedUploaded:
    """Upload one file of rejected lines, verify it, mark it touched."""
    key = rejected_lines_key(prefix, gateway_id, file.relpath)
    raw = file.path.read_bytes()
    body = gzip.compress(raw, compresslevel=gzip_level, mtime=0)
    sha = hashlib.sha256(body).digest()
    expected = object_digest(len(body), [sha], [hashlib.md5(body).digest()], sha, multipart=False)
    already = False
    try:
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/gzip",
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(sha).decode(),
            Metadata={
                "kind": "rejected-lines",
                "source": file.relpath,
                "raw-sha256": hashlib.sha256(raw).hexdigest(),
            },
        )
    except Exception as error:  # noqa: BLE001 (described and retried by the caller)
        if not s3.is_precondition_failed(error):
            raise RejectedUploadFailed(s3.describe(error, bucket)) from None
        already = True  # a retry after a crash or a lost answer: the check below decides
    try:
        found = s3.head(client, bucket, key)
    except Exception as error:  # noqa: BLE001
        raise RejectedUploadFailed(s3.describe(error, bucket)) from None
    problem = "HEAD found no object" if found is None else _refusal(expected, found, check_etag)
    if problem:
        if already:
            problem = f"key is taken by other content, not overwritten: {problem}"
        raise RejectedUploadFailed(f"verify refused: {problem}")
    mark_touched_files(
        [(file.path, {"bucket": bucket, "key": key, "size": len(body), "sha256": sha.hex()})]
    )
    return RejectedUploaded(key, len(body), already)


def _refusal(expected: ObjectDigest, head: dict, check_etag: bool) -> str | None:
    return verify_head(expected, head, check_etag=check_etag)
