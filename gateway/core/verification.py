"""How an object in S3 is proved to hold the bytes sent, given what the store supports. No I/O.

Stores differ: AWS S3 keeps the SHA-256 checksum a client sends and reports it on HEAD, and its
ETag is the MD5 of a single PUT's bytes (the MD5 of the part MD5s plus ``-N`` for a multipart
upload); many S3-compatible stores report no checksum, some give ETags that are not MD5 at all
(SSE-KMS, SSE-C, stores of their own design), and some ignore ``If-None-Match: *``. The uploader
probes the store once (:func:`capabilities_from_probe` reads what the probe saw), then for every
object asks :func:`judge_head` what a HEAD proves: :class:`Proven`, :class:`Refused`, or
:class:`ReadBack` when only the object's bytes themselves can tell (:func:`judge_read`).

The probe decides what a HEAD can prove: a checksum or ETag counts only on a store whose
checksums or ETags the probe found to describe the bytes it gives back (an ETag that is not an
MD5 says nothing; a checksum kept as the client sent it, unchecked, proves nothing); before a
successful probe, every object is read back. A reported checksum that differs from the one sent
always refuses the object.
"""

from __future__ import annotations

import base64
import enum
import re
from dataclasses import asdict, dataclass

from gateway.core.manifest import ObjectDigest

_MD5_ETAG_RE = re.compile(r'"?([0-9a-f]{32})(?:-(\d+))?"?')


class VerifyMode(enum.Enum):
    """GATEWAY_S3_VERIFY: what Verify relies on."""

    AUTO = "auto"  # what the store reports (checksum, MD5 ETag), else read the object back
    CHECKSUM = "checksum"  # the SHA-256 checksum the store reports; refuse without one
    ETAG = "etag"  # the MD5 ETag; refuse an object whose ETag is not one
    READ = "read"  # always read the object back and hash it


class Method(enum.Enum):
    """What proved an object: the touched mark records it (``verified_by``)."""

    CHECKSUM = "checksum"  # the SHA-256 checksum the store reported
    ETAG = "etag"  # the ETag, an MD5 of the bytes (or of the part MD5s)
    READ = "read"  # the object's bytes, read back and hashed


class CreateCondition(enum.Enum):
    """What a store does with ``If-None-Match: *`` on a create whose key is taken."""

    HONOURED = "honoured"  # 412 Precondition Failed: nothing written
    IGNORED = "ignored"  # the object was replaced: the header means nothing here
    REFUSED = "refused"  # the request was rejected (501, 400): the header must not be sent
    UNKNOWN = "unknown"  # not probed yet


# Error codes with which a store rejects a header it does not implement.
_REJECTED_HEADER_CODES = frozenset(
    {"NotImplemented", "501", "InvalidArgument", "InvalidRequest", "400", "BadRequest"}
)
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "412"})


def create_condition(error_code: str | None) -> CreateCondition:
    """What a conditional create of a taken key answered: None (it succeeded) or its error
    code. Any other error is not an answer about the header: the caller reports it."""
    if error_code is None:
        return CreateCondition.IGNORED
    if error_code in _PRECONDITION_CODES:
        return CreateCondition.HONOURED
    if error_code in _REJECTED_HEADER_CODES:
        return CreateCondition.REFUSED
    raise ValueError(f"not an answer to If-None-Match: {error_code}")


VERSIONING = ("enabled", "suspended", "off", "unknown")


@dataclass(frozen=True)
class StoreCapabilities:
    """What the probe found the store to do (all False or UNKNOWN before a probe)."""

    checksum_sha256: bool = False  # HEAD reports the SHA-256 checksum of a single PUT
    multipart_checksum_sha256: bool = False  # ... and of a multipart object (composite)
    etag_md5: bool = False  # a single PUT's ETag is the MD5 of its bytes
    multipart_etag_md5: bool = False  # a multipart ETag is the MD5 of the part MD5s, "-N"
    conditional_put: CreateCondition = CreateCondition.UNKNOWN
    conditional_complete: CreateCondition = CreateCondition.UNKNOWN
    versioning: str = "unknown"  # one of VERSIONING
    readable: bool = False  # the probe objects could be read back (GET works)
    intact: bool = False  # ... and held exactly the bytes written
    probed: bool = False

    def as_dict(self) -> dict:
        return {
            name: value.value if isinstance(value, enum.Enum) else value
            for name, value in asdict(self).items()
        }


@dataclass(frozen=True)
class ProbedObject:
    """One object the probe wrote: what was sent, what HEAD said, what a GET gave back."""

    sent: ObjectDigest
    head: dict  # HEAD with ChecksumMode=ENABLED
    stored: ObjectDigest | None  # of the bytes a GET returned, same shape; None: no GET

    @property
    def reference(self) -> ObjectDigest:
        """What the store's answers must describe: the bytes it holds, as read back."""
        return self.stored or self.sent

    def checksum_describes_bytes(self) -> bool:
        reported = self.head.get("ChecksumSHA256")
        return bool(reported) and _checksum_problem(self.reference, reported) is None

    def etag_is_md5(self) -> bool:
        reference = self.reference
        return md5_etag(self.head.get("ETag"), parts=reference.parts) == reference.etag

    def intact(self) -> bool:
        stored = self.stored
        return stored is not None and (stored.size, stored.sha256_hex) == (
            self.sent.size,
            self.sent.sha256_hex,
        )


