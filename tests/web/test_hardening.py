"""Issue 17's probes against the site, through Channels' WebsocketCommunicator and Django's
test client with the real middleware: each refusal has its code, its log line and its count,
and every socket's clean-up runs."""

import asyncio
import logging
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.test import Client, override_settings

from tests.web.test_consumers import (
    closed_with,
    connected_gateway,
    connected_viewer,
    gateway_socket,
    register,
    session_cookie,
)
from web.asgi import application
from web.fleet import status as fleet
from web.fleet.counters import COUNTERS
from web.fleet.models import Gateway
from web.live import local
from web.security.limits import forget_local_refusals


@pytest.fixture(autouse=True)
def fresh_limits():
    caches["limits"].clear()
    forget_local_refusals()
    # The limits are under test, not PBKDF2: a fast hasher keeps 25 logins under a second.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield
    caches["limits"].clear()
    forget_local_refusals()


def connections() -> int:
    return Gateway.objects.get(name="gw1").connections


async def next_close(socket: WebsocketCommunicator, timeout: float = 2) -> tuple[int, str]:
    while True:
        output = await socket.receive_output(timeout)
        if output["type"] == "websocket.close":
            return output["code"], output.get("reason", "")


# -- messages bounded before parsing ----------------------------------------------------------


def test_deep_nesting_closes_the_ingest_socket_with_4400_and_its_clean_up_runs():
    register()

    async def scenario():
        socket = await connected_gateway()
        during = await database_sync_to_async(connections)()
        await socket.send_to(text_data="[" * 100_000)
        closed = await next_close(socket)
        await socket.disconnect()  # what the server sends once the close is done
        return during, closed

    during, closed = asyncio.run(scenario())
    assert during == 1
    assert closed == (4400, "arrays or objects nested deeper than 32 levels")
    assert connections() == 0
    assert COUNTERS["ingest_rejected_malformed"] == 1


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        ("[" * 100_000, 4413, "message of 100000 bytes exceeds 1024"),
        ("[" * 500, 4400, 'expected {"type": "ack"}'),
        ('{"type": "ack", "received": [[[1]]]}', 4400, 'expected {"type": "ack"}'),
    ],
)
def test_a_viewers_bad_message_closes_it_with_a_code_and_unregisters_it(message, code, reason):
    register()
    cookie = session_cookie()

    async def scenario():
        before = set(local.VIEWERS["gw1"])  # other tests' viewers may linger in the process
        viewer, _ = await connected_viewer(cookie)
        registered = set(local.VIEWERS["gw1"]) - before
        await viewer.send_to(text_data=message)
        closed = await next_close(viewer)
        await viewer.disconnect()
        return registered, closed, set(local.VIEWERS["gw1"]) - before

    registered, closed, left = asyncio.run(scenario())
    assert len(registered) == 1
    assert closed == (code, reason)
    assert left == set()
    assert COUNTERS["viewer_rejected"] == 1


def test_an_error_in_a_consumer_is_logged_closes_with_1011_and_still_cleans_up(monkeypatch, caplog):
    register()

    def broken(*args):
        raise RuntimeError("the database said no")

    monkeypatch.setattr(fleet, "save_status", broken)

    async def scenario():
        socket = await connected_gateway()
        await socket.send_json_to({"type": "status", "at": 1.0, "status": {}})
        closed = await next_close(socket)
        await socket.disconnect()
        return closed

    with caplog.at_level(logging.ERROR, logger="web.consumers"):
        closed = asyncio.run(scenario())
    assert closed[0] == 1011
    assert connections() == 0
    assert COUNTERS["consumer_errors"] == 1
    (record,) = [r for r in caplog.records if r.getMessage() == "consumer_error"]
    assert record.exc_info[1].args == ("the database said no",)
    assert record.fields["consumer"] == "IngestConsumer"


# -- a flood of wrong tokens -----------------------------------------------------------------


def from_client(socket: WebsocketCommunicator, address: str) -> WebsocketCommunicator:
    socket.scope["client"] = (address, 40000)
    return socket


@override_settings(INGEST_FAILURES_PER_CLIENT=5)
def test_a_client_over_its_failure_limit_is_refused_before_any_token_check(monkeypatch):
    register()
    checked = []
    authenticate = fleet.authenticate
    monkeypatch.setattr(fleet, "authenticate", lambda *a: checked.append(a) or authenticate(*a))

    async def scenario():
        wrong = [
            await closed_with(from_client(gateway_socket(token="fgt_wrong-0123456789"), "10.0.0.9"))
            for _ in range(7)
        ]
        # Even the right token: the address is refused before anything is looked up.
        right_there = await closed_with(from_client(gateway_socket(), "10.0.0.9"))
        elsewhere = from_client(gateway_socket(), "10.0.0.7")
        connected, _ = await elsewhere.connect()
        welcome = await elsewhere.receive_json_from()
        await elsewhere.disconnect()
        return wrong, right_there, welcome

    wrong, right_there, welcome = asyncio.run(scenario())
    assert wrong == [(4403, "wrong token")] * 5 + [(4429, "too many failed attempts")] * 2
    assert right_there == (4429, "too many failed attempts")
    assert welcome["type"] == "welcome"
    assert len(checked) == 6  # five wrong tokens and the other address's right one
    assert COUNTERS["ingest_refused_too_many_failed_attempts"] == 3
    assert COUNTERS["ingest_refused_wrong_token"] == 5


