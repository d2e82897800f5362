"""``gateway report``: choose the batches, map the per-batch work, combine, write the report.

The per-batch work runs in this process (one batch after another) or, with a scheduler
address, as one task per batch on a Dask distributed cluster whose results are combined here
in whatever order they finish. The combination is exact (:mod:`gateway.core.report`),
so both give the same summary and the same plots.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from gateway.core.report import (
    Combined,
    Combiner,
    Rejects,
    buckets_per_batch,
    build_summary,
    overview,
    rate_series,
)
from gateway.logs import log_event
from gateway.report import batch  # noqa: F401 (pandas loaded before the work is timed)
from gateway.report.sources import (
    BatchSource,
    S3Location,
    local_batches,
    read_rejects,
    read_source,
    s3_batches,
    s3_gateways,
    summarize_source,
)
from gateway.settings import Settings
from gateway.store.layout import discover_data_dirs
from gateway.store.ledgers import Identity, read_identity

log = logging.getLogger("gateway.report")

SUMMARY_FILE = "summary.json"
PLOT_FILES = ("overview.png", "timeline.png", "channels.png")


class ReportError(ValueError):
    """The report cannot be made as asked; the message says what to change."""


@dataclass
class Selection:
    """What a report reads: the gateway, its batches and what is known of its rejects."""

    gateway_id: str
    source: str
    line_format: str
    batches: list[BatchSource]
    rejects: Rejects | None
    duplicate_objects: int = 0


@dataclass
class Report:
    summary: dict
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0  # the per-batch work and its combination


def select_local(
    settings: Settings,
    gateway_id: str | None,
    since: dt.date | None,
    until: dt.date | None,
    line_format: str | None,
) -> Selection:
    """The data dir (or, under a parent of several, the one of ``gateway_id``)."""
    candidates = []
    for data_dir in discover_data_dirs(settings.data_dir):
        identity = read_identity(data_dir) or Identity(settings.gateway_id)
        candidates.append((identity.gateway_id, data_dir, identity))
    if not candidates:
        raise ReportError(f"no data dir under {settings.data_dir} (nothing holds batches/)")
    if gateway_id is not None:
        chosen = [c for c in candidates if c[0] == gateway_id]
        if not chosen:
            known = ", ".join(c[0] for c in candidates)
            raise ReportError(
                f"no data dir of gateway {gateway_id!r} under {settings.data_dir} (found: {known})"
            )
    elif len(candidates) > 1:
        known = ", ".join(c[0] for c in candidates)
        raise ReportError(
            f"{settings.data_dir} holds several gateways ({known}): pick one with --gateway"
        )
    else:
        chosen = candidates
    name, data_dir, identity = chosen[0]
    line_format = line_format or identity.line_format or settings.line_format
    return Selection(
        name,
        str(data_dir.root),
        line_format,
        local_batches(data_dir, since, until),
        read_rejects(data_dir, line_format, since, until),
    )


def select_s3(
    settings: Settings,
    gateway_id: str | None,
    since: dt.date | None,
    until: dt.date | None,
    line_format: str | None,
) -> Selection:
    if not settings.s3_bucket:
        raise ReportError("GATEWAY_S3_BUCKET is not set: which bucket should the report read?")
    location = S3Location.from_settings(settings)
    if gateway_id is None:
        gateways = s3_gateways(location)
        if len(gateways) != 1:
            found = ", ".join(gateways) or "none"
            raise ReportError(
                f"s3://{location.head} holds {len(gateways)} gateways ({found}): pick one "
                "with --gateway"
            )
        gateway_id = gateways[0]
    batches, duplicates = s3_batches(location, gateway_id, since, until)
    line_format = line_format or settings.line_format
    if line_format == "auto":  # the bucket does not say: the first readable batch's rows do
        line_format = _format_of_first(batches)
    return Selection(gateway_id, location.url(gateway_id), line_format, batches, None, duplicates)


def _format_of_first(batches: list[BatchSource], tries: int = 3) -> str:
    from gateway.report.batch import format_of

    for source in batches[:tries]:
        try:
            return format_of(read_source(source))
        except (gzip.BadGzipFile, EOFError, zlib.error, ValueError, IndexError):
            continue  # a damaged object is named later, with the others
    return "auto"  # each batch is then read as its own rows say


def combine_here(selection: Selection, buckets: int) -> Combined:
    combiner = Combiner()
    for source in selection.batches:
        combiner.add(summarize_source(source, selection.line_format, buckets))
    return combiner.result()


def combine_on_cluster(selection: Selection, buckets: int, scheduler: str) -> Combined:
    """One task per batch on the cluster; results combined here as they finish."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ReportError(
            "--dask-scheduler needs dask.distributed: pip install 'fieldgate[analysis]'"
        ) from None
    combiner = Combiner()
    try:
        client = Client(scheduler, timeout=30)
    except OSError as error:
        raise ReportError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
    with client:
        futures = client.map(
            summarize_source,
            selection.batches,
            line_format=selection.line_format,
            buckets=buckets,
        )
        for future, result in as_completed(futures, with_results=True):
            combiner.add(result)
            future.release()
    return combiner.result()


def write_report(
    selection: Selection,
    combined: Combined,
    out: Path,
    since: dt.date | None,
    until: dt.date | None,
) -> tuple[dict, list[Path]]:
    from gateway.report.plots import plot_channels, plot_overview, plot_timeline

    summary = build_summary(
        combined,
        gateway_id=selection.gateway_id,
        source=selection.source,
        line_format=selection.line_format,
        since=since,
        until=until,
        rejects=selection.rejects,
        duplicate_objects=selection.duplicate_objects,
    )
    out.mkdir(parents=True, exist_ok=True)
    files = [
        plot_overview(overview(combined), summary, out / PLOT_FILES[0]),
        plot_timeline(rate_series(combined, selection.rejects), summary, out / PLOT_FILES[1]),
        plot_channels(summary, out / PLOT_FILES[2]),
    ]
    summary["plots"] = list(PLOT_FILES)
    summary_path = out / SUMMARY_FILE
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary, [summary_path, *files]


def run_report(
    settings: Settings,
    *,
    from_s3: bool,
    out: Path,
    gateway_id: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    line_format: str | None = None,
    scheduler: str | None = None,
) -> Report:
    if since and until and since > until:
        raise ReportError(f"--since {since} is after --until {until}")
    select = select_s3 if from_s3 or scheduler else select_local
    selection = select(settings, gateway_id, since, until, line_format)
    buckets = buckets_per_batch(len(selection.batches))
    started = time.monotonic()
    if scheduler:
        combined = combine_on_cluster(selection, buckets, scheduler)
    else:
        combined = combine_here(selection, buckets)
    seconds = time.monotonic() - started
    log_event(
        log,
        logging.INFO,
        "report_combined",
        gateway=selection.gateway_id,
        batches=len(selection.batches),
        engine=scheduler or "local",
        seconds=round(seconds, 3),
    )
    summary, files = write_report(selection, combined, out, since, until)
    return Report(summary, files, seconds)
