"""The uploader's pure core: manifests and checks, S3 checksums, backoff, chunks, day marks.

What a store's answers prove about an object: tests/unit/core/test_verification.py."""

import base64
import datetime as dt
import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.batchfile import check_batch
from gateway.core.keys import BatchName
from gateway.core.manifest import (
    ObjectHasher,
    _plain_decimals,
    build_manifest,
    check_against_name,
    object_digest,
    object_metadata,
    part_sizes,
    quick_check,
)
from gateway.core.upload_plan import (
    Chunk,
    day_is_over,
    days_to_mark,
    days_to_unmark,
    make_chunks,
)

DAY = dt.date(2024, 5, 1)
T0 = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC).timestamp()


def batch_bytes(first, count, t0=T0):
    rows = "".join(f"{first + i},{t0 + i:.6f},1.5,-2\n" for i in range(count))
    return ("seq,received_at,f0,f1\n" + rows).encode()


def problem_of(name, data):
    return check_against_name(name, check_batch(data, name.first_seq), len(data))


# -- validation --------------------------------------------------------------------------


def test_a_good_batch_has_a_manifest_with_seq_range_rows_and_time_range():
    data = batch_bytes(100, 5)
    name = BatchName(DAY, 100, 104)
    check = check_batch(data, 100)
    assert check_against_name(name, check, len(data)) is None
    manifest = build_manifest(name, check, len(data))
    assert (manifest.first_seq, manifest.last_seq, manifest.rows) == (100, 104, 5)
    assert (manifest.earliest, manifest.latest) == (T0, T0 + 4)
    assert manifest.columns == ("seq", "received_at", "f0", "f1")
    assert manifest.batch == "2024/05/01/000000000100-000000000104.csv"
    assert object_metadata(manifest.as_dict(), "ab" * 32) == {
        "first-seq": "100",
        "last-seq": "104",
        "rows": "5",
        "earliest": f"{T0:.6f}",
        "latest": f"{T0 + 4:.6f}",
        "csv-bytes": str(len(data)),
        "csv-sha256": "ab" * 32,
    }


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        (BatchName(DAY, 0, 4), b"", "no header row"),
        (BatchName(DAY, 0, 4), b"seq,received_at,f0\n", "no rows after the header"),
        (
            BatchName(DAY, 0, 4),
            batch_bytes(0, 5).replace(b"\n2,", b"\n7,"),
            "row 3 has seq 7, expected 2",
        ),
        (
            BatchName(DAY, 0, 5),
            batch_bytes(0, 5),
            "rows hold seq 0-4 but the name says 0-5",
        ),
        (
            BatchName(DAY, 0, 4),
            batch_bytes(0, 5) + b"5,1.0",
            "row 6 is incomplete (5 bytes, no newline)",
        ),
        (
            BatchName(dt.date(2024, 5, 3), 0, 4),
            batch_bytes(0, 5),
            "rows were received 2024-05-01..2024-05-01 but the batch is in the folder of "
            "2024-05-03",
        ),
        (
            BatchName(DAY, 0, 4),
            batch_bytes(0, 5).replace(b"1.5,-2\n", b"1.5\n", 1),
            "row 1 has 3 fields, header has 4",
        ),
    ],
)
def test_a_bad_batch_is_refused_with_a_reason_that_says_what_is_wrong(name, data, problem):
    assert problem_of(name, data) == problem


# -- checksums ---------------------------------------------------------------------------


def test_part_sizes_follow_s3transfer_threshold_and_chunk_size():
    mib = 1024 * 1024
    assert part_sizes(3, 5 * mib) == [3]
    assert part_sizes(5 * mib - 1, 5 * mib) == [5 * mib - 1]
    assert part_sizes(5 * mib, 5 * mib) == [5 * mib]
    assert part_sizes(12 * mib, 5 * mib) == [5 * mib, 5 * mib, 2 * mib]


def _digests(parts):
    return (
        [hashlib.sha256(p).digest() for p in parts],
        [hashlib.md5(p).digest() for p in parts],
        hashlib.sha256(b"".join(parts)).digest(),
    )


def test_single_put_digest_is_the_plain_sha256_and_md5():
    body = b"hello\n" * 100
    digest = object_digest(len(body), *_digests([body]), multipart=False)
    assert digest.parts == 0
    assert digest.checksum_sha256 == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert digest.etag == hashlib.md5(body).hexdigest()
    assert digest.sha256_hex == hashlib.sha256(body).hexdigest()


