"""Command line of the simulator (placeholder until the simulator lands)."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("firmware-sim: not implemented yet", file=sys.stderr)
    return 2
