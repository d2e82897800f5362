"""``gateway config check|show``, ``--env-file`` and ``--version``, by the real command."""

import json
import os

import pytest

from gateway.settings import SETTINGS
from tests.support.processes import run_gateway

TOKEN = "ingest-token-0123456789-9f"


@pytest.fixture(autouse=True)
def no_gateway_variables_from_outside(monkeypatch):
    """Only what a test sets: run_gateway passes this process's environment on."""
    for name in list(os.environ):
        if name.upper().startswith("GATEWAY_"):
            monkeypatch.delenv(name)


def test_check_names_a_misspelt_variable_with_the_nearest_one_and_every_bad_value():
    checked = run_gateway({"GATEWAY_BUAD": "9600", "GATEWAY_BATCH_ROWS": "0"}, "config", "check")
    assert checked.returncode == 1, checked.stderr
    assert checked.stdout.splitlines() == [
        "GATEWAY_BUAD: unknown setting; did you mean GATEWAY_BAUD?",
        "GATEWAY_BATCH_ROWS=0: expected a value above 0",
    ]


def test_check_passes_a_good_environment_in_one_line(tmp_path):
    env_file = tmp_path / "gateway.env"
    env_file.write_text("GATEWAY_MODE=LOCAL\nAWS_ACCESS_KEY_ID=not-ours\n")
    env = {"GATEWAY_ID": "pi-01", "GATEWAY_ENV_FILE": str(env_file), "AWS_REGION": "eu-west-1"}
    checked = run_gateway(env, "config", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines() == [
        f"gateway config: OK (2 set in the environment, 1 in {env_file}, "
        f"{len(SETTINGS) - 3} defaults)"
    ]


def test_show_masks_the_stream_token_and_marks_where_values_come_from(tmp_path):
    env_file = tmp_path / "gateway.env"
    env_file.write_text(f"GATEWAY_STREAM_TOKEN={TOKEN}\n")
    env = {"GATEWAY_ID": "pi-01"}
    shown = run_gateway(env, "--env-file", str(env_file), "config", "show")
    assert shown.returncode == 0, shown.stderr
    assert TOKEN not in shown.stdout
    lines = shown.stdout.splitlines()
    assert lines[0] == "# General"
    assert "GATEWAY_STREAM_TOKEN=****9f" in shown.stdout
    assert any(line.startswith("GATEWAY_ID=pi-01 ") and "# environment" in line for line in lines)
    assert any(line.startswith("GATEWAY_BAUD=115200 ") and "# default" in line for line in lines)
    assert any(line.startswith("GATEWAY_STREAM_TOKEN=") and "# env-file" in line for line in lines)

    as_json = run_gateway(env, "--env-file", str(env_file), "config", "show", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert TOKEN not in as_json.stdout
    settings = json.loads(as_json.stdout)
    assert settings["GATEWAY_STREAM_TOKEN"] == {
        "section": "stream",
        "value": "****9f",
        "source": "env-file",
    }
    assert settings["GATEWAY_BATCH_ROWS"]["value"] == 60000


def test_status_reads_the_env_file_named_by_the_option(tmp_path):
    data_dir = tmp_path / "data"
    env_file = tmp_path / "gateway.env"
    env_file.write_text(f"GATEWAY_ID=from-the-file\nGATEWAY_DATA_DIR={data_dir}\n")
    status = run_gateway(
        {"GATEWAY_ID": "from-the-environment"}, "--env-file", str(env_file), "status", "--json"
    )
    assert status.returncode == 0, status.stderr
    reported = json.loads(status.stdout)
    assert reported["gateway_id"] == "from-the-file"
    assert reported["data_dir"] == str(data_dir)


def test_a_missing_env_file_is_one_line_and_exit_code_2(tmp_path):
    missing = tmp_path / "nope.env"
    by_option = run_gateway({}, "--env-file", str(missing), "status")
    by_variable = run_gateway({"GATEWAY_ENV_FILE": str(missing)}, "config", "check")
    for ran in (by_option, by_variable):
        assert ran.returncode == 2
        assert ran.stderr == f"gateway: GATEWAY_ENV_FILE='{missing}': no such file\n"


def test_version_prints_the_package_version():
    from importlib.metadata import version

    ran = run_gateway({}, "--version")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == f"gateway {version('fieldgate')}\n"
