"""``make demo-fleet`` (or ``make demo FLEET=1``): a central dashboard aggregating gateways.

The site on its central profile (its own PostgreSQL and Redis, two uvicorn workers) and three
simulated gateways of different kinds streaming to it, each with its own reader and uploader
into one local S3 endpoint (moto's server), under a prefix of its own::

    ECG monitor      firmware-sim csv-seq   -> reader "demo" -> uploader -> s3://.../demo/
    GPS receiver     firmware-sim nmea0183  -> reader "gps"  -> uploader -> s3://.../gps/
    Arduino sensor   firmware-sim keyvalue  -> reader "uno"  -> uploader -> s3://.../uno/
                         every reader's live stream -> the site (central profile)

Everything runs as real processes under one supervisor; Ctrl-C stops them all, newest first,
by PID. PostgreSQL's and Redis' files are in a temporary directory removed at the end; the
gateways' data dirs and every process's log stay under ``demo-data/fleet/``.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from gateway.supervise import Supervisor, listening
from gateway.supervise.chain import (
    MANAGE,
    PG_BIN,
    LocalGateway,
    LocalS3,
    LocalSite,
    SiteLogin,
    site_env,
    start_postgres,
    start_redis,
    start_simulator,
)

ROOT = Path.cwd() / "demo-data" / "fleet"
USER, PASSWORD = "demo", "demo-password"
BUCKET = "fieldgate-fleet-demo"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class DemoGateway:
    name: str
    token: str
    kind: str
    simulator: tuple[str, ...]
    settings: dict[str, str]


GATEWAYS = (
    DemoGateway(
        "demo",
        "fgt_demo-token-0123456789abcdef",
        "ECG monitor: 3 leads at 250 lines/s, a little garbage",
        ("--rate", "250", "--channels", "3", "--waveform", "ecg", "--heart-rate", "72")
        + ("--noise", "0.01", "--faults", "garbage=0.001"),
        {"GATEWAY_LINE_FORMAT": "csv-seq", "GATEWAY_FIELD_NAMES": "n,t,lead_i,lead_ii,lead_iii"},
    ),
    DemoGateway(
        "gps",
        "fgt_gps-token-0123456789abcdef0",
        "GPS receiver talking NMEA 0183 (GGA, RMC, ... once a second)",
        ("--format", "nmea0183", "--rate", "9"),
        {"GATEWAY_LINE_FORMAT": "nmea0183"},
    ),
    DemoGateway(
        "uno",
        "fgt_uno-token-0123456789abcdef01",
        "Arduino-style sensor printing key:value pairs at 20 lines/s",
        ("--format", "keyvalue", "--names", "temp,rh,light", "--rate", "20")
        + ("--waveform", "sine"),
        {"GATEWAY_LINE_FORMAT": "keyvalue"},
    ),
)


def gateway_env(gateway: DemoGateway, s3: LocalS3, site: LocalSite) -> dict[str, str]:
    return {
        **s3.gateway_env(prefix=gateway.name),
        **gateway.settings,
        "GATEWAY_ID": gateway.name,
        "GATEWAY_DATA_DIR": str(ROOT / gateway.name),
        "GATEWAY_STREAM_URL": site.ingest_url,
        "GATEWAY_STREAM_TOKEN": gateway.token,
        "GATEWAY_STREAM_HEARTBEAT_SECONDS": "2",
        "GATEWAY_BATCH_SECONDS": "5",
        "GATEWAY_STATUS_SECONDS": "0.5",
        "GATEWAY_UPLOAD_RESCAN_SECONDS": "2",
    }


def counter_line(gateways: dict[str, LocalGateway]) -> str:
    parts = []
    for name, gateway in gateways.items():
        reader = gateway.status("reader")
        uploaded = gateway.status("uploader").get("counters", {}).get("uploaded", 0)
        stream = reader.get("stream") or {}
        parts.append(
            f"{name}: seq {reader.get('next_seq', 0)} up {uploaded} "
            f"frames {stream.get('frames_sent', 0)}"
        )
    return "  |  ".join(parts)


def missing_tools() -> list[str]:
    tools = {"socat": "socat", "redis-server": "redis-server"}
    missing = [package for tool, package in tools.items() if shutil.which(tool) is None]
    if not (PG_BIN / "initdb").exists():
        missing.append("postgresql")
    return missing


def write_site_env(env: dict[str, str]) -> Path:
    """The site's settings as a file, so ``manage.py`` commands reach the running demo."""
    path = ROOT / "site.env"
    path.write_text("".join(f"{key}={value}\n" for key, value in sorted(env.items())))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="make demo-fleet: a central site, 3 gateways")
    parser.add_argument("--port", type=int, default=8000, help="the site's port (default 8000)")
    port = parser.parse_args(argv).port
    if missing := missing_tools():
        print(f"make demo-fleet needs {', '.join(missing)}: run `make setup`", file=sys.stderr)
        return 1
    if listening(port):
        print(f"port {port} is in use: stop what serves it, or the last demo", file=sys.stderr)
        return 1
    logs = ROOT / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    # PostgreSQL runs as 'nobody' under root: its files go where it can reach them.
    servers = Path(tempfile.mkdtemp(prefix="fieldgate-demo-fleet-"))
    servers.chmod(0o755)
    site_env_file = ROOT / "site.env"
    gateways: dict[str, LocalGateway] = {}
    status = 0
    try:
        with Supervisor(logs) as supervisor:
            try:
                redis = start_redis(supervisor, servers / "redis")
                postgres = start_postgres(supervisor, servers / "postgres")
                env = {
                    **site_env(ROOT / "web", "central"),
                    "FIELDGATE_WEB_DB_PORT": str(postgres),
                    "FIELDGATE_WEB_REDIS_URL": f"redis://127.0.0.1:{redis}/0",
                }
                first, *others = GATEWAYS
                site = LocalSite(
                    supervisor,
                    env,
                    login=SiteLogin(first.name, first.token, USER, PASSWORD),
                    more_gateways={g.name: g.token for g in others},
                    port=port,
                    workers=2,
                )
                site_env_file = write_site_env(env)
                s3 = LocalS3(supervisor, BUCKET, S3_CREDENTIALS)
                for gateway in GATEWAYS:
                    link = ROOT / f"tty-{gateway.name}"
                    link.unlink(missing_ok=True)
                    start_simulator(
                        supervisor, link, *gateway.simulator, name=f"{gateway.name}-sim"
                    )
                    gateways[gateway.name] = LocalGateway(
                        supervisor, gateway_env(gateway, s3, site), str(link), name=gateway.name
                    ).start()
            except (RuntimeError, TimeoutError, OSError) as error:
                print(f"the fleet demo could not start: {error}\nsee {logs}", file=sys.stderr)
                return 1
            print(f"\n  Fleet:   {site.base}/   (login: {USER} / {PASSWORD})")
            for gateway in GATEWAYS:
                print(f"  {site.base}/gateways/{gateway.name}/   {gateway.kind}")
            print(f"  S3:      {s3.url}  bucket {BUCKET}, a prefix per gateway")
            print(f"  Central: PostgreSQL on port {postgres}, Redis on {redis}, 2 site workers")
            print(f"  Data:    {ROOT}/<gateway>   logs: {logs}")
            print(
                f"  Try:     env $(cat {site_env_file}) {sys.executable} {MANAGE} "
                "revoke_gateway gps"
            )
            print("  Ctrl-C stops everything.\n")
            while not stop.wait(0.5):
                if problems := supervisor.unexpected_exits():
                    print("\n" + "\n".join(problems), file=sys.stderr)
                    status = 1
                    break
                print("\r" + counter_line(gateways) + "   ", end="", flush=True)
    finally:
        site_env_file.unlink(missing_ok=True)  # its servers are gone
        shutil.rmtree(servers, ignore_errors=True)
    print("\n" + counter_line(gateways))
    print(f"stopped; each gateway's data is under {ROOT}/<gateway>")
    return status


if __name__ == "__main__":
    sys.exit(main())
