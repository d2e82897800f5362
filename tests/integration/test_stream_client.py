"""The reader's stream client against a real websockets server on a free port."""

import asyncio
import json
import threading
import time

import pytest
from websockets.asyncio.server import serve

from gateway.core import stream_protocol as protocol
from gateway.core.codec import Shape
from gateway.reader import stream
from gateway.reader.stream import StreamClient
from gateway.settings import Settings
from gateway.supervise import free_port, wait_for


class RecordingSite:
    """A websockets server in its own thread: records what gateways send, or refuses them."""

    def __init__(
        self, port: int, refuse_with: int | None = None, frame_encodings: list | str | None = None
    ) -> None:
        self.port = port
        self.refuse_with = refuse_with
        # None: a site from before binary frames; "never": one that sends no welcome at all
        self.frame_encodings = frame_encodings
        self.messages: list[dict] = []
        self.binary_messages = 0
        self.headers: list[dict] = []
        self.connections = 0
        self.sockets: list = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> "RecordingSite":
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _handler(self, socket) -> None:
        self.connections += 1
        self.headers.append(socket.request.headers)
        if self.refuse_with is not None:
            await socket.close(self.refuse_with, "wrong token")
            return
        self.sockets.append(socket)
        welcome = {"type": "welcome", "max_message_bytes": 262144}
        if self.frame_encodings is not None:
            welcome["frame_encodings"] = self.frame_encodings
        if self.frame_encodings != "never":
            await socket.send(json.dumps(welcome))
        async for data in socket:
            if isinstance(data, bytes):
                self.binary_messages += 1
                protocol.check_binary_frame(data)
                self.messages.append(protocol.decode_binary_frame(data))
            else:
                self.messages.append(protocol.parse_message(data))

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", self.port):
            self._ready.set()
            await self._stop.wait()

    def say(self, message: dict) -> None:
        """Send ``message`` to the gateway on its newest connection."""
        send = self.sockets[-1].send(json.dumps(message))
        asyncio.run_coroutine_threadsafe(send, self._loop).result(5)

    def frames(self) -> list[dict]:
        return [m for m in list(self.messages) if m["type"] == "frame"]

    def seqs(self) -> list[int]:
        return [s for f in self.frames() for s in range(f["seq"][0], f["seq"][1] + 1)]


CSV_SEQ = Shape("csv-seq", ("n", "t", "ch0", "ch1"), counter_field=0, time_field=1)


def client_settings(port: int, **changes) -> Settings:
    values = {
        "gateway_id": "gw-test",
        "mode": "demo",
        "line_format": "csv-seq",
        "stream_url": f"ws://127.0.0.1:{port}/ws/ingest/",
        "stream_token": "fgt_secret",
        "stream_frame_rate": 50.0,
        "stream_heartbeat_seconds": 0.2,
        "stream_reconnect_max_seconds": 1.0,
    }
    return Settings(**{**values, **changes})


def records(first: int, count: int) -> list[bytes]:
    return [b"%d,%.6f,%d,%d" % (n, n / 1000, n % 7, -n) for n in range(first, first + count)]


