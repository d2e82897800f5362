"""What the fleet page flags on a gateway, from what the site already has: whether a socket is
up (``online``) and the status the reader last streamed (``gateway/reader/stream.py``: the
reader's own status, disk, upload backlog, the uploader's outcome). No I/O, no clock.

The thresholds are those of the Prometheus rules in docs/monitoring/fieldgate-alerts.yml, so
the page and the pager agree. A gateway that is offline shows only that: the rest would come
from a status that is no longer current. A revoked gateway shows nothing; it is meant to be off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

CRITICAL = "critical"
WARNING = "warning"


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    #: Less than this share of the data disk free (FieldgateDiskLow).
    disk_free_share: float = 0.10
    #: The oldest batch not yet uploaded has waited longer than this (FieldgateUploadBacklogOld).
    backlog_age_seconds: float = 3600.0
    #: The uploader's status is older than this: it is not running (FieldgateServiceDown).
    uploader_stale_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class FleetAlert:
    name: str  # offline, device_silent, rejections_high, not_storing, disk_low,
    #            upload_backlog_old, upload_failing, uploader_down, clock_unsynchronized
    severity: str  # critical or warning
    text: str  # what the badge's title says

    def as_dict(self) -> dict:
        return asdict(self)


def _mib(size: float) -> str:
    return f"{size / 1048576:.0f} MiB"


def _duration(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def fleet_alerts(
    status: dict | None,
    *,
    online: bool,
    revoked: bool = False,
    ever_seen: bool = True,
    policy: AlertPolicy = AlertPolicy(),  # noqa: B008 - frozen: one shared default is fine
) -> list[FleetAlert]:
    """The alerts of one gateway, critical ones first."""
    if revoked:
        return []
    if not online:
        text = "offline: no message from the gateway" if ever_seen else "never connected"
        return [FleetAlert("offline", CRITICAL, text)]
    status = status or {}
    found = [
        *_device(status),
        *_disk(status, policy),
        *_uploads(status, policy),
        *_clock(status),
    ]
    return sorted(found, key=lambda alert: alert.severity != CRITICAL)


def _device(status: dict) -> list[FleetAlert]:
    reader = status.get("reader") or {}
    found = []
    if reader and not reader.get("port_open", True):
        state = reader.get("port_state", "closed")
        found.append(
            FleetAlert("device_silent", CRITICAL, f"the monitor's port is not open ({state})")
        )
    elif reader and status.get("sample_rate") == 0:
        found.append(FleetAlert("device_silent", CRITICAL, "no rows from the monitor lately"))
    rejection = reader.get("rejection_alert")
    if rejection:
        reasons = ", ".join(rejection.get("top_reasons", {})) or "various"
        found.append(
            FleetAlert(
                "rejections_high",
                WARNING,
                f"{rejection['share']:.0%} of lines rejected ({reasons}): {rejection['hint']}",
            )
        )
    return found


def _disk(status: dict, policy: AlertPolicy) -> list[FleetAlert]:
    reader = status.get("reader") or {}
    found = []
    if reader and not reader.get("storing", True):
        found.append(
            FleetAlert("not_storing", CRITICAL, "storing stopped: the disk limit is reached")
        )
    free, total = status.get("disk_free"), status.get("disk_total")
    if free is not None and total and free / total < policy.disk_free_share:
        found.append(
            FleetAlert("disk_low", WARNING, f"{_mib(free)} free ({free / total:.0%} of the disk)")
        )
    return found


def _uploads(status: dict, policy: AlertPolicy) -> list[FleetAlert]:
    found = []
    backlog = status.get("upload_backlog") or {}
    age = backlog.get("age_seconds")
    if age is not None and age > policy.backlog_age_seconds:
        found.append(
            FleetAlert(
                "upload_backlog_old",
                WARNING,
                f"the oldest of {backlog.get('batches', '?')} batches has waited "
                f"{_duration(age)} for upload",
            )
        )
    uploader = status.get("uploader")
    if uploader is None:
        return found  # a reader that streams without files, or before the uploader published
    stale = uploader.get("age_seconds", 0) > policy.uploader_stale_seconds
    if not uploader.get("once") and (stale or not uploader.get("running")):
        found.append(FleetAlert("uploader_down", CRITICAL, "the uploader is not running"))
    error = uploader.get("last_error") or {}
    success_at = uploader.get("last_success_at") or 0
    if uploader.get("failing") and error.get("at", 0) > success_at:
        found.append(
            FleetAlert(
                "upload_failing",
                WARNING,
                f"{uploader['failing']} batches failing to upload: {error.get('error', '?')}",
            )
        )
    return found


def _clock(status: dict) -> list[FleetAlert]:
    clock = (status.get("reader") or {}).get("clock") or {}
    if clock.get("synced") is False:
        return [
            FleetAlert(
                "clock_unsynchronized",
                WARNING,
                "the clock is not synchronized (NTP): timestamps may jump",
            )
        ]
    return []
