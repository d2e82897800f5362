import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.keys import (
    BadName,
    BatchName,
    object_key,
    parse_object_key,
    parse_part_name,
    parse_relative_path,
    part_name,
)

DAYS = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2200, 12, 31))
BATCHES = st.builds(
    lambda day, first, rows: BatchName(day, first, first + rows),
    DAYS,
    st.integers(0, 10**15),
    st.integers(0, 10**6),
)
GATEWAYS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
PREFIXES = st.sampled_from(["", "raw", "lab/site-a", "x/y/z"])


def test_names_sort_by_seq_and_read_as_documented():
    batch = BatchName(dt.date(2026, 11, 28), 1000, 1999)
    assert batch.relative_path == "2026/11/28/000000001000-000000001999.csv"
    assert object_key("raw", "pi-01", batch, gzip=True) == (
        "raw/pi-01/2026/11/28/000000001000-000000001999.csv.gz"
    )
    assert part_name(1000) == "000000001000.part"


@given(BATCHES)
def test_relative_path_round_trips(batch):
    assert parse_relative_path(batch.relative_path) == batch


@given(BATCHES, GATEWAYS, PREFIXES, st.booleans())
def test_object_key_round_trips(batch, gateway, prefix, gzip):
    key = object_key(prefix, gateway, batch, gzip=gzip)
    parsed = parse_object_key(key)
    assert (parsed.prefix, parsed.gateway_id, parsed.batch, parsed.gzip) == (
        prefix,
        gateway,
        batch,
        gzip,
    )


@given(st.integers(0, 10**15))
def test_part_name_round_trips(first):
    assert parse_part_name(part_name(first)) == first


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("2026/11/28/000000000001.csv", "is not a batch path like"),
        ("2026/13/28/000000000001-000000000002.csv", "month must be in 1..12"),
        ("2026/11/000000000001-000000000002.csv", "is not a day folder like YYYY/MM/DD"),
        ("2026/11/28/000000000009-000000000002.csv", "seq range 9-2 is not ascending"),
    ],
)
def test_foreign_paths_are_refused(path, message):
    with pytest.raises(BadName, match=message):
        parse_relative_path(path)


def test_gateway_ids_that_would_break_keys_are_refused():
    batch = BatchName(dt.date(2026, 1, 1), 0, 0)
    with pytest.raises(BadName, match="gateway id 'a/b' must be 1-63 of"):
        object_key("", "a/b", batch, gzip=False)
