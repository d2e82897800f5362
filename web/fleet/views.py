import hmac
import os
import time

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import generate_latest

from web.fleet import display, health, metrics
from web.fleet.counters import COUNTERS
from web.fleet.status import fleet_rows

# A request that came through a proxy says so in one of these: it is not local, whatever
# address the proxy connected from.
FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
LOOPBACK = {"127.0.0.1", "::1"}
# The text format every Prometheus 2 and 3 reads (our names are plain ASCII).
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@login_required
def overview(request):
    offline_after = settings.FIELDGATE["OFFLINE_AFTER_SECONDS"]
    now = time.time()
    rows = fleet_rows(now)
    return render(
        request,
        "fleet/overview.html",
        {
            "rows": [display.cells(row, now) for row in rows],
            # What fleet.js needs before its socket sends rows (the rest is in the table).
            "live": [
                {key: row[key] for key in ("name", "online", "revoked", "alerts", "server_time")}
                for row in rows
            ],
            "totals": fleet_totals(rows),
            "offline_after": offline_after,
            "spark_width": display.SPARK_WIDTH,
            "spark_height": display.SPARK_HEIGHT,
        },
    )


def fleet_totals(rows: list[dict]) -> dict:
    """The line above the table: how many gateways, online, with a critical alert."""
    severities = [{alert["severity"] for alert in row["alerts"]} for row in rows]
    return {
        "gateways": len(rows),
        "online": sum(1 for row in rows if row["online"]),
        "offline": sum(1 for row in rows if not row["online"] and not row["revoked"]),
        "critical": sum(1 for found in severities if "critical" in found),
        "warning": sum(1 for found in severities if "warning" in found and "critical" not in found),
    }


@login_required
def gateways(request):
    """Every gateway's fleet row, alerts included (what the fleet page's socket sends)."""
    return JsonResponse({"server_time": time.time(), "rows": fleet_rows()})


@login_required
def counters(request):
    """This worker process's counters: ingest rejects, viewer drops (one worker's share)."""
    return JsonResponse({"pid": os.getpid(), "counters": dict(COUNTERS.local)})


@never_cache
@require_GET
async def healthz(request):
    """200 when this worker reaches the database and the channel layer, else 503; no login."""
    checks = await health.check()
    healthy = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "failing", **checks}, status=200 if healthy else 503
    )


def _metrics_refusal(request) -> HttpResponse | None:
    """None when the request may read /metrics: with FIELDGATE_WEB_METRICS_TOKEN set, it must
    carry that bearer token; without, it must come from this host, not through a proxy."""
    token = settings.FIELDGATE_METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if sent.startswith("Bearer ") and hmac.compare_digest(
            sent[7:].strip().encode(), token.encode()
        ):
            return None
        refusal = HttpResponse(
            "a bearer token is required\n", status=401, content_type="text/plain"
        )
        refusal["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return refusal
    local = request.META.get("REMOTE_ADDR") in LOOPBACK
    if local and not any(header in request.META for header in FORWARDED_HEADERS):
        return None
    return HttpResponse(
        "metrics are served to 127.0.0.1 only; set FIELDGATE_WEB_METRICS_TOKEN to scrape "
        "from elsewhere\n",
        status=403,
        content_type="text/plain",
    )


@never_cache
@require_GET
def metrics_view(request):
    """The site's metrics in Prometheus text (docs/monitoring/README.md), every worker's."""
    refusal = _metrics_refusal(request)
    if refusal is not None:
        return refusal
    text = generate_latest(metrics.registry(fleet_rows(), COUNTERS.totals()))
    return HttpResponse(text, content_type=PROMETHEUS_TEXT)