# -- revocation and rotation close open sockets -----------------------------------------------


@pytest.mark.parametrize(
    ("change", "code", "reason"),
    [({"revoked": True}, 4410, "token revoked"), ({"token_hash": "0" * 64}, 4403, "wrong token")],
)
def test_an_open_socket_closes_when_its_token_is_revoked_or_rotated(change, code, reason):
    register()

    async def scenario():
        socket = await connected_gateway()
        await database_sync_to_async(Gateway.objects.filter(name="gw1").update)(**change)
        loop = asyncio.get_running_loop()
        began = loop.time()
        closed = await next_close(socket, timeout=5)
        took = loop.time() - began
        await socket.disconnect()
        return closed, took

    with override_settings(FIELDGATE={**settings.FIELDGATE, "TOKEN_CHECK_SECONDS": 1}):
        closed, took = asyncio.run(scenario())
    assert closed == (code, reason)
    assert took < 2.5
    assert connections() == 0
    assert COUNTERS["ingest_closed_token_invalid"] == 1


def test_the_channel_layer_closes_a_revoked_gateways_sockets_at_once():
    register()

    async def scenario():
        socket = await connected_gateway()
        await database_sync_to_async(Gateway.objects.filter(name="gw1").update)(revoked=True)
        await get_channel_layer().group_send(
            fleet.ingest_group("gw1"), {"type": "ingest.token_changed"}
        )
        closed = await next_close(socket, timeout=0.5)  # long before the 3 s check
        await socket.disconnect()
        return closed

    assert asyncio.run(scenario()) == (4410, "token revoked")


# -- the Origin check: scheme, host and port ---------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (b"http://localhost:8001", b"localhost:8000"),  # another port of the same host
        (b"https://localhost", b"localhost"),  # another scheme
        (b"http://evil.example", b"localhost"),
        (b"http://evil.example", b"evil.example"),  # a host the site does not serve
    ],
)
def test_a_socket_from_another_origin_is_refused_at_the_handshake(origin, host):
    register()
    cookie = session_cookie()

    async def scenario():
        headers = [cookie, (b"origin", origin), (b"host", host)]
        socket = WebsocketCommunicator(application, "/ws/fleet/", headers=headers)
        connected, _ = await socket.connect()
        return connected

    assert asyncio.run(scenario()) is False
    assert COUNTERS["viewer_refused_origin"] == 1


def test_the_same_origin_with_its_port_is_allowed():
    register()
    cookie = session_cookie()

    async def scenario():
        headers = [cookie, (b"origin", b"http://localhost:8000"), (b"host", b"localhost:8000")]
        socket = WebsocketCommunicator(application, "/ws/fleet/", headers=headers)
        connected, _ = await socket.connect()
        await socket.disconnect()
        return connected

    assert asyncio.run(scenario()) is True


# -- login ------------------------------------------------------------------------------------


def login(client: Client, password: str):
    return client.post("/accounts/login/", {"username": "ann", "password": password})


def test_25_wrong_passwords_from_one_client_meet_429_and_then_the_right_one_too(caplog):
    get_user_model().objects.create_user("ann", password="pw-of-ann-1234")
    client = Client(HTTP_HOST="localhost", REMOTE_ADDR="192.0.2.1")
    with caplog.at_level(logging.WARNING, logger="web.security"):
        statuses = [login(client, f"wrong-{n}").status_code for n in range(25)]
        right = login(client, "pw-of-ann-1234")
    assert statuses == [200] * 10 + [429] * 15
    assert right.status_code == 429
    assert 1 <= int(right["Retry-After"]) <= 900
    assert b"Too many failed logins" in right.content
    assert COUNTERS["login_failed"] == 10 and COUNTERS["login_refused_rate_limited"] == 16
    refusal = [r for r in caplog.records if r.getMessage() == "login_refused"][0]
    assert refusal.fields["limit"] == "client" and refusal.fields["client"] == "192.0.2.1"
    # Another client logs in to the same account: the account is under its own limit.
    assert (
        login(Client(HTTP_HOST="localhost", REMOTE_ADDR="192.0.2.2"), "pw-of-ann-1234").status_code
        == 302
    )


@override_settings(LOGIN_FAILURES_PER_CLIENT=100, LOGIN_FAILURES_PER_ACCOUNT=4)
def test_an_account_is_limited_across_clients():
    get_user_model().objects.create_user("ann", password="pw-of-ann-1234")
    statuses = [
        login(Client(HTTP_HOST="localhost", REMOTE_ADDR=f"192.0.2.{n}"), "wrong").status_code
        for n in range(1, 7)
    ]
    assert statuses == [200] * 4 + [429] * 2
    assert (
        login(
            Client(HTTP_HOST="localhost", REMOTE_ADDR="198.51.100.1"), "pw-of-ann-1234"
        ).status_code
        == 429
    )


