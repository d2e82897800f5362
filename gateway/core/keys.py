"""Names of batches: the file name on disk, its folder, its S3 key, and back. No I/O.

A sealed batch is ``batches/YYYY/MM/DD/<first>-<last>.csv`` where the date is the UTC day of
its first row and ``first``/``last`` are its first and last ``seq``, zero-padded to 12 digits
(more digits when needed) so names sort by ``seq``. The open batch is ``<first>.part`` in the
same folder. In S3 a batch is ``<prefix>/<gateway_id>/YYYY/MM/DD/<first>-<last>.csv[.gz]``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

SEQ_DIGITS = 12
SEALED_SUFFIX = ".csv"
PART_SUFFIX = ".part"
_SEALED_RE = re.compile(r"(\d{12,})-(\d{12,})\.csv")
_PART_RE = re.compile(r"(\d{12,})\.part")
_DAY_RE = re.compile(r"(\d{4})/(\d{2})/(\d{2})")
_KEY_RE = re.compile(
    r"(?:(?P<prefix>.+)/)?(?P<gateway>[^/]+)/(?P<day>\d{4}/\d{2}/\d{2})/"
    r"(?P<first>\d{12,})-(?P<last>\d{12,})\.csv(?P<gz>\.gz)?"
)
_GATEWAY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class BadName(ValueError):
    """A name or key is not one of ours."""


@dataclass(frozen=True, slots=True, order=True)
class BatchName:
    """Which rows a sealed batch holds and the UTC day it was opened."""

    day: dt.date
    first_seq: int
    last_seq: int

    def __post_init__(self) -> None:
        if not 0 <= self.first_seq <= self.last_seq:
            raise BadName(f"seq range {self.first_seq}-{self.last_seq} is not ascending")

    @property
    def rows(self) -> int:
        return self.last_seq - self.first_seq + 1

    @property
    def file_name(self) -> str:
        return f"{self.first_seq:0{SEQ_DIGITS}d}-{self.last_seq:0{SEQ_DIGITS}d}{SEALED_SUFFIX}"

    @property
    def relative_path(self) -> str:
        """Path under the ``batches/`` folder."""
        return f"{day_folder(self.day)}/{self.file_name}"


def check_gateway_id(gateway_id: str) -> str:
    if not _GATEWAY_ID_RE.fullmatch(gateway_id):
        raise BadName(
            f"gateway id {gateway_id!r} must be 1-63 of A-Z a-z 0-9 . _ - "
            "and start with a letter or digit"
        )
    return gateway_id


def day_folder(day: dt.date) -> str:
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def day_of(timestamp: float) -> dt.date:
    """UTC day of a Unix time."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date()


def part_name(first_seq: int) -> str:
    return f"{first_seq:0{SEQ_DIGITS}d}{PART_SUFFIX}"


def parse_part_name(name: str) -> int:
    """First seq of an open batch from its file name."""
    match = _PART_RE.fullmatch(name)
    if not match:
        raise BadName(f"{name!r} is not an open batch name like 000000000000.part")
    return int(match[1])


def parse_day_folder(folder: str) -> dt.date:
    """Inverse of :func:`day_folder`."""
    match = _DAY_RE.fullmatch(folder)
    if not match:
        raise BadName(f"{folder!r} is not a day folder like YYYY/MM/DD")
    try:
        return dt.date(*map(int, match.groups()))
    except ValueError as error:
        raise BadName(f"{folder!r}: {error}") from None


def parse_relative_path(path: str) -> BatchName:
    """Inverse of :attr:`BatchName.relative_path`."""
    folder, _, name = path.rpartition("/")
    name_match = _SEALED_RE.fullmatch(name)
    if not name_match:
        raise BadName(f"{path!r} is not a batch path like YYYY/MM/DD/<first>-<last>.csv")
    return BatchName(parse_day_folder(folder), int(name_match[1]), int(name_match[2]))


QUARANTINE_PREFIX = "quarantine"
PROBE_PREFIX = "probe"


def join_key(*parts: str) -> str:
    """S3 key parts joined by ``/``, each stripped of its slashes, empty parts left out."""
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


def gateway_prefix(prefix: str, gateway_id: str) -> str:
    """Where a gateway's objects are: ``<prefix>/<gateway id>/`` (what to list)."""
    return join_key(prefix, check_gateway_id(gateway_id)) + "/"


def quarantine_prefix(prefix: str) -> str:
    """The prefix under which batches that failed validation are kept."""
    return join_key(prefix, QUARANTINE_PREFIX)


def rejected_lines_key(prefix: str, gateway_id: str, relpath: str) -> str:
    """Where a file of rejected lines goes: ``<prefix>/<gateway>/quarantine/<relpath>.gz``
    (``relpath`` as under the data dir's ``quarantine/``). Batch keys never end so."""
    return f"{gateway_prefix(prefix, gateway_id)}{QUARANTINE_PREFIX}/{relpath.strip('/')}.gz"


def probe_key(prefix: str, gateway_id: str, token: str) -> str:
    """Where the uploader probes what the store supports: ``<prefix>/<gateway>/probe/<token>``
    (a new token per probe, so a probe object left behind never meets the next probe). Batch
    and rejected-line keys never begin so."""
    return f"{gateway_prefix(prefix, gateway_id)}{PROBE_PREFIX}/{token.strip('/')}"


def object_key(prefix: str, gateway_id: str, batch: BatchName, *, gzip: bool) -> str:
    """The S3 key of a batch: deterministic, so a retry lands on the same object."""
    return f"{gateway_prefix(prefix, gateway_id)}{batch.relative_path}{'.gz' if gzip else ''}"


@dataclass(frozen=True, slots=True)
class ObjectKey:
    prefix: str
    gateway_id: str
    batch: BatchName
    gzip: bool


def parse_object_key(key: str) -> ObjectKey:
    """Inverse of :func:`object_key`."""
    match = _KEY_RE.fullmatch(key)
    if not match:
        raise BadName(
            f"{key!r} is not a batch key like [prefix/]gateway/YYYY/MM/DD/<first>-<last>.csv[.gz]"
        )
    batch = parse_relative_path(f"{match['day']}/{match['first']}-{match['last']}.csv")
    return ObjectKey(match["prefix"] or "", match["gateway"], batch, bool(match["gz"]))
