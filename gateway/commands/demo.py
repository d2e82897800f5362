"""``make demo``: the whole chain on one machine, supervised together.

simulated ECG monitor (firmware-sim on a PTY) -> reader (full mode) -> sealed batches ->
uploader -> a local S3 endpoint (moto's server) ; reader -> live stream -> the site at
http://127.0.0.1:8000/. Everything runs as real processes under ``./demo-data``; Ctrl-C stops
them all (in reverse order, by PID) and leaves nothing running.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from pathlib import Path

from gateway.supervise import Supervisor, listening
from gateway.supervise.chain import (
    LocalGateway,
    LocalS3,
    LocalSite,
    SiteLogin,
    site_env,
    start_simulator,
)

ROOT = Path.cwd() / "demo-data"
LOGIN = SiteLogin(
    gateway_id="demo",
    token="fgt_demo-token-0123456789abcdef",
    user="demo",
    password="demo-password",
)
BUCKET = "fieldgate-demo"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# 500 lines/s: the unplug at line 15000 comes after 30 s.
SIMULATOR = (
    "--rate", "500", "--channels", "3", "--waveform", "ecg", "--heart-rate", "72",
    "--noise", "0.01", "--faults", "garbage=0.001,unplug@15000:1.5",
)  # fmt: skip


def gateway_env(data_dir: Path, s3: LocalS3, site: LocalSite) -> dict[str, str]:
    return {
        **s3.gateway_env(prefix="demo"),
        **site.gateway_env(),
        "GATEWAY_ID": LOGIN.gateway_id,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_LINE_FORMAT": "csv-seq",
        "GATEWAY_FIELD_NAMES": "n,t,lead_i,lead_ii,lead_iii",
        "GATEWAY_BATCH_SECONDS": "5",
        "GATEWAY_STATUS_SECONDS": "0.5",
        "GATEWAY_UPLOAD_RESCAN_SECONDS": "2",
    }


def counter_line(gateway: LocalGateway) -> str:
    reader = gateway.status("reader")
    counters = reader.get("counters", {})
    uploader = gateway.status("uploader").get("counters", {})
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
    if stream.get("watched") is False:
        shown.append(("live view", "closed (frames paused)"))
    return "  ".join(f"{name} {value}" for name, value in shown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="make demo: the whole chain on this machine")
    parser.add_argument("--port", type=int, default=8000, help="the site's port (default 8000)")
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="a central site and three gateways of different kinds (gateway.commands.demo_fleet)",
    )
    arguments = parser.parse_args(argv)
    port = arguments.port
    if arguments.fleet:
        from gateway.commands import demo_fleet

        return demo_fleet.main(["--port", str(port)])
    missing = [tool for tool in ("socat",) if shutil.which(tool) is None]
    if missing:
        print(f"make demo needs {', '.join(missing)}: run `make setup`", file=sys.stderr)
        return 1
    if listening(port):
        print(f"port {port} is in use: stop what serves it, or the last demo", file=sys.stderr)
        return 1
    logs, data_dir, link = ROOT / "logs", ROOT / "data", ROOT / "ttyDEMO"
    logs.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)

    # Ctrl-C (or SIGTERM) only asks: the processes are in sessions of their own, and are
    # stopped in order below, never left half-stopped by an interrupted teardown.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    with Supervisor(logs) as supervisor:
        try:
            s3 = LocalS3(supervisor, BUCKET, S3_CREDENTIALS)
            # The site runs on the gateway, as on a Pi: the gateway's batches are its history.
            web = {**site_env(ROOT / "web"), "FIELDGATE_WEB_GATEWAY_DATA_DIR": str(data_dir)}
            site = LocalSite(supervisor, web, login=LOGIN, port=port)
            start_simulator(supervisor, link, *SIMULATOR)
            gateway = LocalGateway(supervisor, gateway_env(data_dir, s3, site), str(link))
            gateway.start()
        except (RuntimeError, TimeoutError) as error:
            print(f"the demo could not start: {error}\nsee {logs}", file=sys.stderr)
            return 1
        print(
            f"\n  Live view:  {site.base}/gateways/demo/   (login: {LOGIN.user} / {LOGIN.password})"
        )
        print(f"  Fleet:      {site.base}/")
        print(f"  S3:         {s3.url}  bucket {BUCKET}")
        print(f"  Data:       {data_dir}   logs: {logs}")
        print("  A simulated 3-lead ECG at 500 lines/s, a little garbage, an unplug after 30 s.")
        print("  Ctrl-C stops everything.\n")
        status = 0
        while not stop.wait(0.5):
            if problems := supervisor.unexpected_exits():
                print("\n" + "\n".join(problems), file=sys.stderr)
                status = 1
                break
            print("\r" + counter_line(gateway) + "   ", end="", flush=True)
    print("\n" + counter_line(gateway))  # as the stopped services last published it
    print(f"stopped; `GATEWAY_DATA_DIR={data_dir} .venv/bin/gateway status` shows the data")
    return status


if __name__ == "__main__":
    sys.exit(main())
