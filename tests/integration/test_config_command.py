"""``--env-file`` and ``--version``, by the real command."""

import json
import os

import pytest

from tests.support.processes import run_gateway


@pytest.fixture(autouse=True)
def no_gateway_variables_from_outside(monkeypatch):
    """Only what a test sets: run_gateway passes this process's environment on."""
    for name in list(os.environ):
        if name.upper().startswith("GATEWAY_"):
            monkeypatch.delenv(name)


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
    by_variable = run_gateway({"GATEWAY_ENV_FILE": str(missing)}, "status")
    for ran in (by_option, by_variable):
        assert ran.returncode == 2
        assert ran.stderr == f"gateway: GATEWAY_ENV_FILE='{missing}': no such file\n"


def test_version_prints_the_package_version():
    from importlib.metadata import version

    ran = run_gateway({}, "--version")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == f"gateway {version('fieldgate')}\n"
