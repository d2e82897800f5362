"""The fleet page's cost with many gateways: the server renders every row (formatted values,
alerts, a sparkline), so its time grows with the fleet. ``python -m bench.fleet_page``.

The gateway profile (SQLite) in a temporary directory; each gateway has a full last status
(the reader's counters, disk, backlog, uploader, an alert or two) and 60 heartbeat rates. The
page is fetched through Django's test client (view, database, template; no network), after
one warm-up; the baseline is the same page with one gateway, in the same run.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

SIZES = (1, 100, 1000)
RUNS = 15


def status_of(n: int) -> dict:
    return {
        "reader": {
            "port_open": n % 17 != 0,
            "storing": True,
            "mode": "full",
            "next_seq": 1_000_000 + n,
            "counters": {"rows_accepted": 10**6, "rows_rejected": n, "device_lines_lost": 0},
            "rejection_alert": None,
            "clock": {"synced": n % 5 != 0},
        },
        "stream": {"rows_dropped": 0, "frames_dropped": 0},
        "sample_rate": 500.0 + n % 7,
        "channels": ["lead_i", "lead_ii", "lead_iii"],
        "disk_free": (n % 30 + 1) * 2**30,
        "disk_total": 32 * 2**30,
        "upload_backlog": {"batches": n % 9, "bytes": n * 4096, "age_seconds": 60.0 * (n % 90)},
        "uploader": None,
    }


def main(argv: list[str]) -> int:
    directory = tempfile.mkdtemp(prefix="fieldgate-bench-fleet-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="web.settings.gateway",
        FIELDGATE_WEB_DATA_DIR=directory,
        FIELDGATE_WEB_SECRET_KEY="bench-secret-key-0123456789-abcdefghijklmnop",
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from bench.common import RESULTS
    from web.fleet.models import Gateway

    call_command("migrate", verbosity=0, interactive=False)
    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.create_user("bench", password="bench-pw-1234"))
    results = {}
    for size in SIZES:
        Gateway.objects.all().delete()
        now = timezone.now()
        Gateway.objects.bulk_create(
            Gateway(
                name=f"pi-{n:04d}",
                token_hash="x",
                connections=1 if n % 11 else 0,
                last_seen=now,
                last_status=status_of(n),
                rate_history=[500.0 + (n + i) % 13 for i in range(60)],
            )
            for n in range(size)
        )
        assert client.get("/").status_code == 200  # warm-up: templates compiled
        times = []
        for _ in range(RUNS):
            with CaptureQueriesContext(connection) as queries:
                start = time.perf_counter()
                response = client.get("/")
                times.append(time.perf_counter() - start)
        results[size] = {
            "median_ms": round(statistics.median(times) * 1000, 1),
            "max_ms": round(max(times) * 1000, 1),
            "bytes": len(response.content),
            "queries": len(queries),
        }
        print(f"{size:5d} gateways: {results[size]}", flush=True)
    base = results[SIZES[0]]["median_ms"]
    for figures in results.values():
        figures["ratio_to_one_gateway"] = round(figures["median_ms"] / base, 1)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "fleet_page.json"
    path.write_text(json.dumps({"runs": RUNS, "sizes": results}, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
