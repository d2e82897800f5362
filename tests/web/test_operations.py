"""/healthz and /metrics through Django's test client, the gateway profile's real database,
channel layer and counter store."""

import asyncio

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client as DjangoClient
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from tests.web.test_consumers import (
    HOST,
    ORIGIN,
    closed_with,
    connected_gateway,
    frame,
    gateway_socket,
    register,
    session_cookie,
)
from web.asgi import application
from web.fleet.counters import COUNTERS


def Client(**defaults) -> DjangoClient:  # noqa: N802 - reads as the class it makes
    """A test client that names a host the site serves (ALLOWED_HOSTS)."""
    return DjangoClient(HTTP_HOST="localhost", **defaults)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus text as {(name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_healthz_answers_200_without_login_when_database_and_layer_answer():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}
    assert "no-cache" in response["Cache-Control"]


@override_settings(
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:9/0"]},  # the discard port: nobody there
        }
    }
)
def test_healthz_answers_503_and_names_the_channel_layer_when_it_does_not_answer():
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "failing", "database": "ok", "channel_layer": "failed"}


def test_metrics_are_prometheus_text_with_the_sites_names():
    register()
    register("gw2", token="fgt_another-token-0123456789", revoked=True)

    async def scenario():
        gateway = await connected_gateway()
        for first in range(0, 30, 10):
            await gateway.send_json_to(frame(first, first + 9))
        await gateway.disconnect()  # the frames since the last status are saved here
        await closed_with(gateway_socket(token="fgt_not-the-right-token"))
        await closed_with(gateway_socket(token="fgt_not-the-right-token"))

    asyncio.run(scenario())
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    found = samples(response.content.decode())
    assert found[("fieldgate_gateways", (("state", "offline"),))] == 1
    assert found[("fieldgate_gateways", (("state", "online"),))] == 0
    assert found[("fieldgate_gateways", (("state", "revoked"),))] == 1
    assert found[("fieldgate_frames_received_total", (("gateway", "gw1"),))] == 3
    assert found[("fieldgate_ingest_frames_total", ())] == 3
    refused = "fieldgate_ingest_connections_refused_total"
    assert found[(refused, (("reason", "wrong_token"),))] == 2
    assert found[(refused, (("reason", "token_revoked"),))] == 0
    for kind in ("malformed", "too_large"):
        assert found[("fieldgate_ingest_messages_rejected_total", (("reason", kind),))] == 0
    for cause in ("held_back", "lost_upstream"):
        assert found[("fieldgate_viewer_frames_dropped_total", (("cause", cause),))] == 0
    assert COUNTERS.local["ingest_refused_wrong_token"] == 2


def test_metrics_are_refused_to_other_hosts_and_to_proxied_requests():
    remote = Client(REMOTE_ADDR="192.0.2.7").get("/metrics")
    assert remote.status_code == 403
    assert b"FIELDGATE_WEB_METRICS_TOKEN" in remote.content
    proxied = Client().get("/metrics", headers={"X-Forwarded-For": "192.0.2.7"})
    assert proxied.status_code == 403


@override_settings(FIELDGATE_METRICS_TOKEN="metrics-token-0123456789")
def test_with_a_token_set_metrics_need_it_from_anywhere():
    remote = Client(REMOTE_ADDR="192.0.2.7")
    bearer = {"Authorization": "Bearer metrics-token-0123456789"}
    assert remote.get("/metrics", headers=bearer).status_code == 200
    wrong = remote.get("/metrics", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert Client().get("/metrics").status_code == 401  # local, but without the token


def test_the_fleet_json_needs_a_login():
    response = Client().get("/fleet/gateways.json")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_alerts_reach_the_fleet_socket_the_fleet_json_and_metrics():
    register()
    cookie = session_cookie()
    status = {
        "reader": {
            "port_open": True,
            "storing": True,
            "rejection_alert": None,
            "clock": {"synced": False, "source": "adjtimex"},
        },
        "sample_rate": 500.0,
        "disk_free": 100 * 1048576,
        "disk_total": 10_000 * 1048576,
        "upload_backlog": {"batches": 9, "bytes": 9000, "oldest_at": 1.0, "age_seconds": 7300.0},
        "uploader": None,
    }

    def over_http() -> tuple[list, str, str]:
        client = Client()
        client.force_login(get_user_model().objects.get(username="ann"))
        rows = client.get("/fleet/gateways.json").json()["rows"]
        return rows, client.get("/").content.decode(), Client().get("/metrics").content.decode()

    async def scenario():
        fleet = WebsocketCommunicator(application, "/ws/fleet/", headers=[cookie, ORIGIN, HOST])
        assert (await fleet.connect())[0]
        await fleet.receive_json_from()  # hello
        gateway = await connected_gateway()
        online = await fleet.receive_json_from()
        await gateway.send_json_to({"type": "status", "at": 1.0, "status": status})
        updated = await fleet.receive_json_from()
        seen = await sync_to_async(over_http)()  # while the gateway is online
        await gateway.disconnect()
        await fleet.disconnect()
        return online, updated, seen

    online, updated, (rows, page, metrics_text) = asyncio.run(scenario())
    assert online["rows"][0]["alerts"] == []  # no status yet: nothing to flag
    alerts = updated["rows"][0]["alerts"]
    assert [(a["name"], a["severity"], a["label"]) for a in alerts] == [
        ("disk_low", "warning", "disk low"),
        ("upload_backlog_old", "warning", "upload backlog old"),
        ("clock_unsynchronized", "warning", "clock unsynchronized"),
    ]
    assert alerts[0]["text"] == "100 MiB free (1% of the disk)"
    assert rows[0]["alerts"] == alerts
    assert 'data-alert="disk_low"' in page and 'id="fleet-rows"' in page
    found = samples(metrics_text)
    flagged = {
        dict(labels)["alert"]
        for (name, labels), value in found.items()
        if name == "fieldgate_gateway_alert" and value == 1
    }
    assert flagged == {"disk_low", "upload_backlog_old", "clock_unsynchronized"}


def test_the_monitoring_docs_list_exactly_the_sites_metrics():
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs/monitoring/README.md"
    table = docs.read_text().split("## The site's metrics", 1)[1]
    documented = set(re.findall(r"^\| `(fieldgate_[a-z_]+)", table, re.M))
    exported = {
        family.name
        for family in text_string_to_metric_families(Client().get("/metrics").content.decode())
    }
    exported = {name + "_total" if name + "_total" in documented else name for name in exported}
    assert documented == exported
