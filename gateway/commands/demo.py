"""``make demo``: the whole chain on one machine, supervised together.

simulated ECG monitor (firmware-sim on a PTY) -> reader (full mode) -> sealed batches ->
uploader -> a local S3 endpoint (moto's server) ; reader -> live stream -> the site at
http://127.0.0.1:8000/. Everything runs as real processes under ``./demo-data``; Ctrl-C stops
them all (in reverse order, by PID) and leaves nothing running.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gateway.store.layout import DataDir
from gateway.store.ledgers import read_status

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
ROOT = Path.cwd() / "demo-data"
SITE = "http://127.0.0.1:8000/"
USER, PASSWORD = "demo", "demo-password"
TOKEN = "fgt_demo-token-0123456789abcdef"
BUCKET = "fieldgate-demo"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class Supervisor:
    """Starts the demo's processes, notices when one dies, stops them all by PID."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it)
        child = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPO,
        )
        self.children.append((name, child))
        return child

    def dead(self) -> list[str]:
        return [name for name, child in self.children if child.poll() is not None]

    def stop_all(self) -> None:
        for _, child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for _, child in reversed(self.children):
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def _status(data_dir: Path, service: str) -> dict:
    return read_status(DataDir(data_dir), service) or {}


def _line(data_dir: Path) -> str:
    reader = _status(data_dir, "reader")
    counters = reader.get("counters", {})
    uploader = _status(data_dir, "uploader").get("counters", {})
    stream = reader.get("stream") or {}
    shown = [
        ("seq", reader.get("next_seq", 0)),
        ("rejected", counters.get("rows_rejected", 0)),
        ("gaps", counters.get("device_gaps", 0)),
        ("reconnects", counters.get("reconnects", 0)),
        ("sealed", counters.get("batches_sealed", 0)),
        ("uploaded", uploader.get("uploaded", 0)),
        ("frames sent", stream.get("frames_sent", 0)),
    ]
    return "  ".join(f"{name} {value}" for name, value in shown)


def main() -> int:
    missing = [tool for tool in ("socat", "node") if shutil.which(tool) is None]
    if missing:
        print(f"make demo needs {', '.join(missing)}: run `make setup`", file=sys.stderr)
        return 1
    if not _free(8000):
        print("port 8000 is in use: stop what serves it, or the last demo", file=sys.stderr)
        return 1
    ROOT.mkdir(exist_ok=True)
    logs = ROOT / "logs"
    logs.mkdir(exist_ok=True)
    data_dir = ROOT / "data"
    port = ROOT / "ttyDEMO"
    port.unlink(missing_ok=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        s3_port = sock.getsockname()[1]
    s3_url = f"http://127.0.0.1:{s3_port}"
    web_env = {
        "DJANGO_SETTINGS_MODULE": "web.settings.gateway",
        "FIELDGATE_WEB_DATA_DIR": str(ROOT / "web"),
    }
    gateway_env = {
        **S3_CREDENTIALS,
        "GATEWAY_ID": "demo",
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_LINE_FORMAT": "csv-seq",
        "GATEWAY_FIELD_NAMES": "n,t,lead_i,lead_ii,lead_iii",
        "GATEWAY_BATCH_SECONDS": "5",
        "GATEWAY_STATUS_SECONDS": "0.5",
        "GATEWAY_STREAM_URL": "ws://127.0.0.1:8000/ws/ingest/",
        "GATEWAY_STREAM_TOKEN": TOKEN,
        "GATEWAY_S3_BUCKET": BUCKET,
        "GATEWAY_S3_ENDPOINT_URL": s3_url,
        "GATEWAY_S3_PREFIX": "demo",
        "GATEWAY_UPLOAD_RESCAN_SECONDS": "2",
    }
    setup = subprocess.run(
        [
            str(BIN / "python"),
            "web/manage.py",
            "demo_setup",
            "--gateway",
            "demo",
            "--token",
            TOKEN,
            "--user",
            USER,
            "--password",
            PASSWORD,
        ],
        env={**os.environ, **web_env},
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if setup.returncode:
        print(f"could not prepare the site:\n{setup.stderr}", file=sys.stderr)
        return 1

    supervisor = Supervisor(logs)
    stop = False

    def request_stop(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        supervisor.start(
            "s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)], S3_CREDENTIALS
        )
        supervisor.start(
            "site",
            [
                str(BIN / "python"),
                "web/manage.py",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "8000",
            ],
            web_env,
        )
        if not _wait_http(f"{s3_url}/moto-api/", 30) or not _wait_http(
            f"{SITE}accounts/login/", 30
        ):
            print(f"the S3 endpoint or the site did not start; see {logs}", file=sys.stderr)
            return 1
        import boto3

        boto3.client(
            "s3",
            endpoint_url=s3_url,
            **{
                "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                "region_name": "us-east-1",
            },
        ).create_bucket(Bucket=BUCKET)
        supervisor.start(
            "firmware-sim",
            [
                str(BIN / "firmware-sim"),
                "--link",
                str(port),
                "--rate",
                "500",
                "--channels",
                "3",
                "--waveform",
                "ecg",
                "--heart-rate",
                "72",
                "--noise",
                "0.01",
                "--faults",
                "garbage=0.001,unplug@15000:1.5",
            ],
            gateway_env,
        )
        deadline = time.monotonic() + 10
        while not port.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        supervisor.start(
            "reader",
            [str(BIN / "gateway"), "reader", "--port", str(port), "--mode", "full"],
            gateway_env,
        )
        supervisor.start(
            "uploader", [str(BIN / "gateway"), "uploader", "--foreground"], gateway_env
        )
        print(f"\n  Live view:  {SITE}gateways/demo/   (login: {USER} / {PASSWORD})")
        print(f"  Fleet:      {SITE}")
        print(f"  S3:         {s3_url}  bucket {BUCKET}")
        print(f"  Data:       {data_dir}   logs: {logs}")
        print("  A simulated 3-lead ECG at 500 lines/s, a little garbage, an unplug after 30 s.")
        print("  Ctrl-C stops everything.\n")
        while not stop:
            dead = supervisor.dead()
            if dead:
                print(f"\n{', '.join(dead)} stopped unexpectedly; see {logs}", file=sys.stderr)
                return 1
            print("\r" + _line(data_dir) + "   ", end="", flush=True)
            time.sleep(0.5)
    finally:
        supervisor.stop_all()
        print("\n" + _line(data_dir))
        print(f"stopped; `GATEWAY_DATA_DIR={data_dir} .venv/bin/gateway status` shows the data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
