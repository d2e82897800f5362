"""The site's FIELDGATE_WEB_* variables: declared once, read only through the declarations,
every one in the README, and a wrong one named in one line."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from web.settings import variables

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
NAME = re.compile(r"\bFIELDGATE_WEB_[A-Z0-9_]+\b")


def mentioned_names() -> set[str]:
    """Every FIELDGATE_WEB_* name the code, the units and the playbook use."""
    names: set[str] = set()
    for folder, patterns in (
        ("web", ("*.py",)),
        ("gateway", ("*.py",)),
        ("systemd", ("*",)),
        ("ansible", ("*.yml", "*.j2", "gateway-firstboot", "fieldgate-web-provision")),
    ):
        for pattern in patterns:
            for path in (REPO / folder).rglob(pattern):
                if path.is_file():
                    names |= set(NAME.findall(path.read_text(errors="replace")))
    # Shorthands in prose ("FIELDGATE_WEB_S3_*") are not names; the first login's name and
    # password are read once by gateway-firstboot from the boot partition (docs/deploy.md).
    firstboot = {"FIELDGATE_WEB_USER", "FIELDGATE_WEB_PASSWORD"}
    return {name for name in names if not name.endswith("_")} - firstboot


def test_the_readme_table_is_the_declarations():
    readme = README.read_text()
    assert variables.readme_with_table(readme) == readme, (
        "README.md's site settings table is stale: "
        "run `python -m web.settings.variables --update-readme`"
    )
    for variable in variables.VARIABLES:
        assert f"| `{variable.name}` |" in readme


def test_every_name_the_code_uses_is_declared():
    undeclared = mentioned_names() - set(variables.BY_NAME)
    assert not undeclared, f"declare these in web/settings/variables.py: {sorted(undeclared)}"


def test_nothing_but_the_declarations_reads_the_sites_variables_from_the_environment():
    reads = re.compile(r"(os\.environ(\.get)?[\[(]|os\.getenv\()\s*[\"']FIELDGATE_WEB_")
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "web").rglob("*.py")
        if path.name != "variables.py" and reads.search(path.read_text())
    ]
    assert not offenders, offenders


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("FIELDGATE_WEB_PORT", "8001", 8001),
        ("FIELDGATE_WEB_HTTPS", "yes", True),
        ("FIELDGATE_WEB_HTTPS", "OFF", False),
        ("FIELDGATE_WEB_ALLOWED_HOSTS", " a.example, b.example ,", ("a.example", "b.example")),
        ("FIELDGATE_WEB_HSTS_SECONDS", "0", 0),
        ("FIELDGATE_WEB_REDIS_URL", "redis://r:6379/1", "redis://r:6379/1"),
    ],
)
def test_values_parse_by_their_kind(name, text, expected):
    assert variables.value(name, {name: text}) == expected


def test_a_missing_variable_is_its_default():
    assert variables.value("FIELDGATE_WEB_VIEWER_WINDOW", {}) == 64
    assert variables.value("FIELDGATE_WEB_HTTPS", {}) is False


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("FIELDGATE_WEB_PORT", "80a", "FIELDGATE_WEB_PORT='80a': expected a whole number"),
        (
            "FIELDGATE_WEB_VIEWER_WINDOW",
            "0",
            "FIELDGATE_WEB_VIEWER_WINDOW=0: expected a value above 0",
        ),
        ("FIELDGATE_WEB_HSTS_SECONDS", "-1", "expected a value of at least 0"),
        ("FIELDGATE_WEB_DEBUG", "maybe", "expected 1/0, true/false, yes/no or on/off"),
    ],
)
def test_a_wrong_value_is_one_line_naming_the_variable(name, text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        variables.value(name, {name: text})


def test_the_check_names_a_typo_with_the_nearest_name_and_a_wrong_value():
    environ = {
        "FIELDGATE_WEB_ALLOWED_HOST": "central.example",
        "FIELDGATE_WEB_PORT": "eighty",
        "FIELDGATE_WEB_HTTPS": "1",
        "PATH": "/usr/bin",
    }
    assert variables.problems(environ) == [
        "FIELDGATE_WEB_ALLOWED_HOST: not a setting of the site "
        "(did you mean FIELDGATE_WEB_ALLOWED_HOSTS?)",
        "FIELDGATE_WEB_PORT='eighty': expected a whole number",
    ]


def run_module(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FIELDGATE_WEB_")}
    return subprocess.run(
        [sys.executable, *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


CHECK = ("-m", "web.settings.variables", "--check", "--env-file")


def test_the_check_command_exits_1_on_an_env_file_with_a_typo(tmp_path):
    env_file = tmp_path / "web.env"
    env_file.write_text("FIELDGATE_WEB_TLS_PROXI=1\nFIELDGATE_WEB_HTTPS=1\n")
    done = run_module(
        "-m", "web.settings.variables", "--check", "--env-file", str(env_file), env={}
    )
    assert done.returncode == 1
    assert "FIELDGATE_WEB_TLS_PROXI: not a setting of the site" in done.stderr
    assert "did you mean FIELDGATE_WEB_TLS_PROXY?" in done.stderr
    env_file.write_text("FIELDGATE_WEB_TLS_PROXY=1\n")
    done = run_module(
        "-m", "web.settings.variables", "--check", "--env-file", str(env_file), env={}
    )
    assert (done.returncode, done.stdout.strip()) == (0, "site settings: OK"), done.stderr


def test_the_site_does_not_start_on_a_wrong_value(tmp_path):
    done = run_module(
        "-c",
        "import django; django.setup()",
        env={
            "DJANGO_SETTINGS_MODULE": "web.settings.gateway",
            "FIELDGATE_WEB_DATA_DIR": str(tmp_path),
            "FIELDGATE_WEB_VIEWER_WINDOW": "lots",
        },
    )
    assert done.returncode != 0
    assert (
        "ImproperlyConfigured: FIELDGATE_WEB_VIEWER_WINDOW='lots': expected a whole number"
        in done.stderr
    )
