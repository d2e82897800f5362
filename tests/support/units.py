"""Checks of the unit files in systemd/: ``systemd-analyze verify`` and the exposure scores of
``systemd-analyze security --offline=yes``.

``python -m tests.support.units --check systemd`` (make lint) fails on any verify output or a
reader/uploader exposure above 2.0; ``--table`` prints the scores as docs/deploy.md lists them.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

UNIT_DIR = "usr/local/lib/systemd/system"
# Programs the units start, as the roles install them (stubs in the check's root).
PROGRAMS = [
    "opt/fieldgate/venv/bin/gateway",
    "opt/fieldgate/venv/bin/django-admin",
    "opt/fieldgate/bin/gateway-firstboot",
    "bin/kill",
]
# Exposure limits (systemd-analyze security: 0 is best, 10 worst).
LIMITS = {
    "gateway-reader.service": 2.0,
    "gateway-reader@.service": 2.0,
    "gateway-uploader.service": 2.0,
}
EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+) (\S+)")


def unit_files(source: Path) -> list[Path]:
    return sorted(p for p in source.iterdir() if p.suffix in (".service", ".timer"))


def instance_name(unit: Path) -> str:
    """A template is checked through an instance of it."""
    return unit.name.replace("@.", "@monitor1.") if "@." in unit.name else unit.name


def verify(source: Path) -> str:
    """Everything ``systemd-analyze verify`` prints for the units, in a root that has Debian's
    own units, the units under test and stubs of the programs they start."""
    with tempfile.TemporaryDirectory(prefix="fieldgate-verify-") as tmp:
        root = Path(tmp)
        (root / "usr/lib/systemd").mkdir(parents=True)
        shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
        (root / UNIT_DIR).mkdir(parents=True)
        (root / "etc/systemd/system").mkdir(parents=True)
        for unit in unit_files(source):
            shutil.copy(unit, root / UNIT_DIR / unit.name)
        for program in PROGRAMS:
            path = root / program
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("#!/bin/sh\n")
            path.chmod(0o755)
        names = [f"/{UNIT_DIR}/{instance_name(u)}" for u in unit_files(source)]
        result = subprocess.run(
            ["systemd-analyze", "verify", f"--root={root}", *names],
            capture_output=True,
            text=True,
        )
        output = (result.stdout + result.stderr).replace(str(root), "")
        if result.returncode != 0 and not output.strip():
            output = f"systemd-analyze verify exited {result.returncode}"
        return output.strip()


def exposure(unit: Path) -> tuple[float, str]:
    with tempfile.TemporaryDirectory(prefix="fieldgate-security-") as tmp:
        # A template's score is its instance's; the file must carry the instance's name.
        path = Path(tmp) / instance_name(unit)
        shutil.copy(unit, path)
        result = subprocess.run(
            ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(path)],
            capture_output=True,
            text=True,
        )
    match = EXPOSURE.search(result.stdout + result.stderr)
    if match is None:
        raise RuntimeError(f"no exposure for {unit.name}:\n{result.stdout}{result.stderr}")
    return float(match.group(1)), match.group(2)


def scores(source: Path) -> dict[str, tuple[float, str]]:
    return {u.name: exposure(u) for u in unit_files(source) if u.suffix == ".service"}


def table(source: Path) -> str:
    lines = ["| unit | exposure | rating |", "|---|---|---|"]
    lines += [
        f"| `{name}` | {score:.1f} | {rating} |" for name, (score, rating) in scores(source).items()
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the folder of unit files (systemd/)")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args(argv)
    if args.table:
        print(table(args.source))
        return 0
    problems = []
    output = verify(args.source)
    if output:
        problems.append(f"systemd-analyze verify:\n{output}")
    found = scores(args.source)
    for name, limit in LIMITS.items():
        if found[name][0] > limit:
            problems.append(f"{name}: exposure {found[name][0]} above {limit}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
