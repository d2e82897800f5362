"""``python -m tests.soak soak --duration 30m`` / ``python -m tests.soak crash --kills 1000``:
the long runs behind ``make soak`` and ``make crash``. Exit status 0 only when the campaign
passed; figures and samples go to artifacts/<kind>/<time>/ (or ``--out``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.soak.campaigns import CrashOptions, SoakOptions, parse_duration, run_crash, run_soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    soak = commands.add_parser("soak", help="the whole chain under faults, watched for growth")
    soak.add_argument("--duration", default="10m", help="120, 120s, 30m, 24h (default 10m)")
    soak.add_argument("--rate", type=int, default=1000, help="lines per second (default 1000)")
    soak.add_argument("--channels", type=int, default=8, help="values per line (default 8)")
    soak.add_argument("--seed", type=int, default=1)
    soak.add_argument("--sample-seconds", type=float, default=3.0)
    soak.add_argument("--fault-period", type=float, help="seconds between injected events")
    soak.add_argument("--disk-mib", type=int, default=128, help="size of the data dir's tmpfs")
    soak.add_argument(
        "--no-disk-pressure", action="store_true", help="no tmpfs (for non-root runs)"
    )
    soak.add_argument("--out", type=Path, help="artifacts folder (default artifacts/soak/<time>)")
    crash = commands.add_parser("crash", help="SIGKILL reader and uploader, audit each time")
    crash.add_argument("--kills", type=int, default=50, help="rounds (default 50)")
    crash.add_argument("--seed", type=int, default=1)
    crash.add_argument("--rate", type=int, default=1000)
    crash.add_argument("--channels", type=int, default=8)
    crash.add_argument("--out", type=Path, help="artifacts folder (default artifacts/crash/<time>)")
    args = parser.parse_args(argv)
    if args.command == "soak":
        result = run_soak(
            SoakOptions(
                duration=parse_duration(args.duration),
                rate=args.rate,
                channels=args.channels,
                seed=args.seed,
                sample_seconds=args.sample_seconds,
                fault_period=args.fault_period,
                disk_mib=args.disk_mib,
                disk_pressure=not args.no_disk_pressure,
                out=args.out,
            )
        )
    else:
        result = run_crash(
            CrashOptions(
                kills=args.kills,
                seed=args.seed,
                rate=args.rate,
                channels=args.channels,
                out=args.out,
            )
        )
    for failure in result.failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
