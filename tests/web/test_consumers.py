"""The sockets through Channels' WebsocketCommunicator, with the real middleware stack."""

import asyncio
import json
import math
import struct
from unittest.mock import patch

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import override_settings

from gateway.core.stream_protocol import decode_binary_frame, encode_binary_frame
from web.asgi import application
from web.fleet.counters import COUNTERS
from web.fleet.models import Gateway
from web.fleet.tokens import hash_token

TOKEN = "fgt_test-token-of-gateway-one-0123456789"
ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")  # every browser sends it; the Origin check compares the two


def register(name="gw1", token=TOKEN, revoked=False) -> Gateway:
    return Gateway.objects.create(name=name, token_hash=hash_token(token), revoked=revoked)


def session_cookie(username="ann") -> tuple[bytes, bytes]:
    user = get_user_model().objects.create_user(username, password="pw-of-ann-1234")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return (b"cookie", f"sessionid={session.session_key}".encode())


def gateway_socket(name="gw1", token=TOKEN) -> WebsocketCommunicator:
    headers = []
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if name is not None:
        headers.append((b"x-fieldgate-gateway", name.encode()))
    return WebsocketCommunicator(application, "/ws/ingest/", headers=headers)


def viewer_socket(cookie, name="gw1", origin=ORIGIN) -> WebsocketCommunicator:
    headers = [h for h in (cookie, origin, HOST) if h is not None]
    return WebsocketCommunicator(application, f"/ws/live/{name}/", headers=headers)


def frame(first: int, last: int, value: float = 1.0) -> dict:
    count = last - first + 1
    return {
        "type": "frame",
        "seq": [first, last],
        "received_at": 100.0,
        "sent_at": 100.5,
        "samples": count,
        "t": [first / 1000 + i / 1000 for i in range(count)],
        "min": [[value] * count, [-value] * count],
        "max": [[value] * count, [-value] * count],
    }


async def closed_with(socket: WebsocketCommunicator) -> tuple[int, str]:
    """Connect (the site accepts first, then closes with a code); return code and reason."""
    connected, _ = await socket.connect()
    assert connected
    while True:
        output = await socket.receive_output(2)
        if output["type"] == "websocket.close":
            return output["code"], output.get("reason", "")


async def connected_gateway(name="gw1") -> WebsocketCommunicator:
    socket = gateway_socket(name)
    connected, _ = await socket.connect()
    assert connected
    welcome = await socket.receive_json_from()
    assert welcome == {
        "type": "welcome",
        "max_message_bytes": 256 * 1024,
        "frame_encodings": ["json", "binary"],
    }
    return socket


async def connected_viewer(cookie, name="gw1") -> tuple[WebsocketCommunicator, dict]:
    socket = viewer_socket(cookie, name)
    connected, _ = await socket.connect()
    assert connected
    hello = await socket.receive_json_from()
    assert hello["type"] == "hello"
    return socket, hello


# -- gateway authentication ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "token", "code", "reason"),
    [
        ("gw1", None, 4401, "missing token"),
        ("gw1", "fgt_not-the-right-token", 4403, "wrong token"),
        ("nobody", TOKEN, 4404, "unknown gateway"),
        (None, TOKEN, 4404, "unknown gateway"),
    ],
)
def test_a_gateway_without_a_valid_token_is_refused_with_a_clear_code(name, token, code, reason):
    register()
    assert asyncio.run(closed_with(gateway_socket(name, token))) == (code, reason)
    assert COUNTERS[f"ingest_refused_{reason.replace(' ', '_')}"] == 1


def test_a_revoked_token_is_refused_with_4410():
    register(revoked=True)
    assert asyncio.run(closed_with(gateway_socket())) == (4410, "token revoked")


def test_the_token_is_stored_only_as_a_hash():
    gateway = register()
    assert TOKEN not in gateway.token_hash and len(gateway.token_hash) == 64


