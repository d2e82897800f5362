import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.core.records import CODECS
from gateway.settings import (
    SETTINGS,
    WHOLE,
    Section,
    Settings,
    SettingsError,
    environment_problems,
    load_env_file,
    readme_with_table,
)

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
            "GATEWAY_LINE_FORMAT='xml': expected one of auto, csv, csv-seq, json, nmea, "
            "nmea0183, delimited, keyvalue, raw",
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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_BATCH_SECONDS": "0"}, "GATEWAY_BATCH_SECONDS=0.0: expected a value above 0"),
        ({"GATEWAY_DASK_WORKERS": "-1"}, "GATEWAY_DASK_WORKERS=-1: expected 0 or more"),
        ({"GATEWAY_UPLOAD_GZIP_LEVEL": "10"}, "GATEWAY_UPLOAD_GZIP_LEVEL=10: expected 1 to 9"),
        (
            {"GATEWAY_UPLOAD_MULTIPART_BYTES": "1_000"},
            "GATEWAY_UPLOAD_MULTIPART_BYTES=1000: expected 5242880 or more",
        ),
        ({"GATEWAY_BYTESIZE": "9"}, "GATEWAY_BYTESIZE=9: expected one of 5, 6, 7, 8"),
        ({"GATEWAY_STOPBITS": "3"}, "GATEWAY_STOPBITS=3.0: expected one of 1, 1.5, 2"),
        (
            {"GATEWAY_STREAM_FRAME_RATE": "nan"},
            "GATEWAY_STREAM_FRAME_RATE='nan': expected a number",
        ),
        (
            {"GATEWAY_STREAM_URL": "http://site/"},
            "GATEWAY_STREAM_URL='http://site/': expected a ws:// or wss:// URL",
        ),
        (
            {"GATEWAY_KEEP_FREE_BYTES": "100%"},
            "GATEWAY_KEEP_FREE_BYTES='100%': expected bytes or a percentage below 100 like 10%",
        ),
        (
            {"GATEWAY_S3_VERIFY": "md5"},
            "GATEWAY_S3_VERIFY='md5': expected one of auto, checksum, etag, read",
        ),
        (
            {"GATEWAY_S3_VERIFY": "ETag", "GATEWAY_S3_VERIFY_ETAG": "0"},
            "GATEWAY_S3_VERIFY=etag verifies by ETag, but GATEWAY_S3_VERIFY_ETAG=0 forbids "
            "looking at ETags",
        ),
    ],
)
def test_bounds_choices_and_syntax_are_refused_in_the_same_words(env, message):
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    assert str(error.value) == message


def test_every_setting_is_declared_with_a_section_a_doc_and_a_unique_variable():
    assert {declared.env for declared in SETTINGS.values()} == {
        field.metadata["setting"].env for field in dataclasses.fields(Settings)
    }
    assert len({declared.env for declared in SETTINGS.values()}) == len(SETTINGS)
    for attribute, declared in SETTINGS.items():
        assert declared.attribute == attribute
        assert isinstance(declared.section, Section)
        assert declared.env.startswith("GATEWAY_")
        assert declared.doc.strip().endswith((".", ")")), declared.env
    assert {declared.section for declared in SETTINGS.values()} == set(Section)


@pytest.mark.parametrize("declared", SETTINGS.values(), ids=lambda declared: declared.env)
def test_every_default_is_of_its_kind_and_its_text_parses_back_to_it(declared):
    default = declared.default_value()
    assert isinstance(default, declared.kind.type)
    assert declared.parse(declared.format(default)) == default
    assert declared.problem(default) is None


ENUMERATIONS = [declared for declared in SETTINGS.values() if declared.choices]


@pytest.mark.parametrize("declared", ENUMERATIONS, ids=lambda declared: declared.env)
def test_every_enumeration_parses_case_insensitively(declared):
    for choice in declared.choices:
        text = f" {str(choice).upper()} "
        settings = Settings.from_env({declared.env: text})
        assert getattr(settings, declared.attribute) == choice


def test_the_line_formats_are_the_codecs():
    assert SETTINGS["line_format"].choices == tuple(CODECS)


BOUNDED = [declared for declared in SETTINGS.values() if declared.bounds]


