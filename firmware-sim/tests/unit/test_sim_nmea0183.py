"""nmea0183: a GNSS receiver's sentences, checked against the public NMEA 0183 and AIVDM
descriptions with the independent reference receiver (checksums computed there, not here)."""

import datetime
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim.cli import build_device
from firmware_sim.device import Send
from firmware_sim.nmea0183 import format_angle, format_clock, sentences_per_epoch
from firmware_sim.options import parse_options

from reference_receiver import (
    NMEA_MAX_BYTES,
    Rejected,
    dearmour,
    parse_sentence,
    receive_lines,
    signed,
    sixbit_text,
    unsigned,
    xor_checksum,
)

TIME = r"\d{6}\.\d{2}"
LAT = r"\d{4}\.\d{5}"
LON = r"\d{5}\.\d{5}"
DATE = r"\d{6}"
DECIMAL = r"\d+\.\d+"


def run(*args: str, seed: int = 1):
    device = build_device(parse_options(["--link", "/tmp/unused", *args]), seed, None)
    stream, actions, entries = bytearray(), [], []
    while (action := device.next_action()) is not None:
        actions.append(action)
        if isinstance(action, Send):
            stream += action.data
        if action.fault is not None:
            entries.append(action.fault)
    return bytes(stream), actions, entries


def sentences(*args: str, seed: int = 1):
    stream, _, _ = run("--format", "nmea0183", *args, seed=seed)
    assert stream.endswith(b"\r\n")
    return [parse_sentence(line) for line in stream[:-2].split(b"\r\n")]


def epochs(parsed):
    """Sentences grouped by epoch (each starts with RMC), AIS left out."""
    groups = []
    for sentence in parsed:
        if sentence.start == "!":
            continue
        if sentence.kind == "RMC":
            groups.append([])
        groups[-1].append(sentence)
    return groups


def test_every_sentence_checks_out_ends_with_crlf_and_fits_in_82_bytes():
    stream, actions, _ = run("--format", "nmea0183", "--samples", "900", "--ais", "--talker", "GN")
    assert len(actions) == 900 and stream.count(b"\r\n") == stream.count(b"\n") == 900
    for action in actions:
        assert len(action.data) <= NMEA_MAX_BYTES, action.data
        line = action.data[:-2]
        sentence = parse_sentence(line)
        assert xor_checksum(line[1:-3].decode()) == line[-2:].decode()
        assert sentence.start == ("!" if sentence.address == "AIVDM" else "$")
        assert all(0x20 <= byte < 0x7F for byte in line)  # printable ASCII only


@pytest.mark.parametrize(
    "talker, proprietary, kinds",
    [
        ("GP", "pgrme", ["GPRMC", "GPVTG", "GPGGA", "GPGSA"] + ["GPGSV"] * 3 + ["GPGLL", "PGRME"]),
        ("GL", "none", ["GLRMC", "GLVTG", "GLGGA", "GLGSA"] + ["GLGSV"] * 2 + ["GLGLL"]),
        ("GA", "pubx", ["GARMC", "GAVTG", "GAGGA", "GAGSA"] + ["GAGSV"] * 2 + ["GAGLL", "PUBX"]),
        ("BD", "none", ["BDRMC", "BDVTG", "BDGGA", "BDGSA"] + ["BDGSV"] * 2 + ["BDGLL"]),
        (
            "GN",
            "pgrme",
            ["GNRMC", "GNVTG", "GNGGA", "GNGSA", "GNGSA"]
            + ["GPGSV"] * 3
            + ["GLGSV"] * 2
            + ["GNGLL", "PGRME"],
        ),
    ],
)
def test_an_epoch_is_the_documented_sentences_in_order(talker, proprietary, kinds):
    per_epoch = sentences_per_epoch(talker, proprietary)
    assert per_epoch == len(kinds)
    for seed in range(5):  # the number in view differs by seed; the GSV count does not
        parsed = sentences(
            "--talker", talker, "--proprietary", proprietary, "--samples", str(per_epoch * 4),
            seed=seed,
        )  # fmt: skip
        assert [[s.address for s in epoch] for epoch in epochs(parsed)] == [kinds] * 4


def test_samples_count_sentences_and_a_run_may_end_inside_an_epoch():
    parsed = sentences("--samples", "13")
    assert len(parsed) == 13 and [s.kind for s in parsed[9:]] == ["RMC", "VTG", "GGA", "GSA"]


