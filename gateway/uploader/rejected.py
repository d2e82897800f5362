"""Rejected lines to S3: every sealed segment of the quarantine (and every tail recovery cut
off a batch) becomes one gzipped object under ``<prefix>/<gateway>/quarantine/``, so the
central side has every byte a device sent, not only the rows the reader accepted.

These files are small (a day holds at most half of ``GATEWAY_MAX_QUARANTINE_BYTES``) and need
no validation or Dask work, so they go up in one PUT each beside the batches' Luigi DAG, with
the same guarantees: a conditional create (``If-None-Match: *``, or a HEAD first where the store
ignores it), so a retry never overwrites; the same proof as a batch's (what a HEAD reports, or
the bytes read back: ``core/verification.py``); then a touched mark beside the file, the only
thing cleanup trusts.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from dataclasses import dataclass

from gateway.core.keys import rejected_lines_key
from gateway.core.manifest import object_digest
from gateway.core.verification import Refused, VerifyPolicy
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
    policy: VerifyPolicy,
) -> RejectedUploaded:
    """Upload one file of rejected lines, verify it, mark it touched."""
    key = rejected_lines_key(prefix, gateway_id, file.relpath)
    raw = file.path.read_bytes()
    body = gzip.compress(raw, compresslevel=gzip_level, mtime=0)
    sha = hashlib.sha256(body).digest()
    expected = object_digest(len(body), [sha], [hashlib.md5(body).digest()], sha, multipart=False)
    try:
        already = policy.check_before_write(False) and s3.head(client, bucket, key) is not None
        if not already:
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
        verdict = s3.prove(client, bucket, key, expected, policy)
    except Exception as error:  # noqa: BLE001
        raise RejectedUploadFailed(s3.describe(error, bucket)) from None
    if isinstance(verdict, Refused):
        problem = verdict.problem
        if already:
            problem = f"key is taken by other content, not overwritten: {problem}"
        raise RejectedUploadFailed(f"verify refused: {problem}")
    record = {
        "bucket": bucket,
        "key": key,
        "size": len(body),
        "sha256": sha.hex(),
        "verified_by": verdict.verified_by,
    }
    mark_touched_files([(file.path, record)])
    return RejectedUploaded(key, len(body), already)
