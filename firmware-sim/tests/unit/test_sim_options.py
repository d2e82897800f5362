"""Options: defaults, and bad values ending with exit status 2 and a message naming them."""

import pytest

from firmware_sim.cli import main
from firmware_sim.options import parse_options
from firmware_sim.waveforms import WaveformSettings


def test_defaults():
    options = parse_options(["--link", "/tmp/ttyFG0"])
    assert options.rate == 250 and options.samples is None and options.seed is None
    assert options.waveform == WaveformSettings("ecg", 2, 1.0, 0.0, 0.0, 1.0, 60.0)
    assert (options.line_format, options.terminator, options.sentence) == (
        "csv-seq",
        b"\n",
        "FGDAT",
    )
    assert (options.decimals, options.drain_timeout, options.wait_for_reader) == (4, 10.0, True)
    assert (options.replay, options.replay_header, options.faults) == (None, "auto", ())


def test_duration_is_round_duration_times_rate_samples():
    assert parse_options(["--link", "x", "--rate", "30", "--duration", "1.25"]).samples == 38


def test_fault_specs_accumulate_over_repeated_options():
    options = parse_options(
        ["--link", "x", "--faults", "garbage=0.1", "--faults", "pause@3,utf8@4"]
    )
    assert [rule.kind for rule in options.faults] == ["garbage", "pause", "utf8"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rate", "0"], "argument --rate: must be a number > 0 and <= 1000000, got '0'"),
        (["--rate", "fast"], "argument --rate: must be a number > 0 and <= 1000000, got 'fast'"),
        (["--rate", "nan"], "argument --rate: must be a number > 0 and <= 1000000, got 'nan'"),
        (["--channels", "0"], "argument --channels: must be an integer from 1 to 64, got '0'"),
        (["--channels", "2.5"], "argument --channels: must be an integer from 1 to 64, got '2.5'"),
        (["--samples", "-1"], "argument --samples: must be an integer >= 0, got '-1'"),
        (["--duration", "0"], "argument --duration: must be a number > 0, got '0'"),
        (
            ["--samples", "5", "--duration", "1"],
            "argument --duration: not allowed with argument --samples",
        ),
        (
            ["--rate", "10", "--duration", "0.01"],
            "argument --duration: 0.01 s at 10 lines per second is not a single sample",
        ),
        (["--amplitude", "inf"], "argument --amplitude: must be a finite number, got 'inf'"),
        (["--noise", "-0.1"], "argument --noise: must be a finite number >= 0, got '-0.1'"),
        (
            ["--heart-rate", "400"],
            "argument --heart-rate: must be a number from 20 to 300, got '400'",
        ),
        (["--decimals", "10"], "argument --decimals: must be an integer from 0 to 9, got '10'"),
        (["--seed", "-5"], "argument --seed: must be an integer >= 0, got '-5'"),
        (["--drain-timeout", "-1"], "argument --drain-timeout: must be a number >= 0, got '-1'"),
        (
            ["--waveform", "triangle"],
            "argument --waveform: must be one of ecg, sine, square, sawtooth, noise, counter, "
            "got 'triangle'",
        ),
        (
            ["--format", "xml"],
            "argument --format: must be one of csv, csv-seq, json, nmea, nmea0183, keyvalue, "
            "delimited, raw, got 'xml'",
        ),
        (
            ["--format", "nmea", "--sentence", "fgdat"],
            "argument --sentence: must match [A-Z0-9]{1,10}, got 'fgdat'",
        ),
        (["--sentence", "ECG"], "argument --sentence: only used with --format nmea"),
        (["--terminator", "cr"], "argument --terminator: must be one of lf, crlf, got 'cr'"),
        (
            ["--replay-header", "yes"],
            "argument --replay-header: must be one of auto, send, skip, got 'yes'",
        ),
        (
            ["--frequency", "5"],
            "argument --frequency: not used by --waveform ecg (set --heart-rate)",
        ),
        (
            ["--waveform", "sine", "--heart-rate", "80"],
            "argument --heart-rate: only used with --waveform ecg",
        ),
        (
            ["--faults", "garbage=2"],
            "argument --faults: fault probability must be a number from 0 to 1, "
            "got '2' in 'garbage=2'",
        ),
        (
            ["--faults", "overlong@3:100"],
            "argument --faults: overlong line length must be an integer from 65537 to "
            "16777216 (more than 64 KiB), got '100' in 'overlong@3:100'",
        ),
        (
            ["--replay", "/dev/null", "--channels", "3"],
            "argument --channels: not allowed with --replay",
        ),
        (
            ["--format", "keyvalue", "--names", "temp,1st"],
            "argument --names: bad name '1st' (names are 1 to 32 characters, not starting with "
            "a digit, '+', '-' or '.', without whitespace, control characters or any of ,;:=\")",
        ),
        (
            ["--format", "delimited", "--names", ",".join(f"c{k}" for k in range(65))],
            "argument --names: 65 names, at most 64 channels",
        ),
        (
            ["--format", "delimited", "--names", "a,b", "--channels", "3"],
            "argument --names: 2 names for --channels 3",
        ),
        (
            ["--format", "keyvalue", "--names", "a,b,a"],
            "argument --names: 'a' is named twice",
        ),
        (
            ["--format", "delimited", "--names", "t,x", "--time-column"],
            "argument --names: 't' is named twice (--time-column adds t)",
        ),
        (
            ["--names", "a,b"],
            "argument --names: only used with --format keyvalue or delimited",
        ),
        (
            ["--format", "delimited", "--talker", "GN"],
            "argument --talker: only used with --format nmea0183",
        ),
        (
            ["--format", "nmea0183", "--talker", "GX"],
            "argument --talker: must be one of GP, GL, GA, GB, BD, GN, got 'GX'",
        ),
        (
            ["--format", "nmea0183", "--proprietary", "sirf"],
            "argument --proprietary: must be one of pgrme, pubx, none, got 'sirf'",
        ),
        (["--ais"], "argument --ais: only used with --format nmea0183"),
        (
            ["--format", "nmea0183", "--decimals", "3"],
            "argument --decimals: not used by --format nmea0183 (a GNSS receiver sends "
            "positions, not waveforms)",
        ),
        (
            ["--format", "keyvalue", "--kv-assign", "-"],
            "argument --kv-assign: must be one of :, =, got '-'",
        ),
        (
            ["--format", "keyvalue", "--kv-separator", "semicolon"],
            "argument --kv-separator: must be one of comma, space, tab, got 'semicolon'",
        ),
        (
            ["--format", "delimited", "--delimiter", "pipe"],
            "argument --delimiter: must be one of comma, semicolon, tab, space, got 'pipe'",
        ),
        (["--delimiter", "tab"], "argument --delimiter: only used with --format delimited"),
        (
            ["--boot-header"],
            "argument --boot-header: only used with --format delimited, keyvalue, nmea0183 or raw",
        ),
        (
            ["--format", "keyvalue", "--reboot-on-replug"],
            "argument --reboot-on-replug: the device prints nothing at boot (--boot-header)",
        ),
        (
            ["--format", "delimited", "--no-boot-header", "--reboot-on-replug"],
            "argument --reboot-on-replug: the device prints nothing at boot (--boot-header)",
        ),
        (
            ["--faults", "garbage=0.1,badsum@3"],
            "argument --faults: badsum needs lines with a checksum (--format nmea or nmea0183), "
            "got --format csv-seq",
        ),
        (
            ["--replay", "/dev/null", "--format", "nmea0183"],
            "argument --format: not allowed with --replay",
        ),
        (
            ["--replay", "/dev/null", "--boot-header"],
            "argument --boot-header: not allowed with --replay",
        ),
        (
            ["--replay", "/nonexistent/rec.csv"],
            "argument --replay: can't open '/nonexistent/rec.csv': No such file or directory",
        ),
        (
            ["--fault-log", "/nonexistent/faults.jsonl"],
            "argument --fault-log: can't open '/nonexistent/faults.jsonl': "
            "No such file or directory",
        ),
    ],
)
def test_bad_options_exit_2_naming_the_bad_value(args, message, tmp_path, capsys):
    assert main(["--link", str(tmp_path / "tty"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: firmware-sim ")
    assert err.splitlines()[-1] == f"firmware-sim: error: {message}"
    assert not (tmp_path / "tty").exists()


def test_the_link_needs_an_existing_directory(capsys):
    assert main(["--link", "/nonexistent/dir/tty"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "firmware-sim: error: argument --link: directory /nonexistent/dir does not exist"


def test_an_existing_link_is_not_replaced(tmp_path, capsys):
    link = tmp_path / "tty"
    link.write_text("not a port")
    assert main(["--link", str(link)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"firmware-sim: error: argument --link: {link} already exists "
        "(another firmware-sim running? remove it first)"
    )
    assert link.read_text() == "not a port"


def test_a_missing_link_option_is_a_usage_error(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "firmware-sim: error: the following arguments are required: --link"
    )


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "Exit status: 0 every line sent and read" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    "fmt, terminator, boot_header",
    [
        ("csv-seq", b"\n", False),
        ("nmea", b"\n", False),
        ("nmea0183", b"\r\n", False),  # NMEA 0183 mandates CR LF
        ("keyvalue", b"\r\n", False),  # as Arduino's Serial.println ends lines
        ("delimited", b"\n", True),  # instruments print their header at power-on
        ("raw", b"\n", False),
    ],
)
def test_each_format_has_its_own_default_terminator_and_boot_header(fmt, terminator, boot_header):
    options = parse_options(["--link", "x", "--format", fmt])
    assert (options.terminator, options.terminator_given) == (terminator, False)
    assert options.boot_header is boot_header
    given = parse_options(["--link", "x", "--format", fmt, "--terminator", "lf"])
    assert (given.terminator, given.terminator_given) == (b"\n", True)


def test_dialect_defaults():
    options = parse_options(["--link", "x", "--format", "nmea0183"])
    assert (options.talker, options.proprietary, options.ais) == ("GP", "pgrme", False)
    kv = parse_options(["--link", "x", "--format", "keyvalue", "--channels", "3"])
    assert kv.names == ("ch0", "ch1", "ch2")
    assert (kv.kv_separator, kv.kv_assign, kv.time_column) == (b",", b":", False)
    table = parse_options(["--link", "x", "--format", "delimited", "--names", "a,b,c"])
    assert table.names == ("a", "b", "c") and table.waveform.channels == 3
    assert (table.delimiter, table.reboot_on_replug) == (b",", False)


def test_badsum_may_go_with_a_replay_whose_lines_may_carry_checksums():
    options = parse_options(["--link", "x", "--replay", "gps.nmea", "--faults", "badsum=0.1"])
    assert [rule.kind for rule in options.faults] == ["badsum"]
