"""``gateway audit``: is every sample accounted for, from the device counter to the bucket?

Collects, per data dir: the sealed batches (and their upload marks), the objects in the bucket
under ``<prefix>/<gateway id>/``, what cleanup dropped (``state/losses.jsonl``), the device
counter of every stored row, the counters of rejected lines (quarantine) and the reader's
restarts (``state/reader.runs.jsonl``); :func:`gateway.core.reconcile.reconcile` does the rest.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

from gateway.core.keys import BadName, parse_object_key
from gateway.core.reconcile import AuditReport, Span, reconcile
from gateway.settings import Settings
from gateway.store.layout import DataDir, discover_data_dirs
from gateway.store.marks import is_touched
from gateway.store.recovery import sealed_batches

COUNTER_FORMATS = ("csv-seq", "json", "nmea")
# The device counter at the start of a rejected line, when it survived: csv-seq, nmea, json.
_REJECTED_COUNTER = re.compile(r'^(?:\$[A-Z0-9]{1,10},)?(\d+),|^\{"n": (\d+),')


@dataclass
class DataDirAudit:
    data_dir: Path
    gateway_id: str
    report: AuditReport


def _identity(data_dir: DataDir, settings: Settings) -> dict:
    try:
        return json.loads(data_dir.identity_file.read_text())
    except (FileNotFoundError, ValueError):
        return {"gateway_id": settings.gateway_id, "line_format": settings.line_format}


def _jsonl(path: Path) -> list[dict]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


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
    identity = _identity(data_dir, settings)
    gateway_id = identity.get("gateway_id", settings.gateway_id)
    has_counter = identity.get("line_format", settings.line_format) in COUNTER_FORMATS
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
                fields = row.split(b",", 3)
                device_rows.append((int(fields[0]), int(fields[2])))
        local.append(span)
    remote = None
    if client is not None:
        head = f"{settings.s3_prefix.strip('/')}/" if settings.s3_prefix.strip("/") else ""
        remote = []
        for key, _size in list_objects(client, settings.s3_bucket, f"{head}{gateway_id}/"):
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
        Span(entry["first_seq"], entry["last_seq"], f"{entry.get('batch')} at {entry.get('at')}")
        for entry in _jsonl(data_dir.state / "losses.jsonl")
        if entry.get("first_seq") is not None
    ]
    rejected = []
    if has_counter and data_dir.quarantine.is_dir():
        for path in data_dir.quarantine.glob("*.jsonl"):
            for entry in _jsonl(path):
                line = entry.get("line")
                if line is None:  # not UTF-8: kept as base64; its counter may still be intact
                    line = base64.b64decode(entry.get("line_b64", "")).decode("latin-1")
                match = _REJECTED_COUNTER.match(line)
                if match:
                    rejected.append(int(match[1] or match[2]))
    restarts = [entry["first_seq"] for entry in _jsonl(data_dir.state / "reader.runs.jsonl")]
    report = reconcile(
        local,
        remote,
        dropped,
        device_rows if has_counter else None,
        rejected,
        restarts,
        strict=strict,
    )
    return DataDirAudit(data_dir.root, gateway_id, report)


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
        if report.device_counter_resets:
            lines.append(
                f"  device counter went back {report.device_counter_resets} times (device restarts)"
            )
        lines.append("  PASS" if report.passed else "  FAIL: " + "; ".join(report.failures))
    return "\n".join(lines)
