from hypothesis import given
from hypothesis import strategies as st

from gateway.core.framing import LineFramer, Overlong


def feed_all(framer, chunks):
    lines = []
    for chunk in chunks:
        lines.extend(framer.feed(chunk))
    return lines


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def test_a_line_completes_only_at_its_terminator():
    framer = LineFramer()
    assert framer.feed(b"12,3") == []
    assert framer.pending_bytes == 4
    assert framer.feed(b"4\n5") == [b"12,34"]
    assert framer.feed(b"6\n") == [b"56"]
    assert framer.pending_bytes == 0


def test_crlf_terminator_may_straddle_two_reads():
    framer = LineFramer(b"\r\n")
    assert framer.feed(b"a,b\r") == []
    assert framer.feed(b"\nc\r\n") == [b"a,b", b"c"]


def test_lf_mode_strips_one_carriage_return():
    framer = LineFramer(b"\n")
    assert framer.feed(b"1,2\r\n3,4\n5\r\r\n") == [b"1,2", b"3,4", b"5\r"]


def test_overlong_line_is_skipped_and_reported_with_its_length():
    framer = LineFramer(b"\n", max_line_bytes=8)
    assert framer.feed(b"ok\n" + b"x" * 20 + b"\nnext\n") == [b"ok", b"next"]
    assert framer.take_overlong() == [Overlong(20, b"x" * 20)]
    assert framer.take_overlong() == []


def test_overlong_line_is_not_buffered_while_it_grows():
    framer = LineFramer(b"\n", max_line_bytes=10, head_bytes=4)
    assert framer.feed(b"y" * 11) == []
    for _ in range(1000):
        assert framer.feed(b"y" * 100) == []
    assert framer.pending_bytes == 100_011
    assert len(framer._pending) == 0
    assert framer.feed(b"yy\nafter\n") == [b"after"]
    assert framer.take_overlong() == [Overlong(100_013, b"yyyy")]


def test_overlong_crlf_line_ending_across_reads_counts_the_right_length():
    framer = LineFramer(b"\r\n", max_line_bytes=4)
    assert framer.feed(b"abcdefg\r") == []
    assert framer.feed(b"\nok\r\n") == [b"ok"]
    assert framer.take_overlong() == [Overlong(7, b"abcdefg")]


def test_reset_drops_the_unfinished_line_and_says_how_much():
    framer = LineFramer()
    framer.feed(b"1,2,3\n4,5")
    assert framer.reset() == 3
    assert framer.feed(b",6\n") == [b",6"]


def test_take_pending_hands_over_the_unfinished_line():
    framer = LineFramer()
    framer.feed(b"1\n22")
    assert framer.take_pending() == b"22"
    assert framer.pending_bytes == 0


LINE = st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b)


@given(
    lines=st.lists(
        st.one_of(
            LINE,
            st.binary(min_size=41, max_size=120).map(
                lambda b: b.replace(b"\n", b"").replace(b"\r", b"") + b"z" * 41
            ),
        ),
        max_size=30,
    ),
    terminator=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=40),
    tail=LINE,
)
def test_any_chunking_yields_the_same_lines(lines, terminator, cuts, tail):
    stream = b"".join(line + terminator for line in lines) + tail
    whole = LineFramer(terminator, max_line_bytes=40, strip_cr=False)
    expected = whole.feed(stream)
    expected_overlong = whole.take_overlong()
    assert expected == [line for line in lines if len(line) <= 40]
    assert [o.length for o in expected_overlong] == [len(line) for line in lines if len(line) > 40]

    chunked = LineFramer(terminator, max_line_bytes=40, strip_cr=False)
    assert feed_all(chunked, split_at(stream, cuts)) == expected
    assert chunked.take_overlong() == expected_overlong
    assert chunked.take_pending() == (tail if len(tail) <= 40 else b"")


@given(st.binary(max_size=500), st.lists(st.integers(0, 500), max_size=20))
def test_no_byte_is_lost_or_duplicated_across_reads(stream, cuts):
    framer = LineFramer(b"\n", max_line_bytes=10_000, strip_cr=False)
    lines = feed_all(framer, split_at(stream, cuts))
    rebuilt = b"".join(line + b"\n" for line in lines) + framer.take_pending()
    assert rebuilt == stream


def reference_lf_framer(stream: bytes, limit: int) -> tuple[list[bytes], list[int], bytes]:
    """LF framing with one CR stripped, line by line: lines, overlong lengths, what is pending.
    (A line's length counts its CR, as the limit is on what the device sent.)"""
    *complete, pending = stream.split(b"\n")
    kept = [line for line in complete if len(line) <= limit]
    stripped = [line[:-1] if line.endswith(b"\r") else line for line in kept]
    overlong = [len(line) for line in complete if len(line) > limit]
    return stripped, overlong, pending if len(pending) <= limit else b""


CR_LINE = st.lists(st.sampled_from([b"a", b"\r", b",", b"7"]), max_size=14).map(b"".join)


@given(
    st.lists(st.tuples(CR_LINE, st.sampled_from([b"\r\n", b"\n"])), max_size=30),
    CR_LINE,
    st.lists(st.integers(min_value=0, max_value=500), max_size=20),
)
def test_lf_with_carriage_returns_reads_as_line_by_line_stripping_at_any_chunking(
    lines, tail, cuts
):
    # The whole-read CR LF split must keep the limit counting the CR (limit 10 is hit by the
    # generated lines, with and without their CR).
    stream = b"".join(line + end for line, end in lines) + tail
    framer = LineFramer(b"\n", max_line_bytes=10)
    got = feed_all(framer, split_at(stream, cuts))
    expected, overlong, pending = reference_lf_framer(stream, 10)
    assert got == expected
    assert [o.length for o in framer.take_overlong()] == overlong
    assert framer.take_pending() == pending
