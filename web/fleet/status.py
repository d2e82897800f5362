"""What the fleet pages show of a gateway, and the database work of the sockets.

The sockets call these through ``database_sync_to_async``; they stay small so a consumer only
translates between the socket and plain dicts.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from gateway.core.fleet_alerts import fleet_alerts
from web.fleet import counters, display
from web.fleet.models import Gateway
from web.fleet.tokens import token_matches

FLEET_GROUP = "fleet"


def fleet_rows(now: float | None = None) -> list[dict]:
    """Every gateway's fleet row, by name."""
    now = time.time() if now is None else now
    return [summary(gateway, now) for gateway in Gateway.objects.all()]


def live_group(name: str) -> str:
    return f"live.{name}"


def ingest_group(name: str) -> str:
    """The gateway's own ingest sockets: told when its token is revoked or rotated."""
    return f"ingest.{name}"


def summary(gateway: Gateway, now: float | None = None) -> dict:
    """One fleet row: online/offline, last seen, sample rate, rejects, disk, upload backlog,
    and the alerts of :mod:`gateway.core.fleet_alerts`."""
    now = time.time() if now is None else now
    status = gateway.last_status or {}
    reader = status.get("reader") or {}
    stream = status.get("stream") or {}
    last_seen = gateway.last_seen.timestamp() if gateway.last_seen else None
    offline_after = settings.FIELDGATE["OFFLINE_AFTER_SECONDS"]
    online = bool(
        gateway.connections > 0 and last_seen is not None and now - last_seen < offline_after
    )
    counted = reader.get("counters") or {}
    alerts = fleet_alerts(
        status, online=online, revoked=gateway.revoked, ever_seen=last_seen is not None
    )
    return {
        "name": gateway.name,
        "online": online,
        "revoked": gateway.revoked,
        "last_seen": last_seen,
        "sample_rate": status.get("sample_rate"),
        "rows_accepted": counted.get("rows_accepted"),
        "rejects": counted.get("rows_rejected"),
        "device_gaps": counted.get("device_gaps"),
        "device_lines_lost": counted.get("device_lines_lost"),
        "port_outages": counted.get("port_outages"),
        "disk_free": status.get("disk_free"),
        "disk_total": status.get("disk_total"),
        "upload_backlog": status.get("upload_backlog"),
        "mode": reader.get("mode"),
        "channels": status.get("channels"),
        "next_seq": reader.get("next_seq"),
        "stream_dropped_rows": stream.get("rows_dropped"),
        "stream_dropped_frames": stream.get("frames_dropped"),
        "frames_in": gateway.frames_in,
        "messages_rejected": gateway.messages_rejected,
        "alerts": [{**a.as_dict(), "label": a.name.replace("_", " ")} for a in alerts],
        "rates": gateway.rate_history,
        "server_time": now,
    }


class AuthResult:
    def __init__(self, code: int | None, gateway: Gateway | None = None) -> None:
        self.code = code  # None: accepted; else the close code
        self.gateway = gateway


def authenticate(name: str | None, token: str | None) -> AuthResult:
    from gateway.core import stream_protocol as protocol

    if not token:
        return AuthResult(protocol.CLOSE_NO_TOKEN)
    gateway = Gateway.objects.filter(name=name).first() if name else None
    if gateway is None:
        return AuthResult(protocol.CLOSE_UNKNOWN_GATEWAY)
    if not token_matches(token, gateway.token_hash):
        return AuthResult(protocol.CLOSE_WRONG_TOKEN)
    if gateway.revoked:
        return AuthResult(protocol.CLOSE_REVOKED)
    return AuthResult(None, gateway)


def token_refusal(gateway_id: int, token_hash: str) -> int | None:
    """None while a socket authenticated with ``token_hash`` may stay open; else the close
    code: revoked (4410), its token rotated or the gateway deleted (4403, 4404)."""
    from gateway.core import stream_protocol as protocol

    gateway = Gateway.objects.filter(pk=gateway_id).only("revoked", "token_hash").first()
    if gateway is None:
        return protocol.CLOSE_UNKNOWN_GATEWAY
    if gateway.revoked:
        return protocol.CLOSE_REVOKED
    if gateway.token_hash != token_hash:
        return protocol.CLOSE_WRONG_TOKEN
    return None


def connected(gateway_id: int, change: int, frames_in: int = 0) -> dict:
    """A socket of the gateway opened (+1) or closed (-1, with the frames it received since
    its last status)."""
    with transaction.atomic():
        updates = {
            "connections": F("connections") + change,
            "frames_in": F("frames_in") + frames_in,
        }
        if change > 0:
            updates["last_seen"] = timezone.now()
        Gateway.objects.filter(pk=gateway_id).update(**updates)
        gateway = Gateway.objects.get(pk=gateway_id)
        if gateway.connections < 0:  # a worker that died never said goodbye; heal
            gateway.connections = 0
            gateway.save(update_fields=["connections"])
    return summary(gateway)


def save_status(gateway_id: int, status: dict, frames_in: int) -> dict:
    rate = status.get("sample_rate")
    with transaction.atomic():
        gateway = Gateway.objects.select_for_update().only("rate_history").get(pk=gateway_id)
        rates = [*gateway.rate_history, rate if isinstance(rate, int | float) else None]
        Gateway.objects.filter(pk=gateway_id).update(
            last_status=status,
            last_seen=timezone.now(),
            frames_in=F("frames_in") + frames_in,
            rate_history=rates[-display.RATE_HISTORY :],
        )
    return summary(Gateway.objects.get(pk=gateway_id))


def count_rejection(gateway_id: int | None, reason: str) -> None:
    counters.COUNTERS.add(counters.REJECTED[reason])
    if gateway_id is None:
        return
    with transaction.atomic():
        gateway = Gateway.objects.select_for_update().get(pk=gateway_id)
        gateway.messages_rejected += 1
        gateway.rejected_by_reason[reason] = gateway.rejected_by_reason.get(reason, 0) + 1
        gateway.save(update_fields=["messages_rejected", "rejected_by_reason"])


def gateway_for_viewer(name: str) -> dict | None:
    gateway = Gateway.objects.filter(name=name).first()
    return None if gateway is None else summary(gateway)


def tell_open_sockets(name: str) -> str | None:
    """Ask the gateway's open ingest sockets, in every worker the channel layer reaches, to
    check their token now (after a revocation or rotation). None when told; else why not (the
    sockets still check by themselves every ``TOKEN_CHECK_SECONDS``)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from web.live import local

    if local.enabled():
        return "the in-memory channel layer does not reach the site's process"
    try:
        async_to_sync(get_channel_layer().group_send)(
            ingest_group(name), {"type": "ingest.token_changed"}
        )
    except Exception as error:  # Redis away
        return f"the channel layer did not take the message: {error}"
    return None
