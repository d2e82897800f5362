"""What the store supports, found once per uploader start (and settings reload) by trying it.

The probe writes one small object under a key of its own (``core/keys.py`` ``probe_key``),
HEADs and reads it back, writes over it with ``If-None-Match: *``, completes a one-part multipart
upload over it with the same header, completes one without it and HEADs that, asks for the
bucket's versioning, then deletes every version it made. ``core/verification.py`` judges what
it saw; this module only makes the requests.

It needs what uploads need (s3:PutObject, s3:GetObject, s3:AbortMultipartUpload) and, to leave
nothing behind, s3:DeleteObject (s3:DeleteObjectVersion on a versioned bucket); without them
the probe object stays, and the report says so.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass

from gateway.core.keys import probe_key
from gateway.core.manifest import ObjectDigest, object_digest
from gateway.core.verification import (
    CreateCondition,
    ProbedObject,
    ProbeFindings,
    StoreCapabilities,
    capabilities_from_probe,
    create_condition,
)
from gateway.settings import Settings
from gateway.uploader import s3


class ProbeFailed(Exception):
    """The store could not be probed (no credentials, no bucket, no write permission, no
    answer); ``str()`` says why in the words of :func:`s3.describe`."""


@dataclass(frozen=True)
class StoreReport:
    """The capabilities, and what the probe left in the bucket."""

    capabilities: StoreCapabilities
    probe_key: str
    probe_removed: bool  # False: no delete permission; the probe object stays

    def as_dict(self) -> dict:
        return self.capabilities.as_dict() | {
            "probe_key": self.probe_key,
            "probe_removed": self.probe_removed,
        }


def probe_token() -> str:
    """A new name per probe: the time and the process, so two probes never share a key."""
    return f"{time.time_ns()}-{os.getpid()}"


def probe_store(settings: Settings, token: str | None = None) -> StoreReport:
    """Probe ``GATEWAY_S3_BUCKET`` under the gateway's prefix; ProbeFailed if it cannot be."""
    # No If-None-Match of its own; GETs give back what the store holds, checksum or not.
    client = s3.make_client(settings, check_get_checksums=False)
    bucket = settings.s3_bucket
    key = probe_key(settings.s3_prefix, settings.gateway_id, token or probe_token())
    versions: list[str | None] = []
    try:
        try:
            findings = _probe(client, bucket, key, versions)
        except ProbeFailed:
            raise
        except Exception as error:  # noqa: BLE001 (every S3 error is the probe's failure)
            raise ProbeFailed(s3.describe(error, bucket)) from None
    finally:
        removed = _remove(client, bucket, key, versions)
    return StoreReport(capabilities_from_probe(findings), key, removed)


def _digest(body: bytes, *, multipart: bool) -> ObjectDigest:
    sha = hashlib.sha256(body).digest()
    md5 = hashlib.md5(body).digest()
    return object_digest(len(body), [sha], [md5], sha, multipart=multipart)


def _body(label: str, key: str) -> bytes:
    return f"fieldgate store probe ({label}) {key}\n".encode()


def _probe(client, bucket: str, key: str, versions: list) -> ProbeFindings:
    single_body = _body("single PUT", key)
    single = _digest(single_body, multipart=False)
    answer = client.put_object(
        Bucket=bucket,
        Key=key,
        Body=single_body,
        ChecksumAlgorithm="SHA256",  # as the uploads send it
        ChecksumSHA256=single.checksum_sha256,
        ContentType="text/plain",
    )
    versions.append(answer.get("VersionId"))
    single_found = _look(client, bucket, key, single)
    conditional_put = _conditional_put(client, bucket, key, versions)
    conditional_complete = _multipart(client, bucket, key, versions, if_none_match=True)
    multipart_body = _body("multipart", key)
    _multipart(client, bucket, key, versions, if_none_match=False, body=multipart_body)
    return ProbeFindings(
        single=single_found,
        multipart=_look(client, bucket, key, _digest(multipart_body, multipart=True)),
        conditional_put=conditional_put,
        conditional_complete=conditional_complete,
        versioning=_versioning(client, bucket),
    )


def _look(client, bucket: str, key: str, sent: ObjectDigest) -> ProbedObject:
    """HEAD the object just written and read it back."""
    found = s3.head(client, bucket, key) or {}
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception:  # noqa: BLE001 (no s3:GetObject: objects cannot be read back)
        return ProbedObject(sent, found, None)
    return ProbedObject(sent, found, _digest(body, multipart=sent.parts > 0))


def _conditional_put(client, bucket: str, key: str, versions: list) -> CreateCondition:
    try:
        answer = client.put_object(
            Bucket=bucket, Key=key, Body=_body("conditional PUT", key), IfNoneMatch="*"
        )
    except Exception as error:  # noqa: BLE001
        return _condition_or_raise(error)
    versions.append(answer.get("VersionId"))
    return create_condition(None)


def _multipart(
    client, bucket: str, key: str, versions: list, *, if_none_match: bool, body: bytes = b""
) -> CreateCondition:
    """A one-part multipart upload over ``key``, completed with ``If-None-Match: *`` or not;
    what the store did with the header (IGNORED when it was not sent and all went well)."""
    body = body or _body("conditional multipart", key)
    part_sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
    upload_id = upload["UploadId"]
    try:
        part = client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=1,
            Body=body,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=part_sha,
        )
        finished = {"ETag": part["ETag"], "PartNumber": 1}
        if part.get("ChecksumSHA256"):
            finished["ChecksumSHA256"] = part["ChecksumSHA256"]
        condition = {"IfNoneMatch": "*"} if if_none_match else {}
        answer = client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [finished]},
            **condition,
        )
    except Exception as error:  # noqa: BLE001
        _abort(client, bucket, key, upload_id)
        if not if_none_match:
            raise
        return _condition_or_raise(error)
    versions.append(answer.get("VersionId"))
    return create_condition(None)


def _condition_or_raise(error: Exception) -> CreateCondition:
    try:
        return create_condition(s3.error_code(error))
    except ValueError:
        raise error from None


def _abort(client, bucket: str, key: str, upload_id: str) -> None:
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:  # noqa: BLE001 (a lifecycle rule cleans up what cannot be aborted)
        pass


def _versioning(client, bucket: str) -> str | None:
    try:
        return client.get_bucket_versioning(Bucket=bucket).get("Status", "")
    except Exception:  # noqa: BLE001 (no s3:GetBucketVersioning: unknown, not a failure)
        return None


def _remove(client, bucket: str, key: str, versions: list[str | None]) -> bool:
    """Delete every version the probe wrote (or the object, where there are none); whether
    nothing of the probe is left."""
    removed = True
    for version in dict.fromkeys(v for v in versions if v and v != "null"):
        try:
            client.delete_object(Bucket=bucket, Key=key, VersionId=version)
        except Exception:  # noqa: BLE001
            removed = False
    try:
        if s3.head(client, bucket, key) is not None:
            client.delete_object(Bucket=bucket, Key=key)
            removed = removed and s3.head(client, bucket, key) is None
    except Exception:  # noqa: BLE001 (no delete permission: the object stays)
        removed = False
    return removed