def test_fields_are_as_the_standard_says():
    parsed = sentences("--samples", str(9 * 6), seed=3)
    for epoch in epochs(parsed)[2:]:  # after the cold start
        rmc, vtg, gga, gsa, *gsv, gll, pgrme = epoch
        assert len(rmc.fields) == 12
        assert re.fullmatch(TIME, rmc.fields[0]) and rmc.fields[1] == "A"
        assert re.fullmatch(LAT, rmc.fields[2]) and rmc.fields[3] in ("N", "S")
        assert re.fullmatch(LON, rmc.fields[4]) and rmc.fields[5] in ("E", "W")
        assert re.fullmatch(DECIMAL, rmc.fields[6]) and re.fullmatch(DECIMAL, rmc.fields[7])
        assert re.fullmatch(DATE, rmc.fields[8]) and rmc.fields[9:] == ("", "", "A")
        assert vtg.fields[1::2] == ("T", "M", "N", "K") and vtg.fields[2::6] == ("", "A")
        assert float(vtg.fields[6]) == pytest.approx(float(vtg.fields[4]) * 1.852, abs=0.002)
        assert len(gga.fields) == 14 and gga.fields[0] == rmc.fields[0]
        assert gga.fields[1:5] == rmc.fields[2:6] and gga.fields[5] == "1"
        assert re.fullmatch(r"\d{2}", gga.fields[6]) and gga.fields[9] == gga.fields[11] == "M"
        assert gga.fields[12:] == ("", "")  # no differential corrections
        assert len(gsa.fields) == 17 and gsa.fields[:2] == ("A", "3")
        used = [prn for prn in gsa.fields[2:14] if prn]
        assert gsa.fields[2 : 2 + len(used)] == tuple(used)  # used first, empty slots after
        assert int(gga.fields[6]) == len(used)
        assert gll.fields == (*rmc.fields[2:6], rmc.fields[0], "A", "A")
        assert pgrme.fields[1::2] == ("M", "M", "M")
        in_view = check_gsv(gsv)
        snr = {prn: s for prn, _, _, s in in_view}
        assert all(snr[prn] for prn in used)  # a satellite in the fix has a signal


def check_gsv(gsv):
    """The satellites of a GSV group: (id, elevation, azimuth, snr or "")."""
    total = len(gsv)
    satellites = []
    for number, sentence in enumerate(gsv, start=1):
        fields = sentence.fields
        assert fields[0] == str(total) and fields[1] == str(number)
        blocks = fields[3:]
        assert len(blocks) % 4 == 0 and 1 <= len(blocks) // 4 <= 4
        for i in range(0, len(blocks), 4):
            prn, elevation, azimuth, snr = blocks[i : i + 4]
            assert re.fullmatch(r"\d{2}", prn) and re.fullmatch(r"\d{2}", elevation)
            assert re.fullmatch(r"\d{3}", azimuth) and int(azimuth) < 360
            assert int(elevation) <= 90 and (snr == "" or re.fullmatch(r"\d{2}", snr))
            satellites.append(blocks[i : i + 4])
        if number < total:
            assert len(blocks) == 16
    assert len(satellites) == int(gsv[0].fields[2])
    return satellites


def test_satellites_without_a_signal_have_an_empty_snr_field():
    empty = 0
    for seed in range(10):
        for epoch in epochs(sentences("--samples", "90", seed=seed)):
            empty += sum(s[3] == "" for s in check_gsv(epoch[4:7]))
    assert empty > 0


def test_a_cold_start_has_no_fix_then_a_fix():
    first, second, third = epochs(sentences("--samples", "27"))
    for epoch in (first, second):
        rmc, vtg, gga, gsa, *_, gll, pgrme = epoch
        assert rmc.fields[1] == "V" and rmc.fields[2:8] == ("",) * 6 and rmc.fields[11] == "N"
        assert gga.fields[5] == "0" and gga.fields[1:5] == ("",) * 4
        assert gsa.fields[1] == "1" and gsa.fields[2:14] == ("",) * 12
        assert gll.fields[5:] == ("V", "N") and pgrme.fields == ("", "M", "", "M", "", "M")
    assert third[0].fields[1] == "A"


def test_epochs_are_a_second_apart_when_the_rate_carries_one_epoch_a_second():
    parsed = sentences("--rate", "9", "--samples", str(9 * 20), seed=8)
    times = [epoch[0].fields[0] for epoch in epochs(parsed)]
    clock = [datetime.datetime.strptime(t, "%H%M%S.%f") for t in times]
    gaps = {round((b - a).total_seconds(), 2) for a, b in zip(clock, clock[1:], strict=False)}
    assert gaps <= {1.0, 1.0 - 86400}  # a run may cross midnight
    assert all(t.endswith(".00") for t in times)