@pytest.mark.parametrize("encodings", [None, ["json", "binary"], ["json"]])
def test_frames_cover_every_published_seq_and_heartbeats_carry_the_status(encodings):
    """Binary frames where the site offers them; JSON frames to a site that does not (one
    from before them) or offers JSON only: the same frames either way."""
    port = free_port()
    site = RecordingSite(port, frame_encodings=encodings).start()
    client = StreamClient(client_settings(port)).start()
    try:
        client.publish_status({"service": "reader", "next_seq": 42})
        for first in range(0, 5000, 50):
            client.publish(first, records(first, 50), received_at=time.time(), shape=CSV_SEQ)
        wait_for(lambda: len(site.seqs()) == 5000, 20, message="frames up to seq 4999")
        wait_for(
            lambda: any(m["type"] == "status" for m in site.messages), 5, message="a heartbeat"
        )
    finally:
        client.close()
        site.stop()
    assert site.seqs() == list(range(5000))
    assert site.messages[0] == {
        "type": "hello",
        "protocol": 1,
        "gateway": "gw-test",
        "format": "csv-seq",
        "frame_rate": 50.0,
        "points_per_second": 500.0,
    }
    assert site.headers[0]["Authorization"] == "Bearer fgt_secret"
    assert site.headers[0]["X-Fieldgate-Gateway"] == "gw-test"
    status = [m for m in site.messages if m["type"] == "status"][-1]["status"]
    assert status["reader"] == {"service": "reader", "next_seq": 42}
    assert status["stream"]["rows_in"] == 5000
    # 1 kHz of device time into 500 buckets/s: two samples per bucket, min/max kept.
    assert sum(len(f["t"]) for f in site.frames()) == 2500
    assert max(max(f["max"][0]) for f in site.frames()) == 6
    counters = client.counters()
    assert counters["frames_built"] == counters["frames_sent"] > 0
    assert counters["rows_dropped"] == counters["frames_dropped"] == 0
    binary = encodings is not None and "binary" in encodings
    assert site.binary_messages == (len(site.frames()) if binary else 0)
    assert counters["frame_encoding"] == ("binary" if binary else "json")
    assert status["stream"]["frame_encoding"] == counters["frame_encoding"]


def test_frames_wait_for_the_welcome_a_while_then_go_as_json(monkeypatch, caplog):
    monkeypatch.setattr(stream, "WELCOME_SECONDS", 0.5)
    port = free_port()
    site = RecordingSite(port, frame_encodings="never").start()
    client = StreamClient(client_settings(port)).start()
    try:
        client.publish(0, records(0, 50), received_at=time.time(), shape=CSV_SEQ)
        wait_for(lambda: site.seqs() == list(range(50)), 10, message="frames without a welcome")
    finally:
        client.close()
        site.stop()
    assert site.binary_messages == 0 and site.messages[0]["type"] == "hello"
    (warning,) = [r for r in caplog.records if r.getMessage() == "stream_no_welcome"]
    assert warning.levelname == "WARNING"


def test_publish_keeps_a_bounded_queue_dropping_the_oldest_rows_counted():
    client = StreamClient(client_settings(free_port(), stream_queue_rows=10_000))  # not started
    for first in range(0, 30_000, 1000):
        client.publish(first, records(first, 1000), received_at=0.0, shape=CSV_SEQ)
    assert client.counters()["rows_dropped"] == 20_000
    client._build_frames()
    (frame,) = client._frames
    assert (frame.first_seq, frame.last_seq) == (20_000, 29_999)


def test_a_device_gap_in_rows_dropped_from_the_queue_still_reaches_the_viewer():
    client = StreamClient(client_settings(free_port(), stream_queue_rows=2_000))  # not started
    client.publish(0, records(0, 1000), received_at=0.0, shape=CSV_SEQ)
    client.publish(1000, records(1750, 1000), 0.0, CSV_SEQ, gaps=[(0, 750)])  # an unplug
    client.publish(2000, records(2750, 1000), received_at=0.0, shape=CSV_SEQ)  # drops seq 0-999
    client.publish(3000, records(3750, 1000), received_at=0.0, shape=CSV_SEQ)  # drops 1000-1999
    assert client.counters()["rows_dropped"] == 2000
    client._build_frames()
    (frame,) = client._frames  # seq 2000-3999: the viewer sees the hole before it in seq
    assert (frame.first_seq, frame.last_seq) == (2000, 3999)
    assert frame.as_message(0.0)["gap"] == {"device_lines": 750}  # and the reader's count


