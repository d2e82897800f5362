"""Which lines ``--replay`` sends: every line with its own bytes, header rules as documented."""

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.recording import looks_like_data, replay_lines, split_terminator


def sent(data: bytes, header: str = "auto", terminator: bytes = b"\n") -> list[bytes]:
    return list(replay_lines(io.BytesIO(data), header, terminator))


@pytest.mark.parametrize(
    "first, is_data",
    [
        (b"12,0.1\n", True),
        (b"-1.5,2\n", True),
        (b"$FGDAT,0*00\n", True),
        (b"!AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0*26\n", True),
        (b'{"n": 0}\n', True),
        (b"n,t,ch0\n", False),
        (b"\n", False),
        (b" 1,2\n", False),
        (b"\xef\xbb\xbf1,2\n", False),  # a byte-order mark is not data
    ],
)
def test_auto_skips_the_first_line_iff_it_does_not_start_like_data(first, is_data):
    assert looks_like_data(first) is is_data
    lines = sent(first + b"1,2\n")
    assert lines == ([first] if is_data else []) + [b"1,2\n"]


def test_send_keeps_and_skip_drops_the_first_line_whatever_it_is():
    data = b"0,1\n1,2\n"
    assert sent(data, "send") == [b"0,1\n", b"1,2\n"]
    assert sent(data, "skip") == [b"1,2\n"]
    assert sent(b"t,x\n0,1\n", "send") == [b"t,x\n", b"0,1\n"]


def test_each_line_keeps_its_own_terminator_and_a_last_one_gets_the_configured_one():
    data = b"0,1\r\n1,2\n\n2,3\r\n3,4"
    assert sent(data, "send", b"\r\n") == [b"0,1\r\n", b"1,2\n", b"\n", b"2,3\r\n", b"3,4\r\n"]


def test_an_explicit_terminator_replaces_every_lines_own():
    data = b"0,1\r\n1,2\n\n2,3\r\r\n3,4"
    lines = list(replay_lines(io.BytesIO(data), "send", b"\n", keep_terminators=False))
    assert lines == [b"0,1\n", b"1,2\n", b"\n", b"2,3\r\n", b"3,4\n"]  # a stray CR is data
    lines = list(replay_lines(io.BytesIO(data), "send", b"\r\n", keep_terminators=False))
    assert lines == [b"0,1\r\n", b"1,2\r\n", b"\r\n", b"2,3\r\r\n", b"3,4\r\n"]


def test_an_empty_file_sends_nothing():
    assert sent(b"") == []


def test_split_terminator():
    assert split_terminator(b"a\r\n") == (b"a", b"\r\n")
    assert split_terminator(b"a\n") == (b"a", b"\n")
    assert split_terminator(b"a\r") == (b"a\r", b"")


def test_an_unknown_header_mode_is_refused():
    with pytest.raises(ValueError) as error:
        sent(b"", "maybe")
    assert str(error.value) == "unknown header mode 'maybe' (modes: auto, send, skip)"


@given(data=st.binary(max_size=300), header=st.sampled_from(["auto", "send", "skip"]))
def test_the_sent_bytes_are_the_file_minus_a_skipped_header_plus_a_missing_terminator(data, header):
    lines = sent(data, header)
    first_end = data.find(b"\n") + 1 or len(data)
    skipped = header == "skip" or (header == "auto" and not looks_like_data(data))
    expected = data[first_end:] if skipped and data else data
    if expected and not expected.endswith(b"\n"):
        expected += b"\n"
    assert b"".join(lines) == expected
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
