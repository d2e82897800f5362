from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError, readme_with_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_lists_every_setting_as_the_code_defines_it():
    readme = README.read_text()
    assert readme_with_table(readme) == readme, (
        "README.md's settings table is stale: run `python -m gateway.settings --update-readme`"
    )


def test_defaults_suit_a_pi_and_parse_from_strings():
    settings = Settings.from_env(
        {
            "GATEWAY_ID": "pi-01",
            "GATEWAY_BATCH_ROWS": "1_000",
            "GATEWAY_NUMERIC_FIELDS": "no",
            "GATEWAY_FIELD_NAMES": "n, t ,hr",
            "GATEWAY_MODE": "LOCAL",
        }
    )
    assert settings.gateway_id == "pi-01"
    assert settings.batch_rows == 1000
    assert settings.numeric_fields is False
    assert settings.field_names == ("n", "t", "hr")
    assert settings.mode == "local"
    assert Settings.from_env({}).fsync_seconds == 1.0


def test_command_line_overrides_win():
    settings = Settings.from_env({"GATEWAY_PORT": "/dev/ttyUSB0"}, port="/dev/ttyACM0", baud=None)
    assert settings.port == "/dev/ttyACM0"
    assert settings.baud == 115200


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_BATCH_ROWS": "many"}, "GATEWAY_BATCH_ROWS='many': expected a whole number"),
        ({"GATEWAY_BATCH_ROWS": "0"}, "GATEWAY_BATCH_ROWS=0: expected a value above 0"),
        (
            {"GATEWAY_LINE_FORMAT": "xml"},
            "GATEWAY_LINE_FORMAT='xml': expected one of csv, csv-seq, json, nmea",
        ),
        (
            {"GATEWAY_NUMERIC_FIELDS": "maybe"},
            "GATEWAY_NUMERIC_FIELDS='maybe': expected one of 1/0, true/false, yes/no, on/off",
        ),
        (
            {"GATEWAY_FIELD_COUNT": "2", "GATEWAY_FIELD_NAMES": "a,b,c"},
            "GATEWAY_FIELD_NAMES has 3 names but GATEWAY_FIELD_COUNT is 2",
        ),
    ],
)
def test_bad_values_are_refused_with_the_variable_and_the_value(env, message):
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    assert str(error.value) == message
