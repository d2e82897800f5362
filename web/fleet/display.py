"""How the fleet page writes a gateway's numbers: the same text whether the server renders the
page (no script needed) or ``fleet.js`` updates a row (it mirrors these rules; the browser
test compares the two). Pure: no Django here."""

from __future__ import annotations

import math
from urllib.parse import quote

MIB = 1 << 20
GIB = 1 << 30
NONE = "–"  # shown for a value the gateway has not reported
SPARK_WIDTH, SPARK_HEIGHT = 80, 18  # the rate sparkline's box, in CSS pixels
RATE_HISTORY = 60  # heartbeats kept per gateway for the sparkline (5 minutes at 5 s)


def size(count: int | float | None) -> str:
    """Bytes as people read them: ``812 MiB``, ``12.4 GiB``."""
    if count is None or isinstance(count, bool) or not isinstance(count, int | float):
        return NONE
    if count >= 10 * GIB:
        return f"{count / GIB:,.0f} GiB"
    if count >= GIB:
        return f"{count / GIB:.1f} GiB"
    return f"{count / MIB:,.0f} MiB"


def disk(free: int | None, total: int | None) -> str:
    """``12.4 GiB (41%)``: free space and its share of the disk."""
    text = size(free)
    if text != NONE and isinstance(total, int | float) and total > 0:
        text += f" ({100 * free / total:.0f}%)"
    return text


def rate(per_second: float | None) -> str:
    if not isinstance(per_second, int | float) or isinstance(per_second, bool):
        return NONE
    return f"{per_second:,.0f} /s"


def count(value: int | None) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        return NONE
    return f"{value:,}"


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3 h``, ``2 d``."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return NONE
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def backlog(value: dict | None) -> str:
    """``3 batches (1 MiB), oldest 12 min``; ``none`` when every batch is uploaded."""
    if not isinstance(value, dict):
        return NONE
    batches = value.get("batches")
    if not isinstance(batches, int):
        return NONE
    if batches == 0:
        return "none"
    text = f"{batches:,} batch{'' if batches == 1 else 'es'} ({size(value.get('bytes'))})"
    age = value.get("age_seconds")
    if isinstance(age, int | float) and age > 0:
        text += f", oldest {duration(age)}"
    return text


def age(last_seen: float | None, now: float) -> str:
    if not isinstance(last_seen, int | float):
        return "never"
    seconds = now - last_seen
    return "just now" if seconds < 1 else f"{duration(seconds)} ago"


def sparkline(rates: list, width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT) -> str:
    """An SVG path (``d``) of a rate history, oldest first, scaled to its largest rate. A None
    (no rate then: offline, or the first heartbeat) breaks the line: a new ``M`` begins."""
    values = [r for r in rates if isinstance(r, int | float) and math.isfinite(r)]
    if len(rates) < 2 or not values:
        return ""
    top = max(values) or 1.0
    step = width / (len(rates) - 1)
    path, drawing = [], False
    for index, value in enumerate(rates):
        if not isinstance(value, int | float) or not math.isfinite(value):
            drawing = False
            continue
        x = round(index * step, 1)
        y = round(height - 1 - (height - 2) * max(0.0, value) / top, 1)
        path.append(f"{'L' if drawing else 'M'}{x} {y}")
        drawing = True
    return " ".join(path)


def cells(row: dict, now: float) -> dict:
    """A fleet row (``web.fleet.status.summary``) as the table's cells, every value written."""
    name = row["name"]
    return {
        "name": name,
        "href": f"/gateways/{quote(name)}/",
        "online": row["online"],
        "state": "revoked" if row["revoked"] else "online" if row["online"] else "offline",
        "alerts": row["alerts"],
        "last_seen": "" if row["last_seen"] is None else row["last_seen"],
        "age": age(row["last_seen"], now),
        "sample_rate": rate(row["sample_rate"]),
        "spark": sparkline(row.get("rates") or []),
        "rejects": count(row["rejects"]),
        "disk_free": disk(row["disk_free"], row["disk_total"]),
        "upload_backlog": backlog(row["upload_backlog"]),
        "messages_rejected": count(row["messages_rejected"]),
    }
