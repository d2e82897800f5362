"""``make bench``: run every benchmark; each writes bench/results/<name>.json."""

import importlib
import pkgutil
import sys
from pathlib import Path

SKIP = {"common"}


def main() -> int:
    names = sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if info.name not in SKIP and not info.name.startswith("_")
    )
    for name in names:
        print(f"== bench/{name}", flush=True)
        importlib.import_module(f"bench.{name}").main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
