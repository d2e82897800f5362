"""The S3 shell: a boto3 client, s3transfer uploads that never overwrite, HEAD, proof, error
text.

Every object is created with ``If-None-Match: *`` (a PUT, or the CompleteMultipartUpload of
a multipart upload) unless the store rejects the header, so a retry cannot replace an object
where the store honours it: S3 answers 412 when the key is taken, and the caller then compares
the existing object with what it meant to send (where the store ignores the header, the caller
HEADs before it writes: :meth:`VerifyPolicy.check_before_write`). s3transfer does not pass
``IfNoneMatch`` through its upload arguments, so a botocore event handler adds it to exactly
those two operations of the uploader's client.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import boto3
import botocore.loaders
import botocore.session
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from s3transfer.manager import TransferManager

from gateway.core.manifest import ObjectDigest
from gateway.core.verification import (
    Proven,
    ReadBack,
    Refused,
    VerifyPolicy,
    judge_head,
    judge_read,
)
from gateway.settings import Settings

# S3 error codes that say the credentials are the problem, with what to do about it.
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId": "the access key is unknown to the store: check AWS_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": "the secret key is wrong: check AWS_SECRET_ACCESS_KEY",
    "ExpiredToken": "the session token has expired: renew the credentials",
    "TokenRefreshRequired": "the session token has expired: renew the credentials",
    "AccessDenied": "access denied: the credentials may not write this bucket or prefix",
}


READ_BLOCK = 1 << 20  # an object read back is hashed a block at a time

#: A request body up to this size goes without ``Expect: 100-continue`` (:func:`_no_wait`).
NO_WAIT_BODY_BYTES = 1 << 20


def _if_none_match(params, **_):
    params.setdefault("IfNoneMatch", "*")


def _no_wait(request, **_):
    """botocore asks for ``Expect: 100-continue`` on every PUT with a body (a part, an
    object) and waits for the store's go-ahead before it sends the body: a round trip more,
    worth it where sending a big body in vain would cost more than the wait. A small body just
    goes (a store that refuses it still answers, and botocore retries with it)."""
    if "Expect" not in request.headers:
        return
    length = request.headers.get("Content-Length")
    if length is not None and int(length) <= NO_WAIT_BODY_BYTES:
        del request.headers["Expect"]


_models_lock = threading.Lock()
_models = None  # botocore's data loader, shared by every client of this process

#: The services whose entries of botocore's endpoint table the uploader keeps: S3, and STS for
#: credentials that assume a role. Any other service still resolves, by its partition's defaults.
ENDPOINT_SERVICES = frozenset({"s3", "sts"})


class _S3Loader(botocore.loaders.Loader):
    """botocore's loader, keeping of ``endpoints.json`` (every AWS service in every partition,
    6.7 MiB once parsed) only the entries of :data:`ENDPOINT_SERVICES`. Clients take their
    endpoints from each service's own rule set; the table gives only defaults. Measured: a
    client 4.3 MiB smaller."""

    def load_data_with_path(self, name):
        data, path = super().load_data_with_path(name)  # cached: trimmed once, in place
        if name == "endpoints":
            for partition in data.get("partitions", ()):
                services = partition.get("services", {})
                for service in [s for s in services if s not in ENDPOINT_SERVICES]:
                    del services[service]
        return data, path


def _new_session() -> boto3.session.Session:
    """A new session, so that credentials are looked up again (a SIGHUP's new AWS_* values
    reach the next client), sharing one loader of botocore's service models: each loader
    parses S3's model anew, about 12 MiB of memory per client that is never given back."""
    global _models
    botocore_session = botocore.session.Session()
    with _models_lock:
        if _models is None:
            _models = botocore_session.get_component("data_loader")
            _models.__class__ = _S3Loader
        botocore_session.register_component("data_loader", _models)
    return boto3.session.Session(botocore_session=botocore_session)


