"""``gateway status``: the data dir's inventory plus what running services last published.

It exits 3 (as ``systemctl status`` does for a unit that is not running) when a service that
said it was running is dead (its process is gone) or stale (it stopped publishing): a killed
or hung service must not look healthy to a script or a monitoring check.
"""

from __future__ import annotations

import os
import time

from gateway.settings import Settings
from gateway.store.inventory import take_inventory
from gateway.store.layout import DataDir
from gateway.store.ledgers import gateway_id_of, loss_totals, not_stored_totals, read_status
from gateway.store.probe import MIN_FREE_BYTES

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
    published["state"] = _state(
        bool(published.get("running", False)), _alive(published.get("pid")), age < stale_after
    )
    published["alive"] = published["state"] == "running"
    return published


def _state(says_running: bool, process_alive: bool, fresh: bool) -> str:
    if not says_running:
        return "stopped"  # it said so when it stopped
    if not process_alive:
        return "dead"
    return "running" if fresh else "stale"


EXIT_SERVICE_DOWN = 3


def services_down(status: dict) -> list[str]:
    """Services whose last word was "running" but that are dead or stale now."""
    return [
        name
        for name, service in status["services"].items()
        if service is not None and service["state"] in ("dead", "stale")
    ]


def collect_status(settings: Settings) -> dict:
    data_dir = DataDir(settings.data_dir)
    stale_after = max(10.0, 5 * settings.status_seconds)
    return {
        "gateway_id": gateway_id_of(data_dir, settings.gateway_id),
        "data_dir": str(data_dir.root),
        "inventory": take_inventory(data_dir).as_dict(),
        "losses": loss_totals(data_dir),
        "not_stored": not_stored_totals(data_dir),
        "services": {name: service_status(data_dir, name, stale_after) for name in SERVICES},
    }


def _reader_lines(reader: dict) -> list[str]:
    """What the reader made of the device's lines: the format, and whether it refuses them."""
    lines = []
    detected = reader.get("format_detected")
    if detected:
        lines.append(
            f"    format: {reader.get('format')} -> {detected['format']} ({detected['evidence']})"
        )
    elif reader.get("format"):
        lines.append(f"    format: {reader['format']}")
    if reader.get("columns"):
        lines.append(f"    columns: {', '.join(reader['columns'])}")
    port_error = reader.get("port_error")
    if reader.get("state") == "running" and port_error:
        lines.append(
            f"    PORT NOT OPEN ({port_error['errno'] or 'error'} since "
            f"{_clock(port_error['since'])}, {port_error['attempts']} attempts: "
            f"{port_error['error']}): {port_error['hint']}"
        )
    state = reader.get("storage_state")
    if reader.get("state") == "running" and state not in (None, "STORING", "NOT_STORING"):
        fault = reader.get("storage_fault")
        why = (
            f": {fault['cause']} since {_clock(fault['since'])}, {fault['error']}" if fault else ""
        )
        hint = fault["hint"] if fault else "a disk limit holds; see gateway cleanup --dry-run"
        lines.append(f"    NOT STORING ({state}{why}): {hint}")
    this_run = reader.get("counters", {}).get("not_stored_by_cause") or {}
    if this_run:
        counted = ", ".join(f"{cause} {rows}" for cause, rows in sorted(this_run.items()))
        run = "this run" if reader.get("state") == "running" else "its last run"
        lines.append(f"    not stored by {run}: {counted}")
    alert = reader.get("rejection_alert")
    if alert:
        reasons = ", ".join(f"{reason} {count}" for reason, count in alert["top_reasons"].items())
        lines.append(
            f"    REJECTING {alert['share']:.0%} of lines in the last "
            f"{alert['window_seconds']:.0f} s ({reasons}): {alert['hint']}"
        )
    return lines


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


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
    not_stored = status.get("not_stored") or {}
    if not_stored.get("rows"):
        by_cause = ", ".join(
            f"{cause} {totals['rows']} ({totals['entries']} "
            f"entr{'y' if totals['entries'] == 1 else 'ies'})"
            for cause, totals in not_stored["by_cause"].items()
        )
        lines.append(f"  NOT STORED (all runs, state/not_stored.jsonl): {by_cause}")
    if inv["bytes_free"] is not None:
        lines.append(
            f"  disk: {inv['bytes_free'] / mib:.0f} MiB free of {inv['bytes_total'] / mib:.0f} MiB"
        )
    if inv.get("read_only"):
        lines.append(
            "  DATA DIR READ-ONLY: nothing can be stored or published here (a card the kernel "
            "remounted read-only after I/O errors? see dmesg); the reader counts what it reads "
            "and stores again within a second of a read-write remount; "
            "journalctl -u gateway-reader has its account"
        )
    elif inv["bytes_free"] is not None and inv["bytes_free"] < MIN_FREE_BYTES:
        lines.append(
            f"  DISK FULL: {inv['bytes_free']} bytes free; the reader stores nothing until "
            f"{MIN_FREE_BYTES // 1024} KiB are free (gateway cleanup --dry-run shows what may go)"
        )
    for name, service in status["services"].items():
        if service is None:
            lines.append(f"  {name}: never ran here")
            continue
        state = {
            "running": "running",
            "stopped": "stopped",
            "dead": f"DEAD (process {service.get('pid')} is gone)",
            "stale": "STALE (alive but not publishing: the data dir is read-only)"
            if inv.get("read_only")
            else "STALE (alive but not publishing: hung?)",
        }[service["state"]]
        counters = service.get("counters", {})
        shown = ", ".join(
            f"{key} {value}"
            for key, value in counters.items()
            if not isinstance(value, dict) and value
        )
        lines.append(f"  {name}: {state} (updated {service['age_seconds']} s ago) {shown}")
        if name == "reader":
            lines.extend(_reader_lines(service))
    down = services_down(status)
    if down:
        lines.append(
            f"  DOWN: {', '.join(down)}; see `systemctl status gateway-{down[0]}` and "
            f"`journalctl -u gateway-{down[0]}`"
        )
    return "\n".join(lines)