def test_a_refusal_that_needs_an_operator_is_not_retried_in_a_loop():
    port = free_port()
    site = RecordingSite(port, refuse_with=4403).start()
    client = StreamClient(client_settings(port, stream_reconnect_max_seconds=30.0)).start()
    try:
        wait_for(lambda: client.counters()["connect_failures"] >= 1, 10, message="a refusal")
        time.sleep(1.5)
        counters = client.counters()
    finally:
        client.close()
        site.stop()
    assert counters["last_close_code"] == 4403
    assert counters["connect_failures"] == 1 and site.connections == 1
    assert counters["last_error"] == "closed 4403 wrong token"


def test_the_client_comes_back_with_the_site_and_counts_what_it_could_not_keep():
    port = free_port()
    site = RecordingSite(port).start()
    client = StreamClient(client_settings(port, stream_queue_frames=5)).start()
    try:
        client.publish(0, records(0, 100), received_at=time.time(), shape=CSV_SEQ)
        wait_for(lambda: site.seqs() == list(range(100)), 10, message="first frames")
        site.stop()
        wait_for(lambda: not client.counters()["connected"], 10, message="the loss noticed")
        for first in range(100, 2100, 100):  # 20 frames while the site is away
            client.publish(first, records(first, 100), received_at=time.time(), shape=CSV_SEQ)
            time.sleep(0.05)
        wait_for(lambda: client.counters()["frames_dropped"] >= 15, 10, message="drops")
        site = RecordingSite(port).start()
        wait_for(lambda: site.seqs() and site.seqs()[-1] == 2099, 20, message="newest frames")
        client.publish(2100, records(2100, 100), received_at=time.time(), shape=CSV_SEQ)
        wait_for(lambda: site.seqs()[-1] == 2199, 10, message="live again")
    finally:
        client.close()
        site.stop()
    counters = client.counters()
    assert counters["connects"] == 2
    # Every frame built was either sent or dropped and counted, none twice.
    assert counters["frames_built"] == counters["frames_sent"] + counters["frames_dropped"]
    assert counters["frames_dropped"] >= 15
    assert site.seqs()[0] >= 1500  # what came back is the newest, not the oldest


def test_in_mode_full_the_status_carries_disk_backlog_age_and_the_uploaders_outcome(tmp_path):
    """What the fleet page's alerts need, read from the data dir: the disk's size, how long the
    oldest batch has waited, and the uploader's failures from the status it publishes."""
    import os

    from gateway.store.layout import DataDir
    from gateway.store.ledgers import publish_status
    from tests.support.uploads import write_batches

    data_dir = tmp_path / "data"
    (oldest, *_) = write_batches(data_dir, 2, 10)
    os.utime(oldest, (time.time() - 7200, time.time() - 7200))  # sealed two hours ago
    error = {"at": time.time(), "batch": "x.csv", "key": None, "error": "403 Forbidden"}
    publish_status(
        DataDir(data_dir),
        "uploader",
        {
            "service": "uploader",
            "running": True,
            "once": False,
            "updated_at": time.time() - 10,
            "counters": {"failed": 2},
            "last_error": {**error, "attempts": 3},
            "last_success": None,
        },
    )
    port = free_port()
    site = RecordingSite(port).start()
    client = StreamClient(client_settings(port, mode="full", data_dir=data_dir)).start()
    try:
        wait_for(
            lambda: any(m["type"] == "status" for m in site.messages), 5, message="a heartbeat"
        )
    finally:
        client.close()
        site.stop()
    status = [m for m in site.messages if m["type"] == "status"][0]["status"]
    assert status["disk_total"] >= status["disk_free"] > 0
    backlog = status["upload_backlog"]
    assert (backlog["batches"], backlog["bytes"] > 0) == (2, True)
    assert 7190 < backlog["age_seconds"] < 7300
    uploader = status["uploader"]
    assert uploader["running"] is True and uploader["once"] is False
    assert uploader["failing"] == 2 and 9 < uploader["age_seconds"] < 60
    assert uploader["last_error"] == {"at": error["at"], "error": "403 Forbidden", "attempts": 3}
    assert uploader["last_success_at"] is None


