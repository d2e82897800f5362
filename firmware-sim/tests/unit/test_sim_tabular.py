"""keyvalue (Arduino Serial Plotter style) and delimited (columns under a boot header): the
encoders, the header at boot and after a replug, and faults, checked with the independent
reference receiver."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim.cli import build_device
from firmware_sim.device import Send, Unplug
from firmware_sim.options import parse_options
from firmware_sim.tabular import (
    SPACE_COLUMN_WIDTH,
    DelimitedEncoder,
    KeyValueEncoder,
    is_valid_name,
)

from reference_receiver import (
    NUMBER,
    Rejected,
    parse_pairs,
    parse_row,
    receive_lines,
    split_columns,
)

values = st.lists(st.from_regex(NUMBER, fullmatch=True), min_size=1, max_size=6)
KV_LAYOUTS = [(sep, assign) for sep in ("comma", "space", "tab") for assign in (":", "=")]
SEPARATOR = {"comma": ",", "space": " ", "tab": "\t", "semicolon": ";"}


def stream_of(*args: str, seed: int = 1):
    """The bytes on the wire, the actions, and the fault-log entries of a run."""
    device = build_device(parse_options(["--link", "/tmp/unused", *args]), seed, None)
    stream, actions, entries = bytearray(), [], []
    while (action := device.next_action()) is not None:
        actions.append(action)
        if isinstance(action, Send):
            stream += action.data
        if action.fault is not None:
            entries.append(action.fault)
    return bytes(stream), actions, entries


# --- keyvalue ---------------------------------------------------------------------------------


def test_keyvalue_lines_are_name_value_pairs_like_the_arduino_plotter_reads():
    encoder = KeyValueEncoder(["temp", "humidity"])
    assert encoder.encode(0, b"0.000000", [b"21.5", b"40.2"]) == b"temp:21.5,humidity:40.2"
    spaced = KeyValueEncoder(["ch0", "ch1"], b" ", b"=")
    assert spaced.encode(3, b"0.012000", [b"0.12", b"-0.5"]) == b"ch0=0.12 ch1=-0.5"
    timed = KeyValueEncoder(["a"], b"\t", b":", time_column=True)
    assert timed.encode(3, b"0.012000", [b"1"]) == b"t:0.012000\ta:1"
    assert timed.header() == b"t:\ta:"


@given(texts=values, layout=st.sampled_from(KV_LAYOUTS))
def test_keyvalue_round_trips_through_the_reference_receiver(texts, layout):
    separator, assign = layout
    names = [f"ch{k}" for k in range(len(texts))]
    sep = SEPARATOR[separator]
    encoder = KeyValueEncoder(names, sep.encode(), assign.encode())
    line = encoder.encode(0, b"0.000000", [t.encode() for t in texts])
    assert parse_pairs(line, sep, assign) == list(zip(names, texts, strict=True))
    assert parse_pairs(encoder.header(), sep, assign) == [(name, None) for name in names]


def test_keyvalue_run_defaults_crlf_names_and_no_header():
    stream, _, _ = stream_of("--format", "keyvalue", "--samples", "3", "--channels", "3")
    lines = stream.split(b"\r\n")
    assert lines[-1] == b"" and len(lines) == 4 and stream.count(b"\n") == 3
    for line in lines[:3]:
        assert [name for name, _ in parse_pairs(line, ",", ":")] == ["ch0", "ch1", "ch2"]


def test_keyvalue_boot_header_is_the_labels_only_line_sent_once():
    stream, _, _ = stream_of(
        "--format", "keyvalue", "--names", "temp,rh", "--boot-header", "--samples", "5"
    )
    lines = stream.split(b"\r\n")[:-1]
    assert lines[0] == b"temp:,rh:" and len(lines) == 6
    assert all(parse_pairs(line, ",", ":")[0][1] is not None for line in lines[1:])


def test_keyvalue_truncated_leaves_the_last_name_without_a_value():
    stream, _, entries = stream_of(
        "--format", "keyvalue", "--names", "a,b", "--samples", "2", "--faults", "truncated@1"
    )
    line = stream.split(b"\r\n")[1]
    assert line.startswith(b"a:") and line.endswith(b",b")
    with pytest.raises(Rejected, match="not a pair: 'b'"):
        parse_pairs(line, ",", ":")
    assert entries[0]["rejected"] == 1 and entries[0]["bytes"] == len(line)


# --- delimited --------------------------------------------------------------------------------


@given(
    texts=values,
    time_column=st.booleans(),
    delimiter=st.sampled_from(["comma", "semicolon", "tab", "space"]),
)
def test_delimited_rows_round_trip_under_their_header(texts, time_column, delimiter):
    names = [f"v{k}" for k in range(len(texts))]
    sep = SEPARATOR[delimiter]
    encoder = DelimitedEncoder(names, sep.encode(), time_column)
    line = encoder.encode(0, b"1.500000", [t.encode() for t in texts])
    header = split_columns(encoder.header(), sep)
    assert header == (["t"] if time_column else []) + names
    assert parse_row(line, sep, len(header)) == (["1.500000"] if time_column else []) + texts


def test_space_delimited_columns_are_right_aligned_like_printf():
    encoder = DelimitedEncoder(["ch0", "a_rather_long_name"], b" ", time_column=True)
    header = encoder.header()
    line = encoder.encode(0, b"0.004000", [b"-0.5000", b"12345678901234567890"])
    width = SPACE_COLUMN_WIDTH
    assert header == b"t".rjust(width) + b"ch0".rjust(width) + b" a_rather_long_name"
    assert line == b"0.004000".rjust(width) + b"-0.5000".rjust(width) + b" 12345678901234567890"


def test_delimited_header_goes_once_at_boot_then_rows():
    stream, _, _ = stream_of(
        "--format", "delimited", "--delimiter", "semicolon", "--time-column", "--samples", "4"
    )
    lines = stream.split(b"\n")[:-1]
    assert lines[0] == b"t;ch0;ch1"
    assert [row.split(b";")[0] for row in lines[1:]] == [
        b"0.000000",
        b"0.004000",
        b"0.008000",
        b"0.012000",
    ]
    assert sum(not parse_or_none(line) for line in lines) == 1  # only the header is not a row


def parse_or_none(line: bytes):
    try:
        return parse_row(line, ";", 3)
    except Rejected:
        return None


def test_no_boot_header_sends_rows_only():
    stream, _, _ = stream_of("--format", "delimited", "--no-boot-header", "--samples", "3")
    assert all(parse_row(line, ",", 2) for line in stream.split(b"\n")[:-1])


def test_the_header_is_sent_again_after_a_replug_only_with_reboot_on_replug():
    base = ("--format", "delimited", "--rate", "100", "--samples", "300")
    once, _, _ = stream_of(*base, "--faults", "unplug@100:0.5")
    assert once.count(b"ch0,ch1\n") == 1
    stream, actions, entries = stream_of(
        *base, "--faults", "unplug@100:0.5,unplug@250:0.004", "--reboot-on-replug"
    )
    headers = [a for a in actions if isinstance(a, Send) and a.data == b"ch0,ch1\n"]
    assert [h.n for h in headers] == [0, 150, 250]  # at boot, after each replug
    unplugs = [i for i, a in enumerate(actions) if isinstance(a, Unplug)]
    assert [actions[i + 1] for i in unplugs] == headers[1:]  # first thing after the port is back
    assert entries[1]["lines_lost"] == 0  # 4 ms at 100 Hz loses nothing, still a reboot
    received = receive_lines(stream, lambda line: parse_row(line, ",", 2))
    assert [line for line, _ in received.rejected] == [b"ch0,ch1"] * 3
    assert len(received.kept) == 300 - entries[0]["lines_lost"]


def test_an_unplug_that_ends_the_run_sends_no_header_after_it():
    _, actions, _ = stream_of(
        "--format", "delimited", "--rate", "10", "--samples", "20",
        "--faults", "unplug@15:10", "--reboot-on-replug",
    )  # fmt: skip
    assert isinstance(actions[-1], Unplug) and actions[-1].last


@pytest.mark.parametrize("delimiter", ["comma", "tab", "space"])
def test_delimited_truncated_cuts_before_the_last_delimiter(delimiter):
    args = ("--format", "delimited", "--delimiter", delimiter, "--channels", "3", "--samples", "2")
    clean = stream_of(*args)[0].split(b"\n")
    cut = stream_of(*args, "--faults", "truncated@1")[0].split(b"\n")
    sep = SEPARATOR[delimiter]
    assert split_columns(cut[2], sep) == split_columns(clean[2], sep)[:2]
    assert clean[2].startswith(cut[2])


@pytest.mark.parametrize("fmt", ["keyvalue", "delimited"])
@pytest.mark.parametrize("layout", ["comma", "space"])
def test_overlong_pads_the_last_value_to_exactly_the_length(fmt, layout):
    option = "--kv-separator" if fmt == "keyvalue" else "--delimiter"
    args = ("--format", fmt, option, layout, "--samples", "1", "--no-boot-header")
    stream, _, entries = stream_of(*args, "--faults", "overlong@0:65537")
    line = stream.rstrip(b"\r\n")
    assert len(line) == 65537 == entries[0]["bytes"]
    clean = stream_of(*args)[0].rstrip(b"\r\n")
    sep = SEPARATOR[layout]
    if fmt == "keyvalue":
        got = parse_pairs(line, sep, ":", max_line=10**6)
        want = parse_pairs(clean, sep, ":")
    else:
        got, want = parse_row(line, sep, 2, max_line=10**6), parse_row(clean, sep, 2)
    assert [float(v) for v in _values(got)] == [float(v) for v in _values(want)]


def _values(parsed):
    return [v for _, v in parsed] if parsed and isinstance(parsed[0], tuple) else parsed


@pytest.mark.parametrize("fmt", ["keyvalue", "delimited"])
def test_utf8_puts_the_invalid_byte_in_a_value_where_the_log_says(fmt):
    stream, _, entries = stream_of(
        "--format", fmt, "--delimiter" if fmt == "delimited" else "--kv-separator", "space",
        "--samples", "50", "--no-boot-header", "--faults", "utf8=0.5", seed=3,
    )  # fmt: skip
    lines = stream.replace(b"\r\n", b"\n").split(b"\n")
    assert len(entries) > 10
    for entry in entries:
        line = lines[entry["n"]]
        assert line[entry["offset"]] == entry["byte"] and len(line) == entry["bytes"]
        repaired = line[: entry["offset"]] + line[entry["offset"] + 1 :]
        assert repaired.decode()  # the rest is the clean line (give or take aligning spaces)


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, ok",
    [
        ("ch0", True),
        ("temp_°C", True),
        ("µA", True),
        ("x" * 32, True),
        ("x" * 33, False),
        ("1st", False),
        ("-x", False),
        (".x", False),
        ("a b", False),
        ("a,b", False),
        ("a;b", False),
        ("a:b", False),
        ("a=b", False),
        ('a"b', False),
        ("a\tb", False),
        ("", False),
    ],
)
def test_names_must_survive_every_layout(name, ok):
    assert is_valid_name(name) is ok


def test_the_same_seed_gives_the_same_bytes_for_keyvalue_and_delimited():
    for fmt in ("keyvalue", "delimited"):
        args = (
            "--format",
            fmt,
            "--waveform",
            "noise",
            "--samples",
            "200",
            "--faults",
            "garbage=0.1",
        )
        assert stream_of(*args, seed=4)[0] == stream_of(*args, seed=4)[0]
        assert stream_of(*args, seed=4)[0] != stream_of(*args, seed=5)[0]


def test_the_values_are_those_of_csv_for_the_same_seed():
    csv = stream_of("--format", "csv", "--waveform", "noise", "--samples", "50")[0]
    table = stream_of(
        "--format", "delimited", "--time-column", "--waveform", "noise", "--samples", "50"
    )[0]
    assert table == b"t,ch0,ch1\n" + csv


def test_keyvalue_garbage_is_invalid_utf8_from_its_first_byte():
    stream, actions, entries = stream_of(
        "--format", "keyvalue", "--samples", "500", "--faults", "garbage=0.2:1"
    )
    garbage = [a.data for a in actions if isinstance(a, Send) and a.fault is not None]
    assert len(garbage) == len(entries) > 50
    for data in garbage:
        with pytest.raises(UnicodeDecodeError):
            data.decode()
    received = receive_lines(stream, lambda line: parse_pairs(line, ",", ":"))
    assert len(received.rejected) == len(entries)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    fmt=st.sampled_from(["keyvalue", "delimited"]),
    layout=st.sampled_from(["comma", "space", "tab"]),
    spec=st.sampled_from(
        [
            "garbage=0.02,truncated=0.02,overlong=0.005,utf8=0.02",
            "burst=0.01,pause=0.01:0.02,unplug@100:0.5,truncated=0.05",
            "unplug=0.005:0.1,garbage=0.05:1,truncated@0,utf8@1,overlong@2",
        ]
    ),
)
def test_a_receiver_keeps_and_rejects_exactly_what_the_fault_log_says(seed, fmt, layout, spec):
    total, sep = 400, SEPARATOR[layout]
    option = "--kv-separator" if fmt == "keyvalue" else "--delimiter"
    stream, _, entries = stream_of(
        "--format", fmt, option, layout, "--samples", str(total), "--rate", "100",
        "--boot-header", "--reboot-on-replug", "--faults", spec, seed=seed,
    )  # fmt: skip
    if fmt == "keyvalue":
        received = receive_lines(stream, lambda line: parse_pairs(line, sep, ":"))
        headers = [p for p in received.kept if p[0][1] is None]
    else:
        received = receive_lines(stream, lambda line: parse_row(line, sep, 2))
        header = DelimitedEncoder(["ch0", "ch1"], sep.encode()).header()
        headers = [line for line, _ in received.rejected if line == header]
        received.rejected = [r for r in received.rejected if r[0] != header]
    assert received.tail == b""
    replugs = sum(e["fault"] == "unplug" and e["last_lost"] != total - 1 for e in entries)
    assert len(headers) == 1 + replugs
    rejecting = [e for e in entries if e["rejected"]]
    assert [len(line) for line, _ in received.rejected] == [e["bytes"] for e in rejecting]
    rows = len(received.kept) - (len(headers) if fmt == "keyvalue" else 0)
    assert rows == total - sum(e["lines_lost"] for e in entries)
