"""``gateway status``: the data dir's inventory plus what running services last published."""

from __future__ import annotations

import os
import time

from gateway.settings import Settings
from gateway.store.inventory import take_inventory
from gateway.store.layout import DataDir
from gateway.store.ledgers import loss_totals, read_status

SERVICES = ("reader", "uploader", "cleanup")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def service_status(data_dir: DataDir, service: str, stale_after: float) -> dict | None:
    published = read_status(data_dir, service)
    if published is None:
        return None
    age = time.time() - published.get("updated_at", 0)
    published["age_seconds"] = round(age, 1)
    published["alive"] = (
        published.get("running", False) and _alive(published.get("pid")) and age < stale_after
    )
    return published


def collect_status(settings: Settings) -> dict:
    data_dir = DataDir(settings.data_dir)
    stale_after = max(10.0, 5 * settings.status_seconds)
    return {
        "gateway_id": settings.gateway_id,
        "data_dir": str(data_dir.root),
        "inventory": take_inventory(data_dir).as_dict(),
        "losses": loss_totals(data_dir),
        "services": {name: service_status(data_dir, name, stale_after) for name in SERVICES},
    }


def format_status(status: dict) -> str:
    inv = status["inventory"]
    mib = 1024 * 1024
    lines = [
        f"gateway {status['gateway_id']}  data dir {status['data_dir']}",
        f"  batches: {inv['sealed_batches']} sealed ({inv['sealed_bytes'] / mib:.1f} MiB), "
        f"{inv['touched_batches']} uploaded, {inv['pending_batches']} pending, "
        f"{inv['open_batches']} open",
        f"  seq: {inv['first_seq']} .. {inv['last_seq']}",
        f"  quarantine: {inv['quarantine_files']} files ({inv['quarantine_bytes'] / mib:.1f} MiB)",
    ]
    losses = status["losses"]
    if losses["batches"]:
        lines.append(
            f"  LOST before upload: {losses['batches']} batches, {losses['rows']} rows "
            f"(last: {losses['last']['reason']})"
        )
    if inv["bytes_free"] is not None:
        lines.append(
            f"  disk: {inv['bytes_free'] / mib:.0f} MiB free of {inv['bytes_total'] / mib:.0f} MiB"
        )
    for name, service in status["services"].items():
        if service is None:
            lines.append(f"  {name}: never ran here")
            continue
        state = "running" if service["alive"] else "not running"
        counters = service.get("counters", {})
        shown = ", ".join(
            f"{key} {value}"
            for key, value in counters.items()
            if not isinstance(value, dict) and value
        )
        lines.append(f"  {name}: {state} (updated {service['age_seconds']} s ago) {shown}")
    return "\n".join(lines)