def test_a_connected_gateway_shows_online_and_offline_after_it_leaves():
    register()

    async def scenario():
        socket = await connected_gateway()
        during = await database_sync_to_async(Gateway.objects.get)(name="gw1")
        await socket.disconnect()
        after = await database_sync_to_async(Gateway.objects.get)(name="gw1")
        return during, after

    during, after = asyncio.run(scenario())
    assert during.connections == 1 and during.last_seen is not None
    assert after.connections == 0


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        ("not json", 4400, "not JSON: Expecting value: line 1 column 1 (char 0)"),
        ("[1, 2]", 4400, "a message must be a JSON object, got list"),
        ('{"type": "video"}', 4400, "unknown message type 'video'"),
        (
            json.dumps({**frame(0, 2), "min": [[1.0, 1.0], [1.0, 1.0, 1.0]]}),
            4400,
            "frame: min[0] has 2 values, 't' has 3 buckets",
        ),
        (json.dumps({**frame(0, 2), "seq": [5, 2]}), 4400, None),
        ('{"type": "frame", "seq": [0, 0]}', 4400, None),
        (json.dumps(frame(0, 2)).replace("100.5", "NaN"), 4400, None),
        (" " * (256 * 1024 + 1), 4413, "message of 262145 bytes exceeds 262144"),
        (
            json.dumps({"type": "hello", "protocol": 1, "gateway": "other"}),
            4400,
            "hello: gateway 'other' is not this token's 'gw1'",
        ),
    ],
)
def test_a_bad_message_closes_the_socket_with_a_reason_and_is_counted(message, code, reason):
    register()

    async def scenario():
        socket = await connected_gateway()
        await socket.send_to(text_data=message)
        output = await socket.receive_output(2)
        return output

    output = asyncio.run(scenario())
    assert output["type"] == "websocket.close" and output["code"] == code
    if reason is not None:
        assert output["reason"] == reason
    assert output["reason"]
    gateway = Gateway.objects.get(name="gw1")
    kind = "too_large" if code == 4413 else "malformed"
    assert gateway.messages_rejected == 1
    assert gateway.rejected_by_reason == {kind: 1}
    assert COUNTERS[f"ingest_rejected_{kind}"] == 1


def binary_frame(first: int, last: int, value: float = 1.0) -> bytes:
    """``frame(first, last, value)`` as a binary message."""
    message = frame(first, last, value)
    head = {k: v for k, v in message.items() if k not in ("t", "min", "max")}
    return encode_binary_frame(head, message["t"], message["min"], message["max"])


@pytest.mark.parametrize(
    ("data", "code", "reason"),
    [
        (b"\x00\x01", 4400, "binary frame: 2 bytes is too short"),
        (b"FGF1" + bytes(12), 4400, "binary frame: header is not JSON"),
        (
            binary_frame(0, 9)[:-1],
            4400,
            "binary frame: 511 bytes, 10 buckets x 2 channels make 512",
        ),
        (binary_frame(0, 1)[:-8] + struct.pack("<d", math.nan), 4400, "binary frame: values must"),
        (binary_frame(0, 9_999), 4413, "message of 400120 bytes exceeds 262144"),
    ],
)
def test_a_bad_binary_message_is_refused_with_its_reason(data, code, reason):
    register()

    async def scenario():
        socket = await connected_gateway()
        await socket.send_to(bytes_data=data)
        return await socket.receive_output(2)

    output = asyncio.run(scenario())
    assert output["code"] == code and output["reason"].startswith(reason)


def test_binary_frames_reach_viewers_as_sent_beside_json_ones():
    """In this process (the in-memory layer's direct fan-out) and through the layer (a worker
    elsewhere): the bytes the gateway sent, in order with its JSON frames."""
    register()
    cookie = session_cookie()

    async def scenario():
        viewer, _ = await connected_viewer(cookie)
        gateway = await connected_gateway()
        await gateway.send_to(bytes_data=binary_frame(0, 9))
        await gateway.send_json_to(frame(10, 19))
        await gateway.send_to(bytes_data=binary_frame(20, 29, value=2.5))
        got = [await viewer.receive_output(2) for _ in range(3)]
        for socket in (viewer, gateway):
            await socket.disconnect()
        return got

    for local_fan_out in (True, False):
        with patch("web.live.local.enabled", return_value=local_fan_out):
            got = asyncio.run(scenario())
        assert got[0]["bytes"] == binary_frame(0, 9)
        assert json.loads(got[1]["text"])["seq"] == [10, 19]
        assert decode_binary_frame(got[2]["bytes"]) == frame(20, 29, value=2.5)


