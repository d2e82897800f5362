"""``python -m tests.powercut --cuts 50``: the power-cut campaign behind ``make powercut``.
Exit status 0 only when it passed; the report (markdown and JSON, one line per cut) goes to
artifacts/powercut/<time>/ (or ``--out``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.powercut.campaign import PowercutOptions, run_powercut


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.powercut", description=__doc__)
    parser.add_argument("--cuts", type=int, default=50, help="power cuts (default 50)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=int, default=1000, help="lines per second (default 1000)")
    parser.add_argument("--channels", type=int, default=8, help="values per line (default 8)")
    parser.add_argument("--fsync-seconds", type=float, default=1.0, help="GATEWAY_FSYNC_SECONDS")
    parser.add_argument("--batch-seconds", type=float, default=5.0, help="GATEWAY_BATCH_SECONDS")
    parser.add_argument(
        "--slack-seconds", type=float, default=0.5, help="allowed beyond the fsync period"
    )
    parser.add_argument("--early-share", type=float, default=0.25, help="cuts during start-up")
    parser.add_argument("--torn-share", type=float, default=0.3, help="cuts with some write-back")
    parser.add_argument(
        "--out", type=Path, help="report folder (default artifacts/powercut/<time>)"
    )
    args = parser.parse_args(argv)
    result = run_powercut(
        PowercutOptions(
            cuts=args.cuts,
            seed=args.seed,
            rate=args.rate,
            channels=args.channels,
            fsync_seconds=args.fsync_seconds,
            batch_seconds=args.batch_seconds,
            slack_seconds=args.slack_seconds,
            early_share=args.early_share,
            torn_share=args.torn_share,
            out=args.out,
        )
    )
    for failure in result.failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
