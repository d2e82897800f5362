"""bench/ingest: the reader in local mode over a PTY fed as fast as possible, against a raw
copy (``head -c``, i.e. cat) of the same stream from the same kind of PTY, in the same run;
for csv-seq (a multi-channel monitor) and for nmea0183 (a GNSS talker's sentences).

Also: CPU % of one core and RSS of the reader at 8 channels x 1 kHz from firmware-sim.

    python -m bench.ingest [--mib 32] [--repeat 3] [--seconds 20] [--formats csv-seq,nmea0183]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import pty_pair, save, tree_cpu_seconds, tree_rss_bytes, write_file_to
from gateway.supervise import Supervisor
from gateway.supervise.chain import GATEWAY, read_status, start_simulator

BATCH_ROWS = 50_000


def make_stream(
    total_bytes: int, line_format: str = "csv-seq", channels: int = 8, seed: int = 1
) -> tuple[bytes, int]:
    """About ``total_bytes`` of lines: csv-seq lines of about 70 bytes (8 channels, like a
    multi-channel monitor), or nmea0183 sentences as a GNSS receiver sends them.

    The line count is a multiple of BATCH_ROWS, so the last line seals a batch: its file
    appearing is the end of the run, seen without asking the reader anything.
    """
    rng = random.Random(seed)
    values = [b"%.3f" % rng.uniform(-9.999, 9.999) for _ in range(4096)]
    line_of = _nmea_line if line_format == "nmea0183" else _csv_seq_line
    lines, size, n = [], 0, 0
    while size < total_bytes or n % BATCH_ROWS:
        line = line_of(n, rng, values, channels)
        lines.append(line)
        size += len(line)
        n += 1
    return b"".join(lines), n


def _csv_seq_line(n: int, rng: random.Random, values: list[bytes], channels: int) -> bytes:
    return b"%d,%.4f,%s\n" % (n, n / 1000, b",".join(rng.choices(values, k=channels)))


def _nmea_line(n: int, rng: random.Random, values: list[bytes], channels: int) -> bytes:
    second = n // 3
    clock = b"%02d%02d%02d.00" % (second // 3600 % 24, second // 60 % 60, second % 60)
    lat, lon = b"48%07.4f" % rng.uniform(0, 59.9999), b"011%07.4f" % rng.uniform(0, 59.9999)
    body = (
        b"GPGGA,%s,%s,N,%s,E,1,08,0.9,545.4,M,46.9,M,," % (clock, lat, lon),
        b"GPRMC,%s,A,%s,N,%s,E,0.022,,230394,,,A" % (clock, lat, lon),
        b"GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,%02d" % rng.randrange(100),
    )[n % 3]
    checksum = 0
    for byte in body:
        checksum ^= byte
    return b"$%s*%02X\r\n" % (body, checksum)


def raw_copy(stream: bytes, work: Path) -> float:
    with pty_pair(work) as (device, port), open(port, "rb") as source:
        copier = subprocess.Popen(
            ["head", "-c", str(len(stream))], stdin=source, stdout=subprocess.DEVNULL
        )
        time.sleep(0.2)
        start = time.perf_counter()
        write_file_to(device, stream)
        copier.wait(120)
        return time.perf_counter() - start


def status(data_dir: Path) -> dict:
    return read_status(data_dir) or {}


def reader_env(data_dir: Path, line_format: str = "csv-seq") -> dict:
    return {
        **os.environ,
        "GATEWAY_ID": "bench",
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_LINE_FORMAT": line_format,
        "GATEWAY_BATCH_ROWS": str(BATCH_ROWS),
        "GATEWAY_STATUS_SECONDS": "0.2",
        "GATEWAY_LOG_LEVEL": "warning",
    }


def last_batch_sealed(data_dir: Path, lines: int) -> bool:
    name = f"{lines - BATCH_ROWS:012d}-{lines - 1:012d}.csv"
    return bool(glob.glob(str(data_dir / "batches" / "*" / "*" / "*" / name)))


def wait_until(predicate, timeout: float, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(interval)


def reader_copy(
    stream: bytes, lines: int, work: Path, line_format: str = "csv-seq"
) -> tuple[float, float, int]:
    """Seconds until every line is a stored row, reader CPU seconds meanwhile, peak RSS
    (the reader's and its serial relay's, summed)."""
    data_dir = work / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    with pty_pair(work) as (device, port), Supervisor(work / "logs") as supervisor:
        reader = supervisor.start(
            "reader",
            [GATEWAY, "reader", "--port", str(port), "--mode", "local"],
            env=reader_env(data_dir, line_format),
        )
        wait_until(lambda: status(data_dir).get("port_open"), 30)
        cpu_before = tree_cpu_seconds(reader.pid)
        start = time.perf_counter()
        write_file_to(device, stream)
        wait_until(lambda: last_batch_sealed(data_dir, lines), 120)
        elapsed = time.perf_counter() - start
        cpu = tree_cpu_seconds(reader.pid) - cpu_before
        peak = tree_rss_bytes(reader.pid, peak=True)
        counters = status(data_dir)["counters"]
        assert counters["rows_rejected"] == 0 and counters["overflow_bytes"] == 0, counters
    return elapsed, cpu, peak


def steady_rate(work: Path, seconds: float) -> dict:
    """The reader's CPU and memory (with its serial relay process) while firmware-sim sends
    8 channels at 1 kHz."""
    data_dir = work / "rate-data"
    link = work / "sim-port"
    with Supervisor(work / "logs") as supervisor:
        start_simulator(
            supervisor,
            link,
            *("--rate", "1000", "--channels", "8", "--waveform", "ecg", "--seed", "1"),
        )
        reader = supervisor.start(
            "reader",
            [GATEWAY, "reader", "--port", str(link), "--mode", "local"],
            env={**reader_env(data_dir), "GATEWAY_STATUS_SECONDS": "0.5"},
        )
        wait_until(lambda: status(data_dir).get("next_seq", 0) > 1000, 30)
        cpu_before, rows_before = tree_cpu_seconds(reader.pid), status(data_dir)["next_seq"]
        start = time.perf_counter()
        time.sleep(seconds)
        cpu = tree_cpu_seconds(reader.pid) - cpu_before
        elapsed = time.perf_counter() - start
        rows = status(data_dir)["next_seq"] - rows_before
        return {
            "cpu_percent_of_one_core": round(100 * cpu / elapsed, 2),
            "rss_mib": round(tree_rss_bytes(reader.pid) / 2**20, 1),
            "peak_rss_mib": round(tree_rss_bytes(reader.pid, peak=True) / 2**20, 1),
            "rows_per_second": round(rows / elapsed),
            "seconds": round(elapsed, 1),
        }


def measure_format(line_format: str, mib: float, repeat: int, work: Path) -> dict:
    """The reader against a raw copy of the same stream, runs interleaved so both see the
    same machine load."""
    stream, lines = make_stream(int(mib * 2**20), line_format)
    raw, runs = [], []
    for _ in range(repeat):
        raw.append(raw_copy(stream, work))
        runs.append(reader_copy(stream, lines, work, line_format))
    raw_s = statistics.median(raw)
    reader_s = statistics.median(r[0] for r in runs)
    return {
        "stream": {
            "format": line_format,
            "bytes": len(stream),
            "lines": lines,
            "mean_line_bytes": round(len(stream) / lines, 1),
        },
        "baseline_raw_copy": {
            "seconds": round(raw_s, 3),
            "mb_per_s": round(len(stream) / raw_s / 1e6, 1),
            "lines_per_s": round(lines / raw_s),
        },
        "reader_local_mode": {
            "seconds": round(reader_s, 3),
            "mb_per_s": round(len(stream) / reader_s / 1e6, 1),
            "lines_per_s": round(lines / reader_s),
            "cpu_seconds": round(statistics.median(r[1] for r in runs), 2),
            "peak_rss_mib": round(max(r[2] for r in runs) / 2**20, 1),
        },
        "ratio_reader_to_raw": round(raw_s / reader_s, 3),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--formats", default="csv-seq,nmea0183")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        formats = {
            name: measure_format(name, args.mib, args.repeat, work)
            for name in args.formats.split(",")
        }
        rate = steady_rate(work, args.seconds)
    first = formats[next(iter(formats))]  # csv-seq: the figure the targets were set on
    result = {
        **first,
        "formats": formats,
        "steady_8ch_1khz": rate,
        "targets": {"ratio_at_least": 0.5, "cpu_percent_below": 3.0, "rss_mib_below": 60},
    }
    result["meets_targets"] = (
        all(f["ratio_reader_to_raw"] >= 0.5 for f in formats.values())
        and rate["cpu_percent_of_one_core"] < 3.0
        and rate["peak_rss_mib"] < 60
    )
    path = save("ingest", result)
    print(json.dumps(result, indent=2))
    print(f"written to {path}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