# -- viewers ---------------------------------------------------------------------------------


def test_viewers_must_log_in_and_come_from_an_allowed_origin():
    register()
    cookie = session_cookie()

    async def scenario():
        anonymous = await closed_with(viewer_socket(None))
        foreign = viewer_socket(cookie, origin=(b"origin", b"http://evil.example"))
        refused, _ = await foreign.connect()
        unknown = await closed_with(viewer_socket(cookie, name="nobody"))
        return anonymous, refused, unknown

    anonymous, refused, unknown = asyncio.run(scenario())
    assert anonymous == (4402, "log in to view")
    assert refused is False
    assert unknown == (4404, "unknown gateway")


def test_frames_fan_out_to_every_viewer_of_that_gateway_only():
    register()
    register("gw2", token="fgt_another-token-0123456789")
    cookie = session_cookie()

    async def scenario():
        first, hello = await connected_viewer(cookie)
        second, _ = await connected_viewer(cookie)
        other, _ = await connected_viewer(cookie, name="gw2")
        gateway = await connected_gateway()
        await gateway.send_json_to(frame(0, 9))
        await gateway.send_json_to(frame(10, 19))
        got = [[await v.receive_json_from() for _ in range(2)] for v in (first, second)]
        nothing = await other.receive_nothing(0.2)
        for socket in (first, second, other, gateway):
            await socket.disconnect()
        return hello, got, nothing

    hello, got, nothing = asyncio.run(scenario())
    assert hello["gateway"]["name"] == "gw1" and hello["window"] == 64
    for received in got:
        assert [m["seq"] for m in received] == [[0, 9], [10, 19]]
        assert received[0] == frame(0, 9)
    assert nothing


def test_status_reaches_the_fleet_page_and_the_database():
    register()
    cookie = session_cookie()
    status = {
        "reader": {"mode": "full", "next_seq": 5000, "counters": {"rows_rejected": 3}},
        "stream": {"rows_dropped": 0, "frames_dropped": 2},
        "sample_rate": 1000.0,
        "channels": None,
        "disk_free": 123456789,
        "upload_backlog": {"batches": 4, "bytes": 4096},
    }

    async def scenario():
        fleet = WebsocketCommunicator(application, "/ws/fleet/", headers=[cookie, ORIGIN, HOST])
        assert (await fleet.connect())[0]
        assert (await fleet.receive_json_from())["type"] == "hello"
        gateway = await connected_gateway()
        online = await fleet.receive_json_from()
        await gateway.send_json_to({"type": "status", "at": 1.0, "status": status})
        updated = await fleet.receive_json_from()
        await gateway.disconnect()
        await fleet.disconnect()
        return online, updated

    online, updated = asyncio.run(scenario())
    assert online["type"] == "gateways" and online["rows"][0]["online"] is True
    row = updated["rows"][0]
    assert (row["name"], row["online"], row["sample_rate"], row["rejects"]) == (
        "gw1",
        True,
        1000.0,
        3,
    )
    assert row["disk_free"] == 123456789
    assert row["upload_backlog"] == {"batches": 4, "bytes": 4096}
    assert Gateway.objects.get(name="gw1").last_status == status


@pytest.fixture
def small_windows():
    """Viewer flow control small enough to exercise with a few hundred frames."""
    small = {"VIEWER_WINDOW": 16, "VIEWER_PENDING": 4, "VIEWER_ACK_EVERY": 4}
    with override_settings(FIELDGATE={**settings.FIELDGATE, **small}):
        yield