@pytest.mark.parametrize("declared", BOUNDED, ids=lambda declared: declared.env)
def test_every_bound_admits_its_edge_and_refuses_what_lies_past_it(declared):
    bounds, step = declared.bounds, 1 if declared.kind is WHOLE else 0.5
    inside, outside = [], []
    if bounds.minimum is not None:
        edge = bounds.minimum
        (outside if bounds.exclusive_minimum else inside).append(edge)
        outside.append(edge - step)
        inside.append(edge + step)
    if bounds.maximum is not None:
        inside.append(bounds.maximum)
        outside.append(bounds.maximum + step)
    for value in inside:
        assert declared.problem(declared.kind.type(value)) is None, value
    for value in outside:
        value = declared.kind.type(value)
        with pytest.raises(SettingsError) as error:
            Settings.from_env({declared.env: str(value)})
        assert str(error.value) == f"{declared.env}={value!r}: expected {declared.allowed}"


def test_environment_problems_lists_every_problem_at_once():
    problems = environment_problems(
        {
            "GATEWAY_BUAD": "9600",
            "gateway_data_dir": "/tmp/x",
            "GATEWAY_SOMETHING_ELSE": "1",
            "GATEWAY_BATCH_ROWS": "0",
            "GATEWAY_BAUD": "fast",
            "GATEWAY_FIELD_COUNT": "2",
            "GATEWAY_FIELD_NAMES": "a,b,c",
            "AWS_SECRET_ACCESS_KEY": "not ours",
            "NOTIFY_SOCKET": "/run/systemd/notify",
        }
    )
    assert problems == [
        "GATEWAY_BUAD: unknown setting; did you mean GATEWAY_BAUD?",
        "GATEWAY_SOMETHING_ELSE: unknown setting",
        "gateway_data_dir: unknown setting; did you mean GATEWAY_DATA_DIR?",
        "GATEWAY_BAUD='fast': expected a whole number",
        "GATEWAY_BATCH_ROWS=0: expected a value above 0",
        "GATEWAY_FIELD_NAMES has 3 names but GATEWAY_FIELD_COUNT is 2",
    ]
    assert environment_problems({"GATEWAY_ID": "pi-01", "AWS_REGION": "eu-west-1"}) == []


def test_the_env_file_overrides_the_environment_and_says_what_it_set(tmp_path):
    env_file = tmp_path / "gateway.env"
    env_file.write_text("# comment\nGATEWAY_BAUD=9600\nAWS_ACCESS_KEY_ID=key\nEMPTY\n")
    environ = {"GATEWAY_ENV_FILE": str(env_file), "GATEWAY_BAUD": "115200", "GATEWAY_ID": "a"}
    assert load_env_file(environ) == {"GATEWAY_BAUD": "9600", "AWS_ACCESS_KEY_ID": "key"}
    assert environ["GATEWAY_BAUD"] == "9600"
    assert environ["AWS_ACCESS_KEY_ID"] == "key"  # the next boto3 session sees it
    assert Settings.from_env(environ).baud == 9600
    assert load_env_file({"GATEWAY_ID": "a"}) == {}


def test_a_missing_env_file_is_one_clear_error(tmp_path):
    missing = tmp_path / "nope.env"
    with pytest.raises(SettingsError) as error:
        load_env_file({"GATEWAY_ENV_FILE": str(missing)})
    assert str(error.value) == f"GATEWAY_ENV_FILE={str(missing)!r}: no such file"


def test_the_readme_has_a_table_per_section():
    readme = README.read_text()
    for section in Section:
        assert f"### {section.value}\n\n| variable | default | values | meaning |" in readme


def test_importing_the_settings_is_cheap():
    # The reader imports them; what only `gateway config` or an env file needs waits for it.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, gateway.settings; "
            "print(sorted({'dotenv', 'difflib', 'importlib.metadata'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


def test_show_masks_every_secret_and_says_where_each_value_came_from(tmp_path):
    from gateway.commands.config import format_shown, masked, shown, shown_as_json

    token = "s3cr3t-ingest-token-9f"
    env_file = tmp_path / "gateway.env"
    env_file.write_text(f"GATEWAY_STREAM_TOKEN={token}\n")
    environ = {"GATEWAY_ENV_FILE": str(env_file), "GATEWAY_ID": "pi-01"}
    load_env_file(environ)
    rows = shown(Settings.from_env(environ), environ)
    text, as_json = format_shown(rows), shown_as_json(rows)
    assert token not in text and token not in str(as_json)
    assert "GATEWAY_STREAM_TOKEN=****9f" in text
    assert as_json["GATEWAY_STREAM_TOKEN"] == {
        "section": "stream",
        "value": "****9f",
        "source": "env-file",
    }
    assert as_json["GATEWAY_ID"]["source"] == "environment"
    assert as_json["GATEWAY_BAUD"] == {"section": "serial", "value": 115200, "source": "default"}
    assert [row.env for row in rows] == [declared.env for declared in SETTINGS.values()]
    assert masked("short") == "****"  # too short to give away even two characters
    assert masked("") == ""
