"""``make demo``: a simulated ECG monitor -> the reader -> sealed batches, with live counters.

Everything runs as real processes under ``./demo-data`` and stops cleanly on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path.cwd() / "demo-data"


def _start(name: str, command: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen:
    log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it)
    return subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _status(data_dir: Path) -> dict:
    try:
        return json.loads((data_dir / "state" / "reader.status.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _line(status: dict, data_dir: Path) -> str:
    counters = status.get("counters", {})
    sealed = len(list((data_dir / "batches").rglob("*.csv")))
    shown = [
        ("seq", status.get("next_seq", 0), 8),
        ("accepted", counters.get("rows_accepted", 0), 8),
        ("rejected", counters.get("rows_rejected", 0), 4),
        ("gaps", counters.get("device_gaps", 0), 3),
        ("reconnects", counters.get("reconnects", 0), 2),
        ("batches sealed", sealed, 4),
    ]
    return "  ".join(f"{name} {value:>{width}}" for name, value, width in shown)


def main() -> int:
    if shutil.which("socat") is None:
        print("make demo needs socat: run `make setup`", file=sys.stderr)
        return 1
    ROOT.mkdir(exist_ok=True)
    logs = ROOT / "logs"
    logs.mkdir(exist_ok=True)
    data_dir = ROOT / "data"
    port = ROOT / "ttyDEMO"
    port.unlink(missing_ok=True)
    env = {
        "GATEWAY_ID": "demo",
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_LINE_FORMAT": "csv-seq",
        "GATEWAY_FIELD_NAMES": "n,t,lead_i,lead_ii,lead_iii",
        "GATEWAY_BATCH_SECONDS": "10",
        "GATEWAY_STATUS_SECONDS": "0.5",
    }
    children = [
        _start(
            "firmware-sim",
            [
                str(BIN / "firmware-sim"),
                "--link",
                str(port),
                "--rate",
                "250",
                "--channels",
                "3",
                "--waveform",
                "ecg",
                "--heart-rate",
                "72",
                "--faults",
                "garbage=0.002,unplug@5000:1.5",
            ],
            env,
            logs,
        ),
    ]
    deadline = time.monotonic() + 10
    while not port.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    children.append(
        _start(
            "reader",
            [str(BIN / "gateway"), "reader", "--port", str(port), "--mode", "local"],
            env,
            logs,
        )
    )
    stop = False

    def request_stop(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"simulated ECG monitor at {port} (250 lines/s, 3 leads, some garbage, an unplug)")
    print(f"reader in local mode -> {data_dir}/batches  (logs in {logs})")
    print("Ctrl-C stops everything.\n")
    try:
        while not stop:
            for child in children:
                if child.poll() is not None:
                    print(f"\n{child.args[0]} exited with {child.returncode}; see {logs}")
                    stop = True
            line = _line(_status(data_dir), data_dir)
            print("\r" + line, end="", flush=True)
            time.sleep(0.5)
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in reversed(children):
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        print("\n" + _line(_status(data_dir), data_dir))
        print(f"stopped; `GATEWAY_DATA_DIR={data_dir} .venv/bin/gateway status` shows the data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