def test_the_position_moves_as_fast_as_the_reported_speed():
    parsed = sentences("--rate", "9", "--samples", str(9 * 40), seed=11)
    fixes = [e[0] for e in epochs(parsed)[2:]]
    for a, b in zip(fixes, fixes[1:], strict=False):
        lat_a, lon_a = degrees(a.fields[2:6])
        lat_b, lon_b = degrees(b.fields[2:6])
        dlat = (lat_b - lat_a) * 60  # nautical miles
        dlon = (lon_b - lon_a) * 60 * math.cos(math.radians(lat_a))
        moved = math.hypot(dlat, dlon) * 3600  # nautical miles per hour over 1 s
        assert moved == pytest.approx(float(b.fields[6]), rel=0.05, abs=0.05)
        if moved > 1:
            course = math.degrees(math.atan2(dlon, dlat)) % 360
            assert abs((course - float(b.fields[7]) + 180) % 360 - 180) < 5


def degrees(fields):
    lat, ns, lon, ew = fields
    value_lat = int(lat[:2]) + float(lat[2:]) / 60
    value_lon = int(lon[:3]) + float(lon[3:]) / 60
    return (value_lat if ns == "N" else -value_lat), (value_lon if ew == "E" else -value_lon)


@given(value=st.floats(-180, 180), decimals=st.integers(1, 7))
def test_angles_are_degrees_and_minutes_that_never_read_60(value, decimals):
    text = format_angle(value, 3, decimals).decode()
    assert re.fullmatch(rf"\d{{3}}\d{{2}}\.\d{{{decimals}}}", text)
    assert int(text[3:5]) < 60
    assert int(text[:3]) + float(text[3:]) / 60 == pytest.approx(abs(value), abs=10**-decimals)


def test_angle_and_clock_examples():
    assert format_angle(48.1173, 2, 3) == b"4807.038"
    assert format_angle(-11.516666666, 3, 3) == b"01131.000"
    assert format_angle(10.99999999999, 2, 5) == b"1100.00000"
    moment = datetime.datetime(2024, 12, 31, 23, 59, 59, 990_000)
    assert format_clock(moment) == (b"235959.99", b"311224")


def test_the_pubx_option_sends_sentences_longer_than_82_bytes_as_u_blox_does():
    stream, actions, _ = run("--format", "nmea0183", "--proprietary", "pubx", "--samples", "45")
    long = [a.data for a in actions if len(a.data) > NMEA_MAX_BYTES]
    assert long and all(data.startswith(b"$PUBX,00,") for data in long)
    pubx = [parse_sentence(line) for line in stream.split(b"\r\n") if line.startswith(b"$PUBX")]
    assert [len(s.fields) for s in pubx] == [20] * 5
    assert [s.fields[7] for s in pubx] == ["NF", "NF", "G3", "G3", "G3"]
    assert re.fullmatch(r"\d{4}\.\d{6}", pubx[-1].fields[2])


def test_boot_header_is_a_txt_banner_before_the_first_epoch():
    parsed = sentences("--boot-header", "--samples", "9", "--talker", "GN")
    banner = [s for s in parsed if s.kind == "TXT"]
    assert parsed[: len(banner)] == banner and len(banner) == len(parsed) - 9 > 0
    assert all(s.address == "GNTXT" and s.fields[:3] == ("01", "01", "02") for s in banner)


def test_ais_sentences_decode_to_vessels_near_the_receiver():
    parsed = sentences("--ais", "--samples", "6000", "--rate", "100", seed=5)
    lat0, lon0 = degrees(epochs(parsed)[3][0].fields[2:6])
    ais = [s for s in parsed if s.address == "AIVDM"]
    assert len(ais) > 50
    reports = statics = 0
    pending = None
    for sentence in ais:
        count, number, sequence, channel, payload, fill = sentence.fields
        assert channel in ("A", "B") and len(payload) <= 60
        if count == "1":
            assert number == "1" and sequence == "" and fill == "0"
            bits = dearmour(payload, 0)
            assert len(bits) == 168 and unsigned(bits, 0, 6) in (1, 2, 3)
            assert 200_000_000 <= unsigned(bits, 8, 30) < 800_000_000  # an MMSI
            lon, lat = signed(bits, 61, 28) / 600_000, signed(bits, 89, 27) / 600_000
            assert abs(lat - lat0) < 0.5 and abs((lon - lon0 + 180) % 360 - 180) < 0.5
            assert unsigned(bits, 137, 6) < 60  # UTC second
            reports += 1
        elif number == "1":
            assert count == "2" and fill == "0" and sequence.isdigit()
            pending = sentence
        else:  # the second of two fragments: same id and channel as the first
            assert pending is not None and number == "2"
            assert pending.fields[2:4] == (sequence, channel)
            bits = dearmour(pending.fields[4] + payload, int(fill))
            assert len(bits) == 424 and unsigned(bits, 0, 6) == 5
            assert re.fullmatch(r"[A-Z ]+", sixbit_text(bits, 112, 20))  # the ship's name
            assert re.fullmatch(r"[A-Z0-9]+", sixbit_text(bits, 70, 7))  # its call sign
            statics += 1
            pending = None
    assert reports > 30 and statics > 3


