"""A real S3 endpoint for tests: moto's standalone server as a process
(:class:`gateway.supervise.chain.LocalS3`), reached over HTTP.

Also two network devices placed between the uploader and the server: a TCP relay that can be
cut and restored on the same port (an outage while the server keeps its objects), and an
HTTP proxy that corrupts object bodies on the way in (moto stores whatever arrives).
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.core.keys import BadName, parse_object_key
from gateway.supervise import Supervisor, free_port
from gateway.supervise.chain import LocalS3, s3_client

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def client(url: str):
    return s3_client(url, CREDENTIALS)


def is_batch_key(key: str) -> bool:
    """A batch's object (not rejected lines, not anything else under the prefix)."""
    try:
        parse_object_key(key)
    except BadName:
        return False
    return True


def all_versions(s3, bucket: str) -> dict[str, int]:
    """How many versions each key has (the bucket must be versioned): 1 means written once."""
    counts: dict[str, int] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


class Relay:
    """A TCP relay 127.0.0.1:<port> -> target; :meth:`cut` drops everything (connections
    reset, new ones refused), :meth:`restore` listens on the same port again."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                downstream.close()
                continue
            with self._lock:
                self._sockets.update((downstream, upstream))
            for a, b in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self._listener is not None:
            # shutdown() first: close() alone leaves the socket listening (and accepting) as
            # long as the accept thread is blocked in accept() on it.
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()  # linger 0: a reset, as when a server dies
            except OSError:
                pass

    def close(self) -> None:
        self.cut()


class CorruptingProxy:
    """An HTTP proxy to ``target_port`` that flips one byte in the body of every object PUT.

    ``strip_checksum``: also drop the ``x-amz-checksum-*`` value, so the server computes the
    checksum from the bytes it got, as S3 does (moto otherwise just keeps the client's).
    """

    def __init__(self, target_port: int, *, strip_checksum: bool) -> None:
        self.corrupted: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() != "expect"}
                path = self.path.split("?", 1)[0]
                is_object = path.strip("/").count("/") >= 1
                if self.command == "PUT" and is_object and len(body) > 16:
                    middle = len(body) // 2
                    body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
                    proxy.corrupted.append(path)
                    if strip_checksum:
                        headers = {
                            k: v
                            for k, v in headers.items()
                            if not k.lower().startswith("x-amz-checksum-")
                        }
                connection = http.client.HTTPConnection("127.0.0.1", target_port, timeout=30)
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                connection.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


BUCKET = "fieldgate-test"


@pytest.fixture(name="moto")
def moto_fixture(tmp_path):
    """A fresh moto server with a versioned bucket (versions show any overwrite)."""
    with Supervisor(tmp_path / "moto") as supervisor:
        yield LocalS3(supervisor, BUCKET, CREDENTIALS, versioned=True)


@pytest.fixture(name="uploader_env")
def uploader_env_fixture(tmp_path):
    """Settings for an uploader of tmp_path/data; pass changes as keyword arguments."""

    def make(endpoint: str, **changes) -> dict[str, str]:
        env = {
            **CREDENTIALS,
            "GATEWAY_ID": "test-gw",
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GATEWAY_S3_BUCKET": BUCKET,
            "GATEWAY_S3_PREFIX": "raw",
            "GATEWAY_S3_ENDPOINT_URL": endpoint,
            "GATEWAY_S3_TIMEOUT_SECONDS": "5",
            "GATEWAY_STATUS_SECONDS": "0.2",
            "GATEWAY_UPLOAD_RETRY_BASE_SECONDS": "0.2",
            "GATEWAY_UPLOAD_RETRY_MAX_SECONDS": "1",
            "GATEWAY_UPLOAD_RESCAN_SECONDS": "1",
            "GATEWAY_UPLOAD_CHUNK_BATCHES": "8",
            "GATEWAY_DASK_WORKERS": "2",
            "GATEWAY_LOG_LEVEL": "info",
        }
        env.update({f"GATEWAY_{key.upper()}": str(value) for key, value in changes.items()})
        return env

    return make
