"""The unit files in systemd/: ``systemd-analyze verify`` prints nothing, the reader and the
uploader keep an exposure of at most 2.0, and docs/deploy.md shows the scores they have."""

import shutil
from pathlib import Path

import pytest

from tests.support import units

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "systemd"

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (make setup)"
)


def test_every_unit_verifies_without_a_word():
    assert units.verify(SYSTEMD) == ""


def test_verify_would_catch_an_unknown_key(tmp_path):
    """The check above can fail: an unknown key makes verify talk (while still exiting 0)."""
    copy = tmp_path / "systemd"
    shutil.copytree(SYSTEMD, copy)
    with open(copy / "gateway-uploader.service", "a") as unit:
        unit.write("[Service]\nWatchDogSec=5\n")
    assert "Unknown key 'WatchDogSec'" in units.verify(copy)


@pytest.mark.parametrize("unit", sorted(units.LIMITS))
def test_exposure_is_at_most_the_limit(unit):
    score, _ = units.exposure(SYSTEMD / unit)
    assert score <= units.LIMITS[unit]


def test_docs_list_every_units_score():
    text = (REPO / "docs/deploy.md").read_text()
    assert units.table(SYSTEMD) in text, (
        "docs/deploy.md's security table is out of date; "
        "regenerate it with `python -m tests.support.units --table systemd`"
    )


def test_docs_list_every_role_default():
    """Every variable of every role's defaults/main.yml is in docs/deploy.md, with a comment
    above it in the defaults file."""
    import re

    import yaml

    text = (REPO / "docs/deploy.md").read_text()
    for defaults in sorted((REPO / "ansible/roles").glob("*/defaults/main.yml")):
        lines = defaults.read_text().splitlines()
        names = list(yaml.safe_load(defaults.read_text()))
        for name in names:
            assert f"| `{name}` |" in text, f"docs/deploy.md does not list {name}"
            index = next(i for i, line in enumerate(lines) if re.match(rf"{name}:", line))
            above = lines[index - 1] if index else ""
            assert above.startswith("#") or re.match(r"[a-z0-9_]+:", above), (
                f"{defaults}: {name} has no comment"
            )
