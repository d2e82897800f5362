"""Measure the line rate firmware-sim sustains over a real PTY.

For each rate, run the simulator for ``--seconds`` (default 10) with a pyserial reader in
this process draining the port, as a gateway would, and report the mean rate the reader
saw, from the first line's arrival to the last: ``(lines - 1) / (t_last - t_first)``.
A rate is sustained if every line arrived and the mean is within 1 % of the target.

    .venv/bin/python firmware-sim/tools/measure_rate.py            # 1 Hz .. 200 kHz
    .venv/bin/python firmware-sim/tools/measure_rate.py --rates 1000 50000 --seconds 5
"""

import argparse
import os
import tempfile
import time

import serial

from firmware_sim.launcher import start_simulator

DEFAULT_RATES = (1, 10, 100, 1_000, 10_000, 20_000, 50_000, 100_000, 150_000, 200_000)
TOLERANCE = 0.01


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(rate: float, seconds: float, channels: int) -> dict:
    samples = round(rate * seconds)
    with tempfile.TemporaryDirectory() as directory:
        sim = start_simulator(
            "--rate", str(rate), "--samples", str(samples), "--seed", "1",
            "--waveform", "sine", "--channels", str(channels),
            link=os.path.join(directory, "ttyFG0"),
        )  # fmt: skip
        try:
            lines = received_bytes = 0
            first = last = None
            tail = b""
            cpu = None
            with serial.Serial(sim.port, timeout=5) as port:
                while lines < samples:
                    chunk = port.read(max(1, port.in_waiting))
                    if not chunk:
                        break  # nothing for 5 s: the simulator is stuck or gone
                    now = time.monotonic()
                    count = chunk.count(b"\n")
                    if count:
                        first = now if first is None else first
                        last = now
                        lines += count
                    tail = (tail + chunk)[-200:]
                    received_bytes += len(chunk)
                    if lines >= samples:
                        cpu = cpu_seconds(sim.pid)  # before it exits
            status = sim.wait(30)
        finally:
            sim.stop()
    last_counter = int(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1].split(b",")[0]) if tail else -1
    complete = lines == samples and last_counter == samples - 1
    mean = (lines - 1) / (last - first) if lines > 1 and last > first else 0.0
    return {
        "rate": rate,
        "samples": samples,
        "received": lines,
        "complete": complete,
        "status": status,
        "mean": mean,
        "error": mean / rate - 1,
        "sim_cpu": cpu / (last - first) if cpu is not None and lines > 1 else None,
        "mb_per_s": received_bytes / (last - first) / 1e6 if lines > 1 else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=DEFAULT_RATES)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--channels", type=int, default=2)
    args = parser.parse_args()
    print(f"{args.seconds:g} s per rate, {args.channels} channels, csv-seq, pyserial reader")
    print("| target (lines/s) | lines received | mean rate seen | error | exit | sim CPU | MB/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    sustained = 0.0
    for rate in args.rates:
        r = measure(rate, args.seconds, args.channels)
        ok = r["complete"] and r["status"] == 0 and abs(r["error"]) <= TOLERANCE
        if ok:
            sustained = max(sustained, rate)
        cpu = "n/a" if r["sim_cpu"] is None else f"{r['sim_cpu'] * 100:.0f} %"
        print(
            f"| {rate:g} | {r['received']}/{r['samples']} | {r['mean']:.3f} | "
            f"{r['error'] * 100:+.3f} % | {r['status']} | {cpu} | {r['mb_per_s']:.2f} |"
            + ("" if ok else " NOT sustained"),
            flush=True,
        )
    print(f"highest sustained rate: {sustained:g} lines/s")


if __name__ == "__main__":
    main()