def make_client(
    settings: Settings, creates: VerifyPolicy | None = None, *, check_get_checksums: bool = True
):
    """A thread-safe S3 client for the configured endpoint; AWS_* variables give credentials.

    With ``creates`` (the uploader's), PutObject and CompleteMultipartUpload carry
    ``If-None-Match: *`` wherever the store does not reject the header; without, the client
    adds nothing (listing, the probe). ``check_get_checksums=False``: a GET returns the bytes
    even when they do not match the checksum the store reports (the probe compares them).
    """
    config = Config(
        connect_timeout=settings.s3_timeout_seconds,
        read_timeout=settings.s3_timeout_seconds,
        # A few quick retries inside botocore; the uploader's own capped backoff does the rest.
        retries={"mode": "standard", "max_attempts": 3},
        # Every thread that may hold a request at once keeps its connection: the transfer
        # manager's threads and each pipeline's Verify (HEAD) threads, plus a few for the rest.
        # A smaller pool discards connections and opens a new one per request.
        max_pool_connections=settings.upload_threads * (settings.upload_pipelines + 1) + 4,
        s3={"addressing_style": "path"} if settings.s3_endpoint_url else {},
        response_checksum_validation="when_supported" if check_get_checksums else "when_required",
    )
    client = _new_session().client(
        "s3", endpoint_url=settings.s3_endpoint_url or None, config=config
    )
    client.meta.events.register("before-send.s3", _no_wait)
    if creates is not None:
        for operation, multipart in (("PutObject", False), ("CompleteMultipartUpload", True)):
            if creates.send_if_none_match(multipart):
                event = f"before-parameter-build.s3.{operation}"
                client.meta.events.register(event, _if_none_match)
    return client


@dataclass
class Uploads:
    """One transfer manager per part size (Process fixes each object's part size)."""

    client: object
    threads: int

    def __post_init__(self) -> None:
        self._managers: dict[int, TransferManager] = {}
        self._lock = threading.Lock()
        # Objects that go up in one PUT: a plain PutObject from these threads (s3transfer's
        # futures, callbacks and chunk reader cost a third more CPU per small object than the
        # request itself, measured against moto).
        self._puts = ThreadPoolExecutor(self.threads, thread_name_prefix="put")

    def put(self, source: str | bytes, **request) -> Future:
        """``client.put_object(Body=<source>, **request)`` in one of the upload threads (the
        file at ``source``, or the bytes themselves), then a HEAD of the object by the same
        thread: the future's result is what the HEAD reported for Verify (:func:`head_facts`),
        or None when the HEAD failed (Verify asks again and reports). A PUT's error is the
        future's exception."""
        return self._puts.submit(_put_then_head, self.client, source, request)

    def manager(self, part_bytes: int) -> TransferManager:
        with self._lock:
            if part_bytes not in self._managers:
                config = TransferConfig(
                    multipart_threshold=part_bytes,
                    multipart_chunksize=part_bytes,
                    max_concurrency=self.threads,
                    use_threads=True,
                )
                # Parts read ahead into memory: one per thread, not s3transfer's ten.
                config.max_in_memory_upload_chunks = self.threads
                self._managers[part_bytes] = TransferManager(self.client, config)
            return self._managers[part_bytes]

    def close(self) -> None:
        self._puts.shutdown()
        with self._lock:
            for manager in self._managers.values():
                manager.shutdown()
            self._managers.clear()


def start_upload(
    uploads: Uploads, bucket, key, source, part_bytes, metadata, content_type, checksum_sha256=None
):
    """Start one conditional-create upload of ``source`` (a file's path, or the object's
    bytes); ``.result()`` on the returned future waits, and gives what a HEAD right after the
    PUT reported (:meth:`Uploads.put`) for an object that goes up in one PUT, None otherwise.

    ``checksum_sha256`` (base64, of the whole file; only for an object that goes up in one
    PUT): the checksum Process already computed, sent as it is, so botocore does not read and
    hash the file again; the store still checks the bytes it receives against it. Such an
    object goes up as one PutObject; without it s3transfer uploads the file (in parts from
    ``part_bytes``) and botocore computes the checksum of each request's body.
    """
    extra = {"ChecksumAlgorithm": "SHA256", "Metadata": metadata, "ContentType": content_type}
    if checksum_sha256:
        extra["ChecksumSHA256"] = checksum_sha256
    if checksum_sha256 or isinstance(source, bytes):
        return uploads.put(source, Bucket=bucket, Key=key, **extra)
    return uploads.manager(part_bytes).upload(str(source), bucket, key, extra_args=extra)


