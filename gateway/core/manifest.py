"""What a batch holds and what its object must look like in S3. No I/O.

Validation turns a :class:`~gateway.core.batchfile.BatchCheck` and the batch's name into a
manifest or a reason to quarantine it. :func:`object_digest` says what S3 should report for
the object sent: size, the SHA-256 checksum S3 keeps (whole object, or "composite" over the
parts of a multipart upload) and the MD5-style ETag; ``core/verification.py`` judges what a
store does report against it.
"""

from __future__ import annotations

import base64
import gc
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import repeat

from gateway.core.batchfile import FIXED_COLUMNS, MAX_SEQ_DIGITS, BatchCheck, header_columns
from gateway.core.csvfields import QUOTED_FIELD_RE
from gateway.core.keys import BatchName, day_of


@dataclass(frozen=True)
class Manifest:
    """What a valid batch holds: the facts an object's metadata and its touched mark carry."""

    batch: str  # relative path under batches/
    first_seq: int
    last_seq: int
    rows: int
    earliest: float
    latest: float
    columns: tuple[str, ...]
    size: int

    def as_dict(self) -> dict:
        return dict(vars(self))  # its fields in order (asdict's deep copy costs 10x)


def object_metadata(manifest: dict, csv_sha256: str) -> dict[str, str]:
    """S3 user metadata (ASCII): lets anyone check an object against the batch without our
    state; ``csv-sha256`` is of the sealed file, i.e. of the object's decompressed bytes."""
    return {
        "first-seq": str(manifest["first_seq"]),
        "last-seq": str(manifest["last_seq"]),
        "rows": str(manifest["rows"]),
        "earliest": f"{manifest['earliest']:.6f}",
        "latest": f"{manifest['latest']:.6f}",
        "csv-bytes": str(manifest["size"]),
        "csv-sha256": csv_sha256,
    }


QUICK_BLOCK = 1 << 20  # rows are checked a block at a time: bounded memory for any size


def quick_check(data: bytes, expected_first_seq: int) -> BatchCheck | None:
    """What :func:`~gateway.core.batchfile.check_batch` says of a batch with nothing wrong, found
    with C-level loops over whole columns (map, zip, join; no Python code per row); None as
    soon as anything is off, and then ``check_batch`` finds the problem and words it.

    Quoted fields (text formats) are removed with one substitution per block first, so the
    comma counts hold; a quote left over is misplaced, and the block is not passed.
    """
    blocks = (data[i : i + QUICK_BLOCK] for i in range(0, len(data), QUICK_BLOCK))
    return quick_check_blocks(blocks, expected_first_seq)


def quick_check_blocks(blocks: Iterable[bytes], expected_first_seq: int) -> BatchCheck | None:
    """:func:`quick_check` over a batch given in pieces (e.g. read from its file)."""
    # Hundreds of thousands of small containers would run the cyclic GC over and over.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _quick_check(blocks, expected_first_seq)
    finally:
        if collecting:
            gc.enable()


def _quick_check(blocks: Iterable[bytes], expected_first_seq: int) -> BatchCheck | None:
    columns: tuple[str, ...] | None = None
    rest_commas = 0
    next_seq, earliest, latest = expected_first_seq, None, None
    size, carry = 0, b""
    for block in blocks:
        size += len(block)
        data = carry + block if carry else block
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        lines = data[:cut]
        try:
            if not lines.isascii():
                lines.decode("utf-8")  # a row is UTF-8 when its block is (rows end in \n)
        except UnicodeDecodeError:
            return None
        if columns is None:
            header, _, lines = lines.partition(b"\n")
            try:
                columns = header_columns(header)
            except ValueError:
                return None
            if columns[:2] != FIXED_COLUMNS or len(columns) < 3:
                return None
            rest_commas = len(columns) - 3
            if not _:
                continue  # the header alone so far
        found = _quick_rows(lines, next_seq, rest_commas)
        if found is None:
            return None
        count, low, high = found
        next_seq += count
        earliest = low if earliest is None else min(earliest, low)
        latest = high if latest is None else max(latest, high)
    if carry or columns is None or next_seq == expected_first_seq:
        return None  # an incomplete last row, no header, or no row
    return BatchCheck(
        columns,
        next_seq - expected_first_seq,
        expected_first_seq,
        next_seq - 1,
        size,
        None,
        earliest,
        latest,
    )


def _quick_rows(block: bytes, first: int, rest_commas: int) -> tuple[int, float, float] | None:
    """(rows, earliest, latest) of rows ``first, first + 1, ...`` or None.

    Each test is one C-level pass over the whole block, never Python code per row: the commas
    of every row at once (``translate``), the seq column against the text it must be, the
    received_at column by its characters; only received_at is parsed per row (map(float)).
    """
    if b'"' in block:
        block = QUOTED_FIELD_RE.sub(b"", block)
        if b'"' in block:
            return None
    count = block.count(b"\n") + 1
    last = first + count - 1
    if last >= _SEQ_LIMIT:
        return None
    # Every row holds seq, received_at and exactly the header's other fields.
    commas = b"," * (rest_commas + 2) + b"\n"
    if block.translate(None, _NOT_COMMA_OR_NEWLINE) != (commas * count)[:-1]:
        return None
    rows = block.split(b"\n")
    split = map(bytes.split, rows, repeat(b",", count), repeat(2, count))
    seq_texts, time_texts, _ = zip(*split, strict=True)
    # Row i's seq is first + i written plainly (leading zeros go the slow way: check_batch).
    if b",".join(seq_texts) != (("%d," * count)[:-1] % tuple(range(first, last + 1))).encode():
        return None
    if not _plain_decimals(b",".join(time_texts)):
        return None
    times = list(map(float, time_texts))
    return count, min(times), max(times)


