"""What each step of the uploader gives the next: one frozen dataclass per step.

Validate gives a :class:`Validated` per batch, Process a :class:`Processed`, Upload an
:class:`UploadOutcome`, Verify a :class:`Verified` per object that passed, Mark a
:class:`Marked`. The Luigi tasks keep them as JSON lists in their outputs, and Process keeps
each batch's :class:`Processed` in the workspace until the batch is marked: ``to_json`` gives
a JSON-ready dict of every field, ``from_json`` reads one back and raises ``ValueError`` for
anything else (such as an output an earlier version left), so its step is done again.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, ClassVar, Self

from gateway.core.manifest import Manifest, ObjectDigest


class BatchStatus(enum.Enum):
    VALID = "valid"  # goes up under the prefix, then is marked touched
    INVALID = "invalid"  # goes up under the quarantine prefix, then moves to quarantine/
    MISSING = "missing"  # gone since the scan: nothing to do


class UploadResult(enum.Enum):
    CREATED = "created"  # this upload created the object
    EXISTS = "exists"  # the object was there already (a retry after a crash or a lost answer)
    FAILED = "failed"  # reported, and tried again in a later cycle
    NOT_STARTED = "not_started"  # a stop was requested first

    @property
    def in_store(self) -> bool:
        return self in (UploadResult.CREATED, UploadResult.EXISTS)


class MarkResult(enum.Enum):
    UPLOADED = "uploaded"  # the batch's touched mark is written
    QUARANTINED = "quarantined"  # the invalid batch was moved to quarantine/


@functools.cache
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(field.name for field in fields(kind))


_AS_THEY_ARE = frozenset({str, int, float, bool, type(None), tuple, list})


def _json_ready(value: Any) -> Any:
    """``value`` as JSON holds it: enums as their values, records as dicts of their fields."""
    if type(value) in _AS_THEY_ARE:  # most values: the per-batch results are many
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return dict(value)
    if is_dataclass(value):
        return {name: _json_ready(getattr(value, name)) for name in _field_names(type(value))}
    return value


def _from_json(kind: type, data: Any, readers: dict[str, Callable[[Any], Any]]):
    """A ``kind`` from a dict of exactly its fields, those in ``readers`` read by them."""
    if not isinstance(data, dict) or data.keys() != set(_field_names(kind)):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"not a {kind.__name__}: {found}, expected {sorted(_field_names(kind))}")
    return kind(**data | {name: read(data[name]) for name, read in readers.items()})


def _optional(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda data: None if data is None else read(data)


def _manifest_from_json(data: Any) -> Manifest:
    return _from_json(Manifest, data, {"columns": tuple})


def _digest_from_json(data: Any) -> ObjectDigest:
    return _from_json(ObjectDigest, data, {})


class StepResult:
    """The base of every step's result: one JSON form each, with every field named."""

    # How from_json reads the fields JSON does not hold as they are (enums, nested records).
    json_readers: ClassVar[dict[str, Callable[[Any], Any]]] = {}

    def to_json(self) -> dict:
        """Every field, enums as their values and nested records as dicts."""
        return _json_ready(self)

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """The result ``to_json`` gave; ValueError for anything else."""
        return _from_json(cls, data, cls.json_readers)


@dataclass(frozen=True)
class Validated(StepResult):
    """A sealed batch checked against its name: a manifest when valid, the problem if not."""

    batch: str  # relative path under batches/
    status: BatchStatus
    manifest: Manifest | None = None
    problem: str | None = None
    # The SHA-256 in the batch's seal record, when the manifest is the record's: the batch
    # must still hash to it (Process checks, as it compresses) or it is validated row by row.
    sealed_sha256: str | None = None

    def __post_init__(self) -> None:
        valid, invalid = self.status is BatchStatus.VALID, self.status is BatchStatus.INVALID
        if (self.manifest is not None) != valid or (self.problem is not None) != invalid:
            raise ValueError(
                f"{self.batch}: a manifest is for valid batches, a problem for invalid ones"
            )

    json_readers = {"status": BatchStatus, "manifest": _optional(_manifest_from_json)}


@dataclass(frozen=True)
class Processed(StepResult):
    """A batch ready to go: its object's key, the file to send and what S3 must report."""

    validated: Validated  # VALID or INVALID
    key: str
    upload_path: str  # the sealed file, or its compressed copy in the workspace
    content_type: str
    metadata: dict[str, str]  # the object's user metadata
    csv_sha256: str  # of the sealed file, i.e. of the object's decompressed bytes
    part_bytes: int
    digest: ObjectDigest

    json_readers = {"validated": Validated.from_json, "digest": _digest_from_json}

    @property
    def batch(self) -> str:
        return self.validated.batch


@dataclass(frozen=True)
class UploadOutcome(StepResult):
    batch: str
    key: str
    result: UploadResult
    adopted: ObjectDigest | None = None  # EXISTS: this very batch in other bytes
    error: str | None = None  # FAILED: why
    # CREATED by one PUT: what the HEAD the upload thread made right after it reported
    # (s3.head_facts), for Verify to judge; None: Verify makes its own HEAD.
    head: dict | None = None

    json_readers = {"result": UploadResult, "adopted": _optional(_digest_from_json)}


@dataclass(frozen=True)
class Verified(StepResult):
    """An object S3 reports exactly as it was sent (objects that fail are reported, not kept)."""

    batch: str
    key: str
    etag: str
    digest: ObjectDigest
    verified_by: str  # checksum, etag, checksum+etag or read (core/verification.py Method)

    json_readers = {"digest": _digest_from_json}


@dataclass(frozen=True)
class Marked(StepResult):
    batch: str
    key: str
    result: MarkResult

    json_readers = {"result": MarkResult}