def test_badsum_writes_another_checksum_and_logs_both():
    clean = run("--format", "nmea0183", "--samples", "20")[0].split(b"\r\n")
    stream, _, entries = run("--format", "nmea0183", "--samples", "20", "--faults", "badsum@4")
    line = stream.split(b"\r\n")[4]
    (entry,) = entries
    assert entry == {
        "fault": "badsum",
        "n": 4,
        "bytes": len(line),
        "checksum": line[-2:].decode(),
        "correct_checksum": clean[4][-2:].decode(),
        "lines_lost": 1,
        "first_lost": 4,
        "last_lost": 4,
        "rejected": 1,
    }
    assert line[:-2] == clean[4][:-2] and line[-2:] != clean[4][-2:]
    with pytest.raises(Rejected, match="bad checksum"):
        parse_sentence(line)


def test_badsum_also_works_on_our_nmea_format():
    stream, _, entries = run("--format", "nmea", "--samples", "3", "--faults", "badsum@1")
    line = stream.split(b"\n")[1]
    assert line[-2:].decode() == entries[0]["checksum"] != entries[0]["correct_checksum"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    spec=st.sampled_from(
        [
            "garbage=0.02,truncated=0.02,overlong=0.005,utf8=0.02,badsum=0.02",
            "badsum=0.1,burst=0.01,pause=0.01:0.02,unplug@200:0.5",
            "unplug=0.005:0.1,garbage=0.05:1,badsum@0,truncated@1,utf8@2,overlong@3",
        ]
    ),
    options=st.sampled_from([(), ("--ais",), ("--talker", "GN", "--proprietary", "pubx")]),
)
def test_a_receiver_keeps_and_rejects_exactly_what_the_fault_log_says(seed, spec, options):
    total = 500
    stream, _, entries = run(
        "--format", "nmea0183", "--samples", str(total), "--rate", "100", "--faults", spec,
        *options, seed=seed,
    )  # fmt: skip
    received = receive_lines(stream, parse_sentence)
    assert received.tail == b""
    rejecting = [e for e in entries if e["rejected"]]
    assert [len(line) for line, _ in received.rejected] == [e["bytes"] for e in rejecting]
    reasons = {"badsum": "bad checksum", "utf8": "invalid UTF-8", "truncated": "not a sentence"}
    for (_, reason), entry in zip(received.rejected, rejecting, strict=True):
        if entry["fault"] in reasons:
            assert reason == reasons[entry["fault"]]
        elif entry["fault"] == "overlong":
            assert reason == f"line of {entry['bytes']} bytes"
    assert len(received.kept) == total - sum(e["lines_lost"] for e in entries)


def test_waveform_options_are_refused_with_nmea0183(capsys):
    with pytest.raises(SystemExit):
        parse_options(["--link", "x", "--format", "nmea0183", "--channels", "3"])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "firmware-sim: error: argument --channels: not used by --format nmea0183 "
        "(a GNSS receiver sends positions, not waveforms)"
    )


def test_the_same_seed_gives_the_same_sentences_and_another_seed_others():
    args = ("--format", "nmea0183", "--samples", "400", "--ais", "--faults", "badsum=0.05")
    assert run(*args, seed=3)[0] == run(*args, seed=3)[0]
    assert run(*args, seed=3)[0] != run(*args, seed=4)[0]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    talker=st.sampled_from(["GP", "GL", "GA", "GB", "BD", "GN"]),
    rate=st.sampled_from(["1", "9", "1000"]),
)
def test_no_standard_sentence_is_ever_longer_than_82_bytes(seed, talker, rate):
    stream, actions, _ = run(
        "--format", "nmea0183", "--talker", talker, "--rate", rate, "--samples", "300",
        "--ais", "--boot-header", seed=seed,
    )  # fmt: skip
    assert all(len(action.data) <= NMEA_MAX_BYTES for action in actions), stream