@pytest.mark.usefixtures("small_windows")
def test_a_viewer_that_stops_reading_costs_a_bounded_queue_and_every_drop_is_counted():
    register()
    cookie = session_cookie()
    frames = 200

    async def scenario():
        stalled, hello = await connected_viewer(cookie)  # hello: 1 of the window of 16
        gateway = await connected_gateway()
        for number in range(frames):
            await gateway.send_json_to(frame(number * 10, number * 10 + 9))
        for _ in range(200):  # until the viewer's handler has seen every frame
            if COUNTERS["viewer_frames_dropped"] == frames - 15 - 4:
                break
            await asyncio.sleep(0.01)
        waiting = stalled.output_queue.qsize()  # what the server handed to the socket
        first = [await stalled.receive_json_from() for _ in range(15)]
        await stalled.send_json_to({"type": "ack", "received": 16})
        after = [await stalled.receive_json_from() for _ in range(5)]
        quiet = await stalled.receive_nothing(0.2)
        await gateway.disconnect()
        await stalled.disconnect()
        return hello, waiting, first, after, quiet

    hello, waiting, first, after, quiet = asyncio.run(scenario())
    assert hello["window"] == 16 and hello["ack_every"] == 4
    assert waiting == 15  # the window, not 200
    assert [m["seq"][0] for m in first] == [n * 10 for n in range(15)]
    dropped = frames - 15 - 4
    assert after[0] == {"type": "dropped", "frames": dropped, "lost_upstream": 0}
    # The newest frames, not the oldest: a viewer that falls behind gets fresh data.
    assert [m["seq"][0] for m in after[1:]] == [n * 10 for n in range(frames - 4, frames)]
    assert quiet
    assert COUNTERS["viewer_frames_dropped"] == dropped


def test_frames_the_channel_layer_lost_are_counted_from_the_numbering():
    register()
    cookie = session_cookie()

    async def scenario():
        viewer, _ = await connected_viewer(cookie)
        layer = get_channel_layer()
        text = json.dumps(frame(0, 0))
        for number in (1, 2, 6):  # 3, 4 and 5 never arrived
            message = {"type": "live.frame", "connection": "c1", "n": number, "text": text}
            await layer.group_send("live.gw1", message)
        received = [await viewer.receive_json_from() for _ in range(4)]
        await viewer.disconnect()
        return received

    received = asyncio.run(scenario())
    kinds = [m["type"] for m in received]
    assert kinds == ["frame", "frame", "dropped", "frame"]
    assert received[2] == {"type": "dropped", "frames": 3, "lost_upstream": 3}
    assert COUNTERS["viewer_frames_lost_upstream"] == 3


def test_a_viewer_that_sends_anything_but_acks_is_closed():
    register()
    cookie = session_cookie()

    async def scenario():
        viewer, _ = await connected_viewer(cookie)
        await viewer.send_to(text_data="hello?")
        return await viewer.receive_output(2)

    output = asyncio.run(scenario())
    assert (output["code"], output["reason"]) == (4400, 'expected {"type": "ack"}')


def test_a_gateway_nobody_watches_is_told_to_pause_and_a_viewer_resumes_it():
    """No live view renewed its watch for 3 x WATCH_SECONDS: the next message from the gateway
    is answered with "watch": false; a viewer opening answers "watch": true at once; a view
    left open keeps renewing (no pause); when it closes the pause comes again."""
    register()
    cookie = session_cookie()

    async def next_watch(gateway) -> dict:
        await gateway.send_json_to(frame(0, 0))
        return await gateway.receive_json_from(2)

    async def scenario():
        gateway = await connected_gateway()
        early = await gateway.receive_nothing(0.1)  # inside the first lease: no message
        await gateway.send_json_to(frame(0, 0))
        quiet_at_first = await gateway.receive_nothing(0.1)
        await asyncio.sleep(0.35)  # the lease (3 x 0.1 s) passes with no viewer
        paused = await next_watch(gateway)
        viewer, _ = await connected_viewer(cookie)
        resumed = await gateway.receive_json_from(2)
        for _ in range(6):  # 0.6 s: twice the lease, the open view renewing it
            await asyncio.sleep(0.1)
            await gateway.send_json_to(frame(0, 0))
        kept = await gateway.receive_nothing(0.1)
        await viewer.disconnect()
        await asyncio.sleep(0.35)
        paused_again = await next_watch(gateway)
        await gateway.disconnect()
        return early, quiet_at_first, paused, resumed, kept, paused_again

    with override_settings(FIELDGATE={**settings.FIELDGATE, "WATCH_SECONDS": 0.1}):
        early, quiet_at_first, paused, resumed, kept, paused_again = asyncio.run(scenario())
    assert early and quiet_at_first
    assert paused == {"type": "watch", "watched": False}
    assert resumed == {"type": "watch", "watched": True}
    assert kept
    assert paused_again == {"type": "watch", "watched": False}
