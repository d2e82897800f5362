"""constraints.txt pins what the tested venv holds, and every install path uses it."""

from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import constraints

REPO = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    lines = constraints.CONSTRAINTS.read_text().splitlines()
    pairs = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {name: version for name, version in pairs}


def test_constraints_pin_exactly_the_versions_the_tests_run_with(capsys):
    assert constraints.main(["--check"]) == 0, capsys.readouterr().out


def test_every_run_time_requirement_is_pinned_and_no_development_tool_is():
    pinned = pins()
    for text in constraints.project_requirements():
        assert canonicalize_name(Requirement(text).name) in pinned, text
    for tool in ("pytest", "ruff", "moto", "ansible", "daphne", "playwright"):
        assert tool not in pinned


def test_make_setup_and_the_ansible_role_install_with_the_constraints():
    makefile = (REPO / "Makefile").read_text()
    assert "pip install -q -c constraints.txt -e '.[dev]'" in makefile
    role = (REPO / "ansible/roles/fieldgate/tasks/main.yml").read_text()
    assert "extra_args: -c /opt/fieldgate/constraints.txt" in role