_SEQ_LIMIT = 10**MAX_SEQ_DIGITS  # a seq has at most MAX_SEQ_DIGITS digits
_NOT_COMMA_OR_NEWLINE = bytes(b for b in range(256) if b not in b",\n")
_DIGITS = b"0123456789"


def _plain_decimals(joined: bytes) -> bool:
    """Whether every comma-separated field of ``joined`` is digits with at most one decimal
    point between digits (``\\d+(?:\\.\\d+)?``), checked with whole-buffer scans."""
    return (
        joined != b""
        and joined.translate(None, _DIGITS + b".,") == b""  # only digits, points and commas
        and b".." not in joined.translate(None, _DIGITS)  # at most one point per field
        and not joined.startswith((b",", b"."))
        and not joined.endswith((b",", b"."))
        and b",," not in joined  # no empty field
        and b",." not in joined  # a point between digits
        and b".," not in joined
    )


def check_against_name(name: BatchName, check: BatchCheck, size: int) -> str | None:
    """Why a sealed batch's bytes do not match its name, or None when they do."""
    if check.problem is not None:
        return check.problem
    if check.rows == 0:
        return "no rows after the header"
    if check.good_bytes != size:
        return f"{size - check.good_bytes} bytes after the last good row"
    if (check.first_seq, check.last_seq) != (name.first_seq, name.last_seq):
        return (
            f"rows hold seq {check.first_seq}-{check.last_seq} "
            f"but the name says {name.first_seq}-{name.last_seq}"
        )
    if check.rows != name.rows:
        return f"{check.rows} rows but the name says {name.rows}"
    if not day_of(check.earliest) <= name.day <= day_of(check.latest):
        return (
            f"rows were received {day_of(check.earliest)}..{day_of(check.latest)} "
            f"but the batch is in the folder of {name.day}"
        )
    return None


def build_manifest(name: BatchName, check: BatchCheck, size: int) -> Manifest:
    return Manifest(
        batch=name.relative_path,
        first_seq=check.first_seq,
        last_seq=check.last_seq,
        rows=check.rows,
        earliest=check.earliest,
        latest=check.latest,
        columns=tuple(check.columns),
        size=size,
    )


# -- checksums ---------------------------------------------------------------------------


def part_sizes(size: int, multipart_bytes: int) -> list[int]:
    """How s3transfer splits an object: one PUT below the threshold, else equal parts.

    The threshold and the part size are the same setting, so an object of exactly
    ``multipart_bytes`` goes up as one part of a multipart upload.
    """
    if size < multipart_bytes:
        return [size]
    full, rest = divmod(size, multipart_bytes)
    return [multipart_bytes] * full + ([rest] if rest else [])


@dataclass(frozen=True)
class ObjectDigest:
    """What S3 should report for an object: size, SHA-256 checksum and MD5-style ETag."""

    size: int
    parts: int  # 0 for a single PUT, else the number of multipart parts
    checksum_sha256: str  # base64; composite (over part digests) when parts > 0
    etag: str  # hex MD5, with "-N" for multipart
    sha256_hex: str  # of the whole object, for people and tools

    def as_dict(self) -> dict:
        return dict(vars(self))  # its fields in order (asdict's deep copy costs 10x)


def object_digest(
    size: int,
    part_sha256: list[bytes],
    part_md5: list[bytes],
    whole_sha256: bytes,
    *,
    multipart: bool,
) -> ObjectDigest:
    """Combine per-part digests the way S3 does (:func:`part_sizes` says which parts)."""
    if len(part_sha256) != len(part_md5) or not part_sha256:
        raise ValueError("need one SHA-256 and one MD5 per part")
    if not multipart:
        return ObjectDigest(size, 0, _b64(whole_sha256), part_md5[0].hex(), whole_sha256.hex())
    composite = hashlib.sha256(b"".join(part_sha256)).digest()
    etag = hashlib.md5(b"".join(part_md5)).hexdigest() + f"-{len(part_md5)}"
    return ObjectDigest(size, len(part_sha256), _b64(composite), etag, whole_sha256.hex())


class ObjectHasher:
    """The :class:`ObjectDigest` of bytes fed in pieces of any size, as they are written: the
    whole SHA-256 and each part's SHA-256 and MD5 (parts of ``part_bytes``, as
    :func:`part_sizes` cuts them), in one pass and without holding the object."""

    def __init__(self, part_bytes: int) -> None:
        self.part_bytes = part_bytes
        self.size = 0
        self._whole = hashlib.sha256()
        self._part_sha, self._part_md5, self._part_left = (
            hashlib.sha256(),
            hashlib.md5(),
            part_bytes,
        )
        self._sha: list[bytes] = []
        self._md5: list[bytes] = []

    def update(self, data: bytes) -> None:
        self._whole.update(data)
        self.size += len(data)
        view = memoryview(data)
        while len(view) > 0:
            piece, view = view[: self._part_left], view[self._part_left :]
            self._part_sha.update(piece)
            self._part_md5.update(piece)
            self._part_left -= len(piece)
            if self._part_left == 0:
                self._end_part()

    def _end_part(self) -> None:
        self._sha.append(self._part_sha.digest())
        self._md5.append(self._part_md5.digest())
        self._part_sha, self._part_md5, self._part_left = (
            hashlib.sha256(),
            hashlib.md5(),
            self.part_bytes,
        )

    def digest(self) -> ObjectDigest:
        """What S3 should report once every byte was fed."""
        if self._part_left < self.part_bytes or not self._sha:  # a last, shorter part
            self._end_part()
        return object_digest(
            self.size,
            self._sha,
            self._md5,
            self._whole.digest(),
            multipart=self.size >= self.part_bytes,
        )


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()