class CountingEvent(threading.Event):
    """An Event that counts the waits that could sleep (a timeout above 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps = 0

    def wait(self, timeout=None):
        if timeout is None or timeout > 0:
            self.sleeps += 1
        return super().wait(timeout)


def test_frames_keep_to_the_frame_rate_and_slower_rows_go_out_without_a_sleep():
    """Rows faster than the frame rate wait for the rest of a frame period; rows slower than
    it go out at once, the stream thread woken once for each, not also at a period's end."""
    port = free_port()
    site = RecordingSite(port).start()
    settings = client_settings(port, stream_frame_rate=20.0, stream_heartbeat_seconds=60.0)
    client = StreamClient(settings)
    client._stopping = stopping = CountingEvent()  # the stream thread's timed sleeps
    client.start()
    try:
        wait_for(lambda: client.counters()["connected"], 10, message="a connection")
        started = time.monotonic()
        for first in range(0, 2000, 10):  # every 5 ms for a second: 200 publishes
            client.publish(first, records(first, 10), received_at=time.time(), shape=CSV_SEQ)
            time.sleep(0.005)
        wait_for(lambda: len(site.seqs()) == 2000, 10, message="frames up to seq 1999")
        elapsed = time.monotonic() - started
        assert client.counters()["frames_built"] <= elapsed * 20 + 2
        assert stopping.sleeps > 0  # the frame rate held rows back
        time.sleep(0.2)
        sleeps, sent = stopping.sleeps, client.counters()["frames_sent"]
        for first in range(2000, 2200, 10):  # every 120 ms: slower than the frame rate
            client.publish(first, records(first, 10), received_at=time.time(), shape=CSV_SEQ)
            time.sleep(0.12)
        wait_for(lambda: len(site.seqs()) == 2200, 10, message="frames up to seq 2199")
        assert client.counters()["frames_sent"] - sent == 20  # a frame per publish
        assert stopping.sleeps == sleeps, "slower rows paid for a frame-rate sleep"
    finally:
        client.close()
        site.stop()


def test_a_site_that_says_nobody_watches_gets_status_but_no_frames_until_someone_does():
    port = free_port()
    site = RecordingSite(port).start()
    client = StreamClient(client_settings(port)).start()
    try:
        wait_for(lambda: client.counters()["connected"], 10, message="a connection")
        client.publish(0, records(0, 50), received_at=time.time(), shape=CSV_SEQ)
        wait_for(lambda: len(site.seqs()) == 50, 10, message="the first frame")
        site.say({"type": "watch", "watched": False})
        wait_for(lambda: not client.counters()["watched"], 5, message="the pause")
        for first in range(50, 1050, 50):
            client.publish(first, records(first, 50), received_at=time.time(), shape=CSV_SEQ)
            time.sleep(0.02)
        statuses = len([m for m in site.messages if m["type"] == "status"])
        wait_for(
            lambda: len([m for m in site.messages if m["type"] == "status"]) > statuses,
            5,
            message="a heartbeat while paused",
        )
        assert site.seqs() == list(range(50))  # no frame for the unwatched rows
        status = [m for m in site.messages if m["type"] == "status"][-1]["status"]
        assert status["stream"]["watched"] is False
        assert status["stream"]["rows_unwatched"] > 0
        assert status["sample_rate"] > 0  # the device still samples: the rate counts them
        site.say({"type": "watch", "watched": True})
        wait_for(lambda: client.counters()["watched"], 5, message="the resume")
        client.publish(1050, records(1050, 50), received_at=time.time(), shape=CSV_SEQ)
        wait_for(lambda: site.seqs()[-1:] == [1099], 5, message="frames again")
        site.say({"type": "hello?"})  # anything else from a site is logged and ignored
        client.publish(1100, records(1100, 50), received_at=time.time(), shape=CSV_SEQ)
        wait_for(lambda: site.seqs()[-1:] == [1149], 5, message="still streaming")
    finally:
        client.close()
        site.stop()
    assert client.counters()["rows_unwatched"] == 1000
    assert site.seqs() == [*range(50), *range(1050, 1150)]
