"""The `gateway` command."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("gateway: not implemented yet", file=sys.stderr)
    return 2