def test_a_successful_login_forgets_the_accounts_failures():
    get_user_model().objects.create_user("ann", password="pw-of-ann-1234")
    client = Client(HTTP_HOST="localhost", REMOTE_ADDR="192.0.2.1")
    assert [login(client, "wrong").status_code for _ in range(3)] == [200] * 3
    assert login(client, "pw-of-ann-1234").status_code == 302


# -- headers -----------------------------------------------------------------------------------


def test_pages_carry_a_content_security_policy_that_allows_only_this_site():
    get_user_model().objects.create_user("ann", password="pw-of-ann-1234")
    client = Client(HTTP_HOST="localhost")
    page = client.get("/accounts/login/")
    policy = page["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    client.login(username="ann", password="pw-of-ann-1234")
    assert client.get("/")["Content-Security-Policy"] == policy


def test_check_deploy_is_clean_on_the_central_profile_with_the_tls_settings(tmp_path):
    import os
    import secrets
    import subprocess
    import sys

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "web.settings.central",
        "FIELDGATE_WEB_DATA_DIR": str(tmp_path),
        "FIELDGATE_WEB_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELDGATE_WEB_ALLOWED_HOSTS": "central.example",
        "FIELDGATE_WEB_CSRF_TRUSTED_ORIGINS": "https://central.example",
        "FIELDGATE_WEB_HTTPS": "1",
        "FIELDGATE_WEB_TLS_PROXY": "1",
        "FIELDGATE_WEB_HSTS_SECONDS": "31536000",
        "FIELDGATE_WEB_HSTS_INCLUDE_SUBDOMAINS": "1",
        "FIELDGATE_WEB_HSTS_PRELOAD": "1",
    }
    script = str(Path(__file__).resolve().parents[2] / "web" / "manage.py")
    manage = [sys.executable, script, "check", "--deploy", "--fail-level", "WARNING"]
    done = subprocess.run(manage, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
    without = {k: v for k, v in env.items() if not k.startswith("FIELDGATE_WEB_H")}
    done = subprocess.run(manage, env=without, capture_output=True, text=True, timeout=60)
    for warning in ("W004", "W008", "W012", "W016"):
        assert f"security.{warning}" in done.stderr


def test_an_unreachable_limits_store_is_said_and_does_not_lock_everyone_out(caplog):
    get_user_model().objects.create_user("ann", password="pw-of-ann-1234")
    unreachable = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
    }
    from web.security import limits

    limits._unavailable_logged[0] = -limits.UNAVAILABLE_LOG_SECONDS
    with (
        override_settings(CACHES={**settings.CACHES, "limits": unreachable}),
        caplog.at_level(logging.WARNING, logger="web.security"),
    ):
        response = login(Client(HTTP_HOST="localhost"), "pw-of-ann-1234")
    assert response.status_code == 302
    (record,) = [r for r in caplog.records if r.getMessage() == "limits_unavailable"]
    assert "not limited until it does" in record.fields["hint"]


def test_a_failing_channel_layer_receive_still_closes_with_1011_and_cleans_up(monkeypatch):
    register()

    from channels.layers import InMemoryChannelLayer

    original, broken = InMemoryChannelLayer.receive, []

    async def receive(self, channel):
        if broken:
            raise TimeoutError("Timeout reading from redis")
        return await original(self, channel)

    # Before the consumer starts: it binds the layer's receive once.
    monkeypatch.setattr(InMemoryChannelLayer, "receive", receive)

    async def scenario():
        socket = await connected_gateway()
        layer = get_channel_layer()
        broken.append(True)
        # The pending receive gets this (a harmless check); the next receive fails, outside
        # any handler, as redis-py's read timeout did.
        await layer.group_send(fleet.ingest_group("gw1"), {"type": "ingest.token_changed"})
        closed = await next_close(socket)
        await socket.wait(5)  # the consumer ends by itself, its clean-up done
        return closed

    closed = asyncio.run(scenario())
    assert closed == (1011, "")
    assert connections() == 0
    assert COUNTERS["consumer_errors"] == 1


@override_settings(SECURE_SSL_REDIRECT=True)
def test_with_https_only_pages_redirect_but_probes_and_scrapes_are_answered_over_http():
    client = Client(HTTP_HOST="localhost")
    assert client.get("/accounts/login/").status_code == 301
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


@override_settings(
    ALLOWED_HOSTS=["central.example"],
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_behind_a_tls_proxy_the_https_origin_is_the_sites_own():
    register()
    cookie = session_cookie()

    async def opens(*extra) -> bool:
        headers = [cookie, (b"origin", b"https://central.example"), (b"host", b"central.example")]
        socket = WebsocketCommunicator(application, "/ws/fleet/", headers=headers + list(extra))
        connected, _ = await socket.connect()
        if connected:
            await socket.disconnect()
        return connected

    assert asyncio.run(opens((b"x-forwarded-proto", b"https"))) is True
    assert asyncio.run(opens()) is False  # the proxy did not say https: http://central.example