def test_multipart_digest_is_s3s_composite_over_part_digests():
    parts = [b"a" * 10, b"b" * 10, b"c" * 3]
    digest = object_digest(23, *_digests(parts), multipart=True)
    composite = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()
    assert digest.parts == 3
    assert digest.checksum_sha256 == base64.b64encode(composite).decode()
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert digest.etag == hashlib.md5(md5s).hexdigest() + "-3"
    assert digest.sha256_hex == hashlib.sha256(b"".join(parts)).hexdigest()


# -- chunks and day folders --------------------------------------------------------------


def test_chunks_cut_the_backlog_in_order_and_keep_full_chunk_ids_as_batches_arrive():
    names = [(f"2024/05/01/{i:012d}-{i:012d}.csv", 100) for i in range(10)]
    chunks = make_chunks("/data", "gw", names, 4, 10_000)
    assert [len(c.batches) for c in chunks] == [4, 4, 2]
    assert [b for c in chunks for b in c.batches] == [n for n, _ in names]
    more = [*names, ("2024/05/01/000000000010-000000000010.csv", 100)]
    later = make_chunks("/data", "gw", more, 4, 10_000)
    ids = [c.chunk_id("p", "gzip") for c in chunks]
    later_ids = [c.chunk_id("p", "gzip") for c in later]
    assert later_ids[:2] == ids[:2] and later_ids[2] != ids[2]


def test_chunks_are_also_cut_by_bytes_and_a_big_batch_goes_alone():
    sizes = [30, 30, 30, 200, 10, 10]
    names = [(f"b{i}", size) for i, size in enumerate(sizes)]
    chunks = make_chunks("/data", "gw", names, 10, 64)
    assert [c.batches for c in chunks] == [("b0", "b1"), ("b2",), ("b3",), ("b4", "b5")]
    with pytest.raises(ValueError, match="at least 1"):
        make_chunks("/data", "gw", names, 0, 64)


def test_chunk_id_depends_on_everything_that_shapes_the_objects():
    chunk = Chunk("/data", "gw", ("a", "b"))
    base = chunk.chunk_id("p", "gzip")
    assert base == Chunk("/data", "gw", ("a", "b")).chunk_id("p", "gzip")
    assert base != chunk.chunk_id("q", "gzip")
    assert base != chunk.chunk_id("p", "none")
    assert base != Chunk("/data", "gw2", ("a", "b")).chunk_id("p", "gzip")
    assert base != Chunk("/data2", "gw", ("a", "b")).chunk_id("p", "gzip")


def test_a_day_is_over_at_utc_midnight():
    midnight = dt.datetime(2024, 5, 2, tzinfo=dt.UTC).timestamp()
    assert not day_is_over(DAY, midnight - 0.001)
    assert day_is_over(DAY, midnight)


def test_a_day_is_marked_when_every_batch_is_touched_and_the_day_is_over():
    d1, d2, d3 = DAY, DAY + dt.timedelta(1), DAY + dt.timedelta(2)
    now = dt.datetime(2024, 5, 3, 6, tzinfo=dt.UTC).timestamp()  # d3 is today
    batches = [(d1, True), (d1, True), (d2, True), (d2, False), (d3, True)]
    assert days_to_mark(batches, marked=[], now=now) == [d1]
    assert days_to_mark(batches, marked=[d1], now=now) == []
    everything = [(d, True) for d, _ in batches]
    assert days_to_mark(everything, marked=[d1], now=now) == [d2]


def test_a_day_whose_folder_still_holds_an_open_batch_waits_for_it():
    d1 = DAY
    now = dt.datetime(2024, 5, 2, 0, 0, 30, tzinfo=dt.UTC).timestamp()  # just after midnight
    assert days_to_mark([(d1, True)], marked=[], now=now, open_days=[d1]) == []
    assert days_to_mark([(d1, True)], marked=[], now=now, open_days=[]) == [d1]


def test_a_marked_day_that_holds_an_untouched_batch_again_is_unmarked():
    d1, d2 = DAY, DAY + dt.timedelta(1)
    assert days_to_unmark([(d1, True), (d2, False)], marked=[d1, d2]) == [d2]
    assert days_to_unmark([(d1, True)], marked=[d1]) == []