def _put_then_head(client, source: str | bytes, request: dict) -> dict | None:
    """PutObject of ``source`` (:func:`_put_file`), then the HEAD Verify needs, with no wait
    between: Verify would otherwise start its HEADs only once the whole chunk is up (measured
    on 1,000 x 64 KiB batches against moto: the daemon 4-5 % faster; on a real link each
    HEAD's round trip overlaps the next PUT)."""
    _put_file(client, source, request)
    try:
        found = head(client, request["Bucket"], request["Key"])
    except (BotoCoreError, ClientError):
        return None
    return None if found is None else head_facts(found)


def _put_file(client, source: str | bytes, request: dict):
    """PutObject with the file at ``source`` as the body (botocore rewinds it to retry), or
    with ``source`` itself when it is bytes."""
    if isinstance(source, bytes):
        return client.put_object(Body=source, **request)
    with open(source, "rb") as body:
        return client.put_object(Body=body, **request)


#: What a HEAD reports that Verify judges (``core/verification.py``): all of it JSON.
HEAD_FACTS = ("ContentLength", "ChecksumSHA256", "ETag")


def head_facts(found: dict) -> dict:
    """Of a HEAD's answer, what Verify judges (:data:`HEAD_FACTS`), as plain JSON values."""
    return {name: found[name] for name in HEAD_FACTS if name in found}


def head(client, bucket: str, key: str) -> dict | None:
    """HEAD with checksums; None when there is no such object."""
    try:
        return client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as error:
        if error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def read_digest(client, bucket: str, key: str) -> tuple[int, str]:
    """The size and SHA-256 (hex) of an object's bytes, read back with a GET."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    sha, size = hashlib.sha256(), 0
    while block := body.read(READ_BLOCK):
        sha.update(block)
        size += len(block)
    return size, sha.hexdigest()


def prove(
    client, bucket: str, key: str, expected: ObjectDigest, policy: VerifyPolicy, found=None
) -> Proven | Refused:
    """Whether the object at ``key`` holds the bytes ``expected`` describes: what its HEAD
    proves (``found``, when the caller has one), else what its bytes read back prove. S3
    errors are raised for the caller to describe."""
    head_found = head(client, bucket, key) if found is None else found
    if head_found is None:
        return Refused("HEAD found no object")
    match judge_head(policy, expected, head_found):
        case ReadBack():
            return judge_read(expected, *read_digest(client, bucket, key))
        case verdict:
            return verdict


def error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def is_precondition_failed(error: Exception) -> bool:
    return error_code(error) in ("PreconditionFailed", "412")


def is_bad_digest(error: Exception) -> bool:
    """The store received bytes other than those checksummed: the local copy may be bad."""
    return error_code(error) in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch")


def describe(error: BaseException, bucket: str) -> str:
    """One line an operator can act on, with the store's own code."""
    code = error_code(error)
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile)"
    if code in _CREDENTIAL_CODES:
        return f"{code}: {_CREDENTIAL_CODES[code]}"
    if code == "NoSuchBucket":
        return f"NoSuchBucket: bucket {bucket!r} does not exist (GATEWAY_S3_BUCKET)"
    if code in ("SlowDown", "503", "ServiceUnavailable"):
        return f"{code}: the store asks to slow down; backing off"
    if isinstance(error, ClientError):
        message = error.response.get("Error", {}).get("Message", "")
        return f"{code or 'error'}: {message}".strip()
    if isinstance(error, BotoCoreError):
        return f"{type(error).__name__}: {error}"
    return f"{type(error).__name__}: {error}"