@dataclass(frozen=True)
class ProbeFindings:
    """What the probe saw: one object PUT, HEADed and read back, then written over with
    ``If-None-Match: *``; a one-part multipart upload completed over it with the same header;
    one completed without it (HEADed and read back); the bucket's versioning."""

    single: ProbedObject
    multipart: ProbedObject
    conditional_put: CreateCondition
    conditional_complete: CreateCondition
    versioning: str | None  # GetBucketVersioning's Status ("" when never enabled); None: denied


def capabilities_from_probe(found: ProbeFindings) -> StoreCapabilities:
    """What the store supports. A checksum or ETag counts only where it describes the bytes
    the store gives back: a store that keeps the checksum a client sent without checking it
    (or got other bytes on the way) is not credited with checksums."""
    single, multipart = found.single, found.multipart
    return StoreCapabilities(
        checksum_sha256=single.checksum_describes_bytes(),
        multipart_checksum_sha256=multipart.checksum_describes_bytes(),
        etag_md5=single.etag_is_md5(),
        multipart_etag_md5=multipart.etag_is_md5(),
        conditional_put=found.conditional_put,
        conditional_complete=found.conditional_complete,
        versioning=_versioning(found.versioning),
        readable=single.stored is not None and multipart.stored is not None,
        intact=single.intact() and multipart.intact(),
        probed=True,
    )


def _versioning(status: str | None) -> str:
    if status is None:
        return "unknown"
    return status.lower() if status.lower() in ("enabled", "suspended") else "off"


# -- the policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyPolicy:
    """The store's capabilities with the settings that decide what to trust."""

    capabilities: StoreCapabilities
    mode: VerifyMode = VerifyMode.AUTO
    use_etag: bool = True  # GATEWAY_S3_VERIFY_ETAG: 0 never looks at ETags

    def condition(self, multipart: bool) -> CreateCondition:
        caps = self.capabilities
        return caps.conditional_complete if multipart else caps.conditional_put

    def send_if_none_match(self, multipart: bool) -> bool:
        """Add ``If-None-Match: *`` to the create: everywhere but where the store rejects it."""
        return self.condition(multipart) is not CreateCondition.REFUSED

    def check_before_write(self, multipart: bool) -> bool:
        """HEAD the key before creating it: where the store may write over an object."""
        return self.condition(multipart) is not CreateCondition.HONOURED

    def planned(self, multipart: bool) -> tuple[Method, ...]:
        """How an object of this shape will be verified, as far as the probe can tell."""
        caps = self.capabilities
        checksum = caps.multipart_checksum_sha256 if multipart else caps.checksum_sha256
        etag = self.use_etag and (caps.multipart_etag_md5 if multipart else caps.etag_md5)
        match self.mode:
            case VerifyMode.READ:
                return (Method.READ,) if caps.readable else ()
            case VerifyMode.CHECKSUM:
                return (Method.CHECKSUM,) if checksum else ()
            case VerifyMode.ETAG:
                return (Method.ETAG,) if etag else ()
        methods = ((Method.CHECKSUM,) if checksum else ()) + ((Method.ETAG,) if etag else ())
        return methods or ((Method.READ,) if caps.readable else ())

    def summary(self) -> dict:
        """How objects will be verified, as the log line, the status and ``gateway s3 check``
        say it; ``unverifiable`` is None when they will be."""
        return {
            "verify": self.mode.value,
            "verify_single": methods_text(self.planned(False)),
            "verify_multipart": methods_text(self.planned(True)),
            "check_before_write": self.check_before_write(False) or self.check_before_write(True),
            "unverifiable": self.unverifiable(),
        }

    def unverifiable(self) -> str | None:
        """Why uploads could not be verified with these settings on this store, or None."""
        caps = self.capabilities
        if not caps.probed:
            return "the store has not been probed"
        if caps.readable and not caps.intact:
            return "the probe object read back holds other bytes than were written to it"
        for multipart, shape in ((False, "single PUT"), (True, "multipart")):
            if self.planned(multipart):
                continue
            match self.mode:
                case VerifyMode.CHECKSUM:
                    return (
                        "GATEWAY_S3_VERIFY=checksum but the store reports no SHA-256 checksum "
                        f"({shape} objects)"
                    )
                case VerifyMode.ETAG:
                    return (
                        f"GATEWAY_S3_VERIFY=etag but the store's ETags are not MD5s ({shape} "
                        "objects)"
                    )
                case VerifyMode.READ:
                    return "GATEWAY_S3_VERIFY=read but objects cannot be read back (s3:GetObject)"
                case _:
                    return (
                        "the store reports no checksum or MD5 ETag, and objects cannot be read "
                        "back (s3:GetObject)"
                    )
        return None