# -- the quick check agrees with check_batch ----------------------------------------------

rows_strategy = st.lists(
    st.tuples(
        st.floats(1e9, 2e9, allow_nan=False),
        st.lists(st.sampled_from(["1.5", "-2", "0", "12345.678", "x", ""]), min_size=2, max_size=2),
    ),
    min_size=1,
    max_size=40,
)


def batch_text(first, rows):
    body = "".join(f"{first + i},{t:.6f},{','.join(v)}\n" for i, (t, v) in enumerate(rows))
    return ("seq,received_at,f0,f1\n" + body).encode()


@given(st.integers(0, 10**6), rows_strategy)
def test_quick_check_equals_check_batch_on_good_batches(first, rows):
    data = batch_text(first, rows)
    quick = quick_check(data, first)
    assert quick is not None and quick == check_batch(data, first)


@given(
    st.integers(0, 10**6),
    rows_strategy,
    st.integers(0, 10**6),
    st.sampled_from([b"", b",", b"\n", b"7", b"a", b".", b"\xff", b"-"]),
    st.integers(0, 2),
)
def test_quick_check_never_passes_what_check_batch_refuses(first, rows, where, byte, cut):
    data = bytearray(batch_text(first, rows))
    position = where % len(data)
    data[position : position + cut] = byte
    data = bytes(data)
    quick = quick_check(data, first)
    assert quick is None or quick == check_batch(data, first)


def test_quick_check_handles_blocks_of_rows_across_its_block_size():
    rows = [(1.7e9 + i, ["1.5", "2"]) for i in range(80_000)]  # over 2 MiB: several blocks
    data = batch_text(5, rows)
    assert len(data) > 2 * (1 << 20)
    assert quick_check(data, 5) == check_batch(data, 5)
    broken = data.replace(b"\n40000,", b"\n40001,")
    assert quick_check(broken, 5) is None


# Quoted fields, as the text formats write them (nmea0183, delimited, keyvalue, raw).
quoted_rows_strategy = st.lists(
    st.tuples(
        st.floats(1e9, 2e9, allow_nan=False),
        st.lists(
            st.sampled_from(['"1,2"', '""', '"say ""hi"""', "GPGGA", '"a\rb"', "x", ""]),
            min_size=2,
            max_size=2,
        ),
    ),
    min_size=1,
    max_size=40,
)


@given(st.integers(0, 10**6), quoted_rows_strategy)
def test_quick_check_equals_check_batch_on_good_quoted_batches(first, rows):
    data = batch_text(first, rows)
    quick = quick_check(data, first)
    assert quick is not None and quick == check_batch(data, first)


@given(
    st.integers(0, 10**6),
    quoted_rows_strategy,
    st.integers(0, 10**6),
    st.sampled_from([b"", b",", b"\n", b'"', b'""', b"a", b"\xff"]),
    st.integers(0, 2),
)
def test_quick_check_never_passes_a_quoted_batch_check_batch_refuses(first, rows, where, byte, cut):
    data = bytearray(batch_text(first, rows))
    position = where % len(data)
    data[position : position + cut] = byte
    data = bytes(data)
    quick = quick_check(data, first)
    assert quick is None or quick == check_batch(data, first)


def test_quick_check_reads_quoted_header_names():
    data = b'seq,received_at,"Temp, C",b\n0,1700000000.5,"21,5",x\n'
    assert quick_check(data, 0) == check_batch(data, 0)
    assert quick_check(data, 0).columns == ("seq", "received_at", "Temp, C", "b")


def test_a_seq_too_long_for_a_machine_integer_is_no_crash():
    data = b"seq,received_at,f0\n" + b"1" * 5000 + b",1700000000.5,x\n"
    assert quick_check(data, 0) is None
    assert check_batch(data, 0).problem == "row 1 has no valid seq and received_at"


# -- the whole-block checks refuse exactly what the per-row loop refuses --------------------

PLAIN_DECIMAL_RE = re.compile(rb"\d+(?:\.\d+)?")


@given(st.lists(st.text("0123456789.,-e x", max_size=8).map(str.encode), min_size=1, max_size=6))
def test_plain_decimals_agree_with_the_per_field_regex(fields):
    joined = b",".join(fields)
    per_field = all(PLAIN_DECIMAL_RE.fullmatch(field) for field in joined.split(b","))
    assert _plain_decimals(joined) == per_field


