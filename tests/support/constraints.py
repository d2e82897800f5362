"""``constraints.txt``: the exact versions of fieldgate's run-time dependencies that the tested
venv holds, for every install to reproduce (``make setup``, the Ansible role, so the image).

The run-time dependencies are the closure of fieldgate's own requirements and its ``central``
extra (the site's Redis layer and PostgreSQL driver) as pyproject.toml names them, resolved
through the installed packages' metadata with their markers evaluated here; development tools
are left out (they do not run on a gateway). ``python -m tests.support.constraints --write``
(``make constraints``) rewrites the file from the venv; ``--check`` (a test) fails when it
differs from what is installed.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
CONSTRAINTS = REPO / "constraints.txt"
EXTRAS = ("central",)
HEADER = """\
# Exact versions of fieldgate's run-time dependencies (and theirs), as in the tested venv.
# Installs use them: `pip install -c constraints.txt ...` (make setup, ansible/roles/fieldgate).
# Regenerate after changing dependencies: `make constraints` (docs/deploy.md).
"""


def _wanted(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    environment = default_environment()
    return any(
        requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras or {""}
    )


def project_requirements(extras: tuple[str, ...] = EXTRAS) -> list[str]:
    """fieldgate's own requirements and those of ``extras``, from pyproject.toml (the installed
    metadata of an editable install is as old as its last ``pip install``)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    optional = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(text for extra in extras for text in optional[extra])]


def runtime_closure(extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """Every installed distribution fieldgate[extras] needs at run time: name -> version."""
    pinned: dict[str, str] = {}
    todo = [Requirement(text) for text in project_requirements(extras)]
    todo = [(r.name, set(r.extras)) for r in todo if _wanted(r, set())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted_extras = todo.pop()
        key = (canonicalize_name(name), frozenset(wanted_extras))
        if key in seen:
            continue
        seen.add(key)
        distribution = metadata.distribution(name)
        pinned[canonicalize_name(name)] = distribution.version
        for text in distribution.requires or []:
            requirement = Requirement(text)
            if _wanted(requirement, wanted_extras):
                todo.append((requirement.name, set(requirement.extras)))
    return dict(sorted(pinned.items()))


def render(pins: dict[str, str]) -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in pins.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite constraints.txt")
    action.add_argument("--check", action="store_true", help="fail if it is out of date")
    args = parser.parse_args(argv)
    text = render(runtime_closure())
    if args.write:
        CONSTRAINTS.write_text(text)
        return 0
    current = CONSTRAINTS.read_text() if CONSTRAINTS.exists() else ""
    if current == text:
        return 0
    sys.stdout.writelines(
        difflib.unified_diff(
            current.splitlines(True), text.splitlines(True), "constraints.txt", "installed"
        )
    )
    print("constraints.txt differs from the venv: `make constraints` (or make setup)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