# -- judging an object -----------------------------------------------------------------------


@dataclass(frozen=True)
class Proven:
    """The object holds the bytes sent."""

    methods: tuple[Method, ...]

    @property
    def verified_by(self) -> str:
        return methods_text(self.methods)


@dataclass(frozen=True)
class Refused:
    """The object is not the one sent (or, by the settings, cannot be shown to be)."""

    problem: str


@dataclass(frozen=True)
class ReadBack:
    """The HEAD proves nothing either way: read the object and call :func:`judge_read`."""

    reason: str


Verdict = Proven | Refused | ReadBack


def methods_text(methods: tuple[Method, ...]) -> str:
    """``checksum+etag``, ``read``...; ``none`` for no method."""
    return "+".join(method.value for method in methods) or "none"


def md5_etag(etag: str | None, *, parts: int) -> str | None:
    """The ETag as an MD5 (``<hex>`` for a single PUT, ``<hex>-<parts>`` for a multipart
    object), or None when it does not have that form."""
    match = _MD5_ETAG_RE.fullmatch(etag or "")
    if not match or (match[2] is not None) != (parts > 0):
        return None
    return match[1] + (f"-{match[2]}" if match[2] is not None else "")


def whole_checksum(expected: ObjectDigest) -> str:
    """The SHA-256 of the whole object, base64 as S3 writes checksums."""
    return base64.b64encode(bytes.fromhex(expected.sha256_hex)).decode()


def _checksum_problem(expected: ObjectDigest, reported: str) -> str | None:
    """A reported SHA-256 checksum against the one sent. A multipart object's comes back as
    S3's composite (``<base64>-<parts>`` from AWS; some stores omit the suffix), or from some
    stores as the SHA-256 of the whole object: both prove the bytes."""
    value, _, parts = reported.partition("-")
    same_parts = not parts or (parts.isdigit() and int(parts) == expected.parts)
    accepted = {expected.checksum_sha256}
    if expected.parts and not parts:
        accepted.add(whole_checksum(expected))
    if same_parts and value in accepted:
        return None
    return f"object SHA-256 checksum is {reported}, sent {expected.checksum_sha256}"


def judge_head(policy: VerifyPolicy, expected: ObjectDigest, head: dict) -> Verdict:
    """What a HEAD (``ContentLength``, ``ChecksumSHA256``, ``ETag`` as boto3 gives them) proves
    about the object against the digest of the bytes sent.

    A reported checksum that differs from the one sent refuses the object. A checksum or ETag
    that matches proves it only where the probe showed the store's checksums or ETags to
    describe the bytes it holds (or the mode says to rely on them); an ETag of a store whose
    ETags are not MD5s says nothing either way. When nothing proves the object, read it back.
    """
    length = head.get("ContentLength")
    if length != expected.size:
        return Refused(f"object has {length} bytes, sent {expected.size}")
    mode, caps = policy.mode, policy.capabilities
    if mode is VerifyMode.READ:
        return ReadBack("GATEWAY_S3_VERIFY=read")
    multipart = expected.parts > 0
    methods: list[Method] = []
    if mode in (VerifyMode.AUTO, VerifyMode.CHECKSUM):
        reported = head.get("ChecksumSHA256")
        trusted = caps.multipart_checksum_sha256 if multipart else caps.checksum_sha256
        if reported:
            problem = _checksum_problem(expected, reported)
            if problem:
                return Refused(problem)
            if trusted or mode is VerifyMode.CHECKSUM:
                methods.append(Method.CHECKSUM)
        elif mode is VerifyMode.CHECKSUM:
            return Refused("the store reported no SHA-256 checksum for the object")
    if policy.use_etag and mode in (VerifyMode.AUTO, VerifyMode.ETAG):
        etag = md5_etag(head.get("ETag"), parts=expected.parts)
        trusted = caps.multipart_etag_md5 if multipart else caps.etag_md5
        if etag is not None and (trusted or mode is VerifyMode.ETAG):
            if etag != expected.etag:
                return Refused(f"object ETag is {etag}, the bytes sent have {expected.etag}")
            methods.append(Method.ETAG)
        elif mode is VerifyMode.ETAG:
            return Refused(f"the object's ETag {head.get('ETag')} is not an MD5 of its bytes")
    if methods:
        return Proven(tuple(methods))
    return ReadBack("the store reports no SHA-256 checksum or MD5 ETag that proves the object")


def judge_read(expected: ObjectDigest, size: int, sha256_hex: str) -> Proven | Refused:
    """The object's bytes, read back (their size and SHA-256), against the bytes sent."""
    if size != expected.size:
        return Refused(f"object read back has {size} bytes, sent {expected.size}")
    if sha256_hex != expected.sha256_hex:
        return Refused(f"object read back has SHA-256 {sha256_hex}, sent {expected.sha256_hex}")
    return Proven((Method.READ,))