GOOD = b"seq,received_at,f0,f1\n7,1700000000.5,a,b\n8,1700000001,c,d\n9,1700000002.25,e,f\n"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (GOOD.replace(b"\n8,", b"\n10,"), "row 2 has seq 10, expected 8"),  # a gap
        (GOOD.replace(b"\n9,", b"\n8,"), "row 3 has seq 8, expected 9"),  # a duplicate
        (GOOD.replace(b",c,d\n", b",c\n"), "row 2 has 3 fields, header has 4"),  # a short row
        (GOOD.replace(b",c,d\n", b",c,d,x\n"), "row 2 has 5 fields, header has 4"),
        (GOOD.replace(b"1700000001,", b"17000.0.1,"), "row 2 has no valid seq and received_at"),
        (GOOD.replace(b"1700000001,", b"1e9,"), "row 2 has no valid seq and received_at"),
        (GOOD.replace(b"1700000001,", b".5,"), "row 2 has no valid seq and received_at"),
        (GOOD.replace(b"1700000001,", b"5.,"), "row 2 has no valid seq and received_at"),
        (GOOD.replace(b"1700000001,", b","), "row 2 has no valid seq and received_at"),
        (GOOD.replace(b"\n8,", b"\n+8,"), "row 2 has no valid seq and received_at"),
        (GOOD[:-1], "row 3 is incomplete (19 bytes, no newline)"),  # no trailing newline
    ],
)
def test_quick_check_refuses_each_damage_and_check_batch_words_it(data, problem):
    assert quick_check(data, 7) is None
    assert check_batch(data, 7).problem == problem


def test_a_seq_with_leading_zeros_takes_the_per_row_path_which_accepts_it():
    data = GOOD.replace(b"\n8,", b"\n08,")
    assert quick_check(data, 7) is None  # not the plain text of 8: the slow path decides
    assert check_batch(data, 7).ok and check_batch(data, 7).rows == 3


@given(
    st.integers(0, 10**6),
    rows_strategy,
    st.integers(0, 39),
    st.sampled_from(["gap", "duplicate", "swap", "drop_field", "add_field", "bad_time"]),
)
def test_quick_check_refuses_every_damaged_row_check_batch_refuses(first, rows, which, damage):
    lines = batch_text(first, rows).decode().splitlines(keepends=True)
    index = 1 + which % (len(lines) - 1)
    seq, time_text, rest = lines[index].split(",", 2)
    if damage == "gap":
        lines[index] = f"{int(seq) + 1},{time_text},{rest}"
    elif damage == "duplicate":
        lines[index] = f"{int(seq) - 1},{time_text},{rest}"
    elif damage == "swap" and index + 1 < len(lines):
        lines[index], lines[index + 1] = lines[index + 1], lines[index]
    elif damage == "drop_field":
        lines[index] = f"{seq},{time_text}\n"
    elif damage == "add_field":
        lines[index] = f"{seq},{time_text},x,{rest}"
    elif damage == "bad_time":
        lines[index] = f"{seq},{time_text}.1,{rest}"
    data = "".join(lines).encode()
    expected = check_batch(data, first)
    quick = quick_check(data, first)
    if expected.ok and expected.good_bytes == len(data):
        assert quick == expected
    else:
        assert quick is None


def test_a_lone_row_with_an_empty_received_at_is_refused_not_parsed():
    data = b"seq,received_at,f0\n0,,x\n"
    assert quick_check(data, 0) is None
    assert check_batch(data, 0).problem == "row 1 has no valid seq and received_at"


@given(st.binary(max_size=200), st.integers(1, 40), st.lists(st.integers(1, 50), max_size=20))
def test_object_hasher_fed_in_any_pieces_gives_the_digest_of_the_parts(body, part_bytes, cuts):
    hasher = ObjectHasher(part_bytes)
    position = 0
    for cut in [*cuts, len(body)]:
        hasher.update(body[position : position + cut])
        position += cut
    hasher.update(body[position:])
    sizes = part_sizes(len(body), part_bytes)
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    parts = [body[o : o + n] for o, n in zip(offsets, sizes, strict=True)]
    multipart = len(body) >= part_bytes
    assert hasher.digest() == object_digest(len(body), *_digests(parts), multipart=multipart)
