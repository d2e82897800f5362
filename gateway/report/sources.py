"""Where a report's batches come from: a data dir, or the bucket through s3fs.

:func:`summarize_source` is the task a Dask worker runs: it reads one batch (a local file or an
S3 object, gunzipped when its key ends in ``.gz``) and hands the bytes to
:func:`gateway.report.batch.summarize_batch`. S3 credentials are not sent with the tasks:
each process finds its own through botocore's usual chain (``AWS_*`` variables, a profile, an
instance role); the endpoint and timeouts travel with them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from gateway.core.keys import BadName, gateway_prefix, join_key, parse_object_key
from gateway.core.records import leading_counter
from gateway.core.report import BatchResult, Rejects
from gateway.settings import Settings
from gateway.store.layout import DataDir
from gateway.store.quarantine import read_rejections, recovered_tail_count
from gateway.store.recovery import sealed_batches


@dataclass(frozen=True)
class S3Location:
    """The bucket and how to reach it: what the uploader's settings say."""

    bucket: str
    prefix: str
    endpoint_url: str = ""
    timeout_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Location:
        return cls(
            settings.s3_bucket,
            settings.s3_prefix,
            settings.s3_endpoint_url,
            settings.s3_timeout_seconds,
        )

    @property
    def head(self) -> str:
        """``bucket/prefix/`` (or ``bucket/``): where the gateways' folders are."""
        return join_key(self.bucket, self.prefix) + "/"

    def url(self, gateway_id: str) -> str:
        return f"s3://{self.bucket}/{gateway_prefix(self.prefix, gateway_id)}"


@dataclass(frozen=True, slots=True)
class BatchSource:
    """One batch to read: ``path`` is a file, or ``bucket/key`` when ``s3`` is set."""

    name: str  # YYYY/MM/DD/<first>-<last>.csv[.gz]
    path: str
    day: dt.date
    first_seq: int
    last_seq: int
    s3: S3Location | None = None


def make_filesystem(location: S3Location):
    """An s3fs file system for ``location`` (s3fs caches one per set of arguments)."""
    import s3fs

    config = {
        "connect_timeout": location.timeout_seconds,
        "read_timeout": location.timeout_seconds,
        "retries": {"mode": "standard", "max_attempts": 3},
    }
    if location.endpoint_url:
        config["s3"] = {"addressing_style": "path"}
    return s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": location.endpoint_url or None}, config_kwargs=config
    )


def _in_range(day: dt.date, since: dt.date | None, until: dt.date | None) -> bool:
    return (since is None or day >= since) and (until is None or day <= until)


def local_batches(
    data_dir: DataDir, since: dt.date | None = None, until: dt.date | None = None
) -> list[BatchSource]:
    """The data dir's sealed batches of the chosen days, in seq order."""
    found = [
        BatchSource(
            batch.name.relative_path,
            str(batch.path),
            batch.name.day,
            batch.name.first_seq,
            batch.name.last_seq,
        )
        for batch in sealed_batches(data_dir)
        if _in_range(batch.name.day, since, until)
    ]
    return sorted(found, key=lambda s: (s.first_seq, s.last_seq, s.name))


def s3_gateways(location: S3Location, fs=None) -> list[str]:
    """The gateway folders under the prefix."""
    fs = fs or make_filesystem(location)
    try:
        entries = fs.ls(location.head.rstrip("/"), detail=True, refresh=True)
    except FileNotFoundError:
        return []
    return sorted(
        entry["name"].rstrip("/").rsplit("/", 1)[-1]
        for entry in entries
        if entry.get("type") == "directory"
    )


def s3_batches(
    location: S3Location,
    gateway_id: str,
    since: dt.date | None = None,
    until: dt.date | None = None,
    fs=None,
) -> tuple[list[BatchSource], int]:
    """The gateway's batch objects of the chosen days, in seq order, and how many objects were
    left out because another object holds the same batch (``.csv`` beside ``.csv.gz``)."""
    fs = fs or make_filesystem(location)
    try:
        folder = f"{location.bucket}/{gateway_prefix(location.prefix, gateway_id)}"
        paths = fs.find(folder, refresh=True)
    except FileNotFoundError:
        paths = []
    found: dict[tuple[int, int], BatchSource] = {}
    duplicates = 0
    for path in sorted(paths):
        key = path.split("/", 1)[1]
        try:
            parsed = parse_object_key(key)
        except BadName:
            continue  # manifests and other objects that are not batches
        if parsed.gateway_id != gateway_id or not _in_range(parsed.batch.day, since, until):
            continue
        seqs = (parsed.batch.first_seq, parsed.batch.last_seq)
        if seqs in found:  # the uploader never writes both; a compression change can
            duplicates += 1
            continue
        name = parsed.batch.relative_path + (".gz" if parsed.gzip else "")
        found[seqs] = BatchSource(name, path, parsed.batch.day, *seqs, location)
    return [found[seqs] for seqs in sorted(found)], duplicates


def read_source(source: BatchSource) -> bytes:
    if source.s3 is None:
        data = Path(source.path).read_bytes()
    else:
        data = make_filesystem(source.s3).cat_file(source.path)
    return gzip.decompress(data) if source.path.endswith(".gz") else data


def summarize_source(source: BatchSource, line_format: str, buckets: int) -> BatchResult:
    """Read one batch and summarize it (the per-batch task). A missing file or an S3 error
    raises: the report would be incomplete. Bytes that are not a batch make an unreadable one."""
    from gateway.report.batch import summarize_batch

    try:
        data = read_source(source)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        return BatchResult(source.name, problem=f"not gzip: {error}")
    return summarize_batch(
        data, source.name, line_format, buckets, (source.first_seq, source.last_seq)
    )


def read_rejects(
    data_dir: DataDir,
    line_format: str,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> Rejects:
    """Rejected lines of the chosen days, from the data dir's quarantine."""
    reasons: Counter[str] = Counter()
    counters: list[int] = []
    times: list[float] = []
    for entry in read_rejections(data_dir, since, until):
        reasons[entry.reason] += 1
        if entry.at is not None:
            times.append(entry.at)
        counter = leading_counter(line_format, entry.line)
        if counter is not None:
            counters.append(counter)
    tails = recovered_tail_count(data_dir)
    return Rejects(dict(reasons), tuple(sorted(counters)), tuple(sorted(times)), tails)
