"""``/gateways/<name>/history.json`` and ``/gateways/<name>/export.csv``: the gateway's own
batches, for a logged-in person, where the site runs on that gateway
(``FIELDGATE_WEB_GATEWAY_DATA_DIR``). The choosing and framing is ``gateway.core.history``;
the files are ``gateway.store.history``'s."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse, StreamingHttpResponse

from gateway.core import history
from gateway.logs import log_event
from gateway.store.history import batches_newest_first, batches_oldest_first
from gateway.store.layout import DataDir
from gateway.store.ledgers import read_identity
from web.fleet.models import Gateway
from web.live import s3batches

log = logging.getLogger("web.history")

MAX_EXPORT_SECONDS = 24 * 3600  # security limit: one download covers at most a day
NOT_HERE = (
    "history and export are served by the site that runs on the gateway itself, with "
    "FIELDGATE_WEB_GATEWAY_DATA_DIR set to its GATEWAY_DATA_DIR (docs/web.md)"
)


class Refused(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status


def _source(name: str) -> tuple[DataDir, str]:
    """The data dir holding ``name``'s batches and its line format, or Refused."""
    if not Gateway.objects.filter(name=name).exists():
        raise Http404("unknown gateway")
    configured = settings.FIELDGATE["GATEWAY_DATA_DIR"]
    if not configured:
        raise Refused(404, NOT_HERE)
    data_dir = DataDir(Path(configured))
    try:
        identity = read_identity(data_dir)
    except OSError as error:
        raise Refused(
            503,
            f"cannot read FIELDGATE_WEB_GATEWAY_DATA_DIR={configured} ({error.strerror}): the "
            "site's user must be able to read the gateway's data dir (on a Pi the web role "
            "puts it in the reader's group; docs/web.md)",
        ) from None
    if identity is None or identity.gateway_id != name:
        here = identity.gateway_id if identity else "nothing yet"
        raise Refused(404, f"this site holds the batches of {here}, not {name}; {NOT_HERE}")
    return data_dir, identity.line_format or "auto"


def served_here(name: str) -> dict:
    """What this site serves of ``name``'s batches (for the gateway page): history (from the
    gateway's data dir), export (from there, or from the bucket), and if not history why."""
    try:
        _source(name)
    except Refused as refused:
        return {"history": False, "export": s3batches.configured(), "reason": str(refused)}
    except Http404:
        return {"history": False, "export": False, "reason": "unknown gateway"}
    return {"history": True, "export": True, "reason": ""}


def _refusal(request, name: str, refused: Refused) -> JsonResponse:
    log_event(
        log,
        logging.WARNING,
        "history_refused",
        gateway=name,
        path=request.path,
        status=refused.status,
        error=str(refused),
    )
    return JsonResponse({"error": str(refused)}, status=refused.status)


def _number(request, key: str, default: float | None = None) -> float:
    text = request.GET.get(key)
    if text is None or text == "":
        if default is None:
            raise Refused(400, f"{key} is required")
        return default
    try:
        value = float(text)
    except ValueError:
        raise Refused(400, f"{key} must be a number, got {text[:40]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise Refused(400, f"{key} must be a finite number")
    return value


# Reading an hour back is seconds of CPU: it runs in a thread of its own (not the one thread
# Django's sync views and the consumers' database calls share, which it would hold up, and
# with it the ingest), one request at a time.
_READING = asyncio.Semaphore(1)


@login_required
async def history_view(request, name: str):
    """The ``seconds`` of device time before ``before_seq`` as frames of the stream protocol
    (docs/stream-protocol.md); without ``before_seq``, up to the newest row stored."""
    try:
        data_dir, line_format = await sync_to_async(_source)(name)
        before = _number(request, "before_seq", float(2**62))
        seconds = _number(request, "seconds", 60.0)
        if not 0 < seconds <= history.MAX_SPAN_SECONDS:
            raise Refused(400, f"seconds must be in (0, {history.MAX_SPAN_SECONDS:.0f}]")
    except Refused as refused:
        return _refusal(request, name, refused)

    def read() -> history.History:
        return history.history_frames(
            batches_newest_first(data_dir, int(before)),
            before_seq=int(before),
            span=seconds,
            line_format=line_format,
        )

    async with _READING:
        started = time.perf_counter()
        found = await sync_to_async(read, thread_sensitive=False)()
        took = time.perf_counter() - started
    log_event(
        log,
        logging.INFO,
        "history_served",
        gateway=name,
        seconds=seconds,
        rows=found.rows,
        frames=len(found.frames),
        took_s=round(took, 3),
    )
    return JsonResponse(
        {
            "gateway": name,
            "before_seq": int(before) if before < 2**62 else None,
            "first_seq": found.first_seq,
            "last_seq": found.last_seq,
            "rows": found.rows,
            "points_per_second": found.points_per_second,
            "exhausted": found.exhausted,
            "frames": found.frames,
        }
    )


def _when(request, key: str) -> float:
    """A time from the query: Unix seconds, or ISO 8601 (UTC unless it says otherwise)."""
    text = request.GET.get(key, "")
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Refused(
            400, f"{key} must be Unix seconds or a date and time like 2026-11-30T16:00:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


async def _keys_in_bucket(name: str, days: tuple[dt.date, dt.date]) -> list[tuple[str, bool]]:
    if not await sync_to_async(Gateway.objects.filter(name=name).exists)():
        raise Http404("unknown gateway")
    try:
        return await sync_to_async(s3batches.batch_keys, thread_sensitive=False)(name, days)
    except Exception as error:  # botocore's errors: unreachable, refused, no such bucket
        raise Refused(502, f"the bucket could not be listed: {error}"[:300]) from None


@login_required
async def export_view(request, name: str):
    """The rows received in ``[from, to)`` (the gateway's clock) as one CSV, streamed."""
    try:
        start, end = _when(request, "from"), _when(request, "to")
        if not start < end:
            raise Refused(400, "'to' must come after 'from'")
        if end - start > MAX_EXPORT_SECONDS:
            raise Refused(400, f"at most {MAX_EXPORT_SECONDS // 3600} hours per download")
        days = (
            dt.datetime.fromtimestamp(start, dt.UTC).date(),
            dt.datetime.fromtimestamp(end, dt.UTC).date(),
        )
        try:
            data_dir, _ = await sync_to_async(_source)(name)
            source = batches_oldest_first(data_dir, days)
        except Refused:
            if not s3batches.configured():
                raise
            source = s3batches.batches(await _keys_in_bucket(name, days))
    except Refused as refused:
        return _refusal(request, name, refused)
    rows = history.export_rows(source, start, end, export := history.Export())

    async def chunks():
        read = sync_to_async(next, thread_sensitive=False)  # not the views' shared thread
        try:
            while (chunk := await read(rows, None)) is not None:
                yield chunk
        except Exception as error:  # the download ends short, and the client sees it did
            log_event(
                log,
                logging.ERROR,
                "export_failed",
                gateway=name,
                rows=export.rows,
                last_seq=export.last_seq,
                error=repr(error)[:300],
                hint="the batches could not be read to the end; try again, or a shorter range",
            )
            raise
        level = logging.WARNING if export.stopped else logging.INFO
        log_event(
            log,
            level,
            "export_served",
            gateway=name,
            rows=export.rows,
            first_seq=export.first_seq,
            last_seq=export.last_seq,
            stopped=export.stopped or "",
            **({"hint": "export the rest from the seq named"} if export.stopped else {}),
        )

    stamp = dt.datetime.fromtimestamp(start, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(chunks(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response
