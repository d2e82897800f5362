"""``gateway audit``: is every sample accounted for, from the device counter to the bucket?

Collects, per data dir: the sealed batches (and their upload marks), the objects in the bucket
under ``<prefix>/<gateway id>/``, what cleanup dropped (the losses ledger), the device counter
of every stored row, the counters of rejected lines (quarantine), the reader's restarts (the
runs ledger) and the rows it read but did not store (the not-stored ledger);
:func:`gateway.core.reconcile.reconcile` does the rest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from gateway.core.batchfile import device_field, row_seq
from gateway.core.keys import BadName, day_of, gateway_prefix, parse_object_key
from gateway.core.not_stored import Cause, CounterSpan, Episode
from gateway.core.reconcile import AuditReport, Span, reconcile
from gateway.core.records import counter_field, leading_counter
from gateway.settings import Settings
from gateway.store.layout import DataDir, discover_data_dirs
from gateway.store.ledgers import Identity, NotStoredRecord, losses, not_stored, read_identity, runs
from gateway.store.marks import is_touched
from gateway.store.quarantine import read_rejections
from gateway.store.recovery import sealed_batches


@dataclass
class DataDirAudit:
    data_dir: Path
    gateway_id: str
    report: AuditReport


def _in_range(day: dt.date, since: dt.date | None, until: dt.date | None) -> bool:
    return (since is None or day >= since) and (until is None or day <= until)


def list_objects(client, bucket: str, prefix: str) -> list[tuple[str, int]]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [(item["Key"], item["Size"]) for item in page.get("Contents", [])]
    return keys


def audit_data_dir(
    data_dir: DataDir,
    settings: Settings,
    client=None,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    strict: bool = False,
) -> DataDirAudit:
    identity = read_identity(data_dir) or Identity(settings.gateway_id)
    gateway_id = identity.gateway_id
    line_format = identity.line_format or settings.line_format
    counter_index = counter_field(line_format)
    has_counter = counter_index is not None
    local, device_rows = [], []
    for batch in sealed_batches(data_dir):
        if not _in_range(batch.name.day, since, until):
            continue
        span = Span(
            batch.name.first_seq,
            batch.name.last_seq,
            batch.name.relative_path,
            is_touched(batch.path),
        )
        if has_counter:
            try:
                data = batch.path.read_bytes()
            except FileNotFoundError:
                continue  # cleanup deleted it meanwhile: the bucket or losses.jsonl has it
            for row in data.split(b"\n")[1:-1]:
                device_rows.append((row_seq(row), int(device_field(row, counter_index))))
        local.append(span)
    remote = None
    if client is not None:
        remote = []
        listed = gateway_prefix(settings.s3_prefix, gateway_id)
        for key, _size in list_objects(client, settings.s3_bucket, listed):
            try:
                parsed = parse_object_key(key)
            except BadName:
                continue  # manifests and other objects that are not batches
            if parsed.gateway_id == gateway_id and _in_range(parsed.batch.day, since, until):
                remote.append(Span(parsed.batch.first_seq, parsed.batch.last_seq, key))
        # A running reader seals batches while the bucket is listed, and the uploader may
        # finish a later one first: look at the data dir again, so what was sealed meanwhile
        # covers its seq instead of showing as a hole. (Marks are judged from the first look,
        # which came before the listing.)
        seen = {span.first for span in local}
        for batch in sealed_batches(data_dir):
            if batch.name.first_seq not in seen and _in_range(batch.name.day, since, until):
                local.append(
                    Span(batch.name.first_seq, batch.name.last_seq, batch.name.relative_path)
                )
    dropped = [
        Span(entry.first_seq, entry.last_seq, f"{entry.batch} at {entry.at}")
        for entry in losses(data_dir)
        if entry.first_seq is not None and entry.last_seq is not None
    ]
    rejected = []
    if has_counter:
        for entry in read_rejections(data_dir):
            counter = leading_counter(line_format, entry.line)
            if counter is not None:
                rejected.append(counter)
    restarts = [entry.first_seq for entry in runs(data_dir)]
    episodes = [
        episode
        for entry in not_stored(data_dir)
        if (episode := _episode(entry)) and _in_range(day_of(entry.start), since, until)
    ]
    report = reconcile(
        local,
        remote,
        dropped,
        device_rows if has_counter else None,
        rejected,
        restarts,
        episodes,
        strict=strict,
    )
    return DataDirAudit(data_dir.root, gateway_id, report)


def _episode(entry: NotStoredRecord) -> Episode | None:
    """A ledger entry as the core's episode; None for a cause this version does not know."""
    try:
        cause = Cause(entry.cause)
        spans = [
            CounterSpan(int(a), int(b), None if s is None else int(s)) for a, b, s in entry.counters
        ]
    except (ValueError, TypeError):
        return None
    return Episode(cause, entry.start, entry.end, entry.error, entry.rows, entry.bytes, spans)


def run_audit(
    settings: Settings, *, use_s3: bool = True, since=None, until=None, strict: bool = False
) -> list[DataDirAudit]:
    client = None
    if use_s3 and settings.s3_bucket:
        from gateway.uploader.s3 import make_client

        client = make_client(settings)
    return [
        audit_data_dir(data_dir, settings, client, since=since, until=until, strict=strict)
        for data_dir in discover_data_dirs(settings.data_dir)
    ]


def format_audit(audits: list[DataDirAudit]) -> str:
    if not audits:
        return "no data dir found (nothing holds batches/ yet): FAIL"
    lines = []
    for audit in audits:
        report = audit.report
        lines.append(
            f"{audit.gateway_id} ({audit.data_dir}): seq {report.seq_first}..{report.seq_last}, "
            f"{report.rows_local} rows local, {report.rows_in_s3} in S3, "
            f"{len(report.pending_upload)} batches pending upload"
        )
        for gap in report.gaps:
            lines.append(f"  gap   {gap.level:6} {gap.first}-{gap.last} ({gap.count}): {gap.cause}")
        for duplicate in report.duplicates:
            lines.append(
                f"  dup   {duplicate.level:6} {duplicate.first}-{duplicate.last}: "
                f"{', '.join(duplicate.where)}"
            )
        for cause, totals in report.not_stored.items():
            lines.append(
                f"  not stored: {totals['rows']} rows ({cause}, {totals['episodes']} "
                f"episode{'s' if totals['episodes'] != 1 else ''}"
                + (f", {totals['bytes']} bytes" if totals["bytes"] else "")
                + ")"
            )
        if report.device_counter_resets:
            lines.append(
                f"  device counter went back {report.device_counter_resets} times (device restarts)"
            )
        lines.append("  PASS" if report.passed else "  FAIL: " + "; ".join(report.failures))
    return "\n".join(lines)
