import csv
import io

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway.core.csvfields import QUOTED_FIELD_RE, join_fields, quote_field, split_row

# Any field a codec may write: no line feed (rows are one line), anything else goes.
FIELD = st.binary(max_size=12).filter(lambda b: b"\n" not in b)


@pytest.mark.parametrize(
    ("field", "written"),
    [
        (b"21.5", b"21.5"),
        (b"", b""),
        (b"21,5", b'"21,5"'),
        (b'say "hi"', b'"say ""hi"""'),
        (b"a\rb", b'"a\rb"'),
        (b"tab\tand space", b"tab\tand space"),
        (b"caf\xc3\xa9", b"caf\xc3\xa9"),
    ],
)
def test_a_field_is_quoted_only_when_it_must_be(field, written):
    assert quote_field(field) == written
    assert split_row(written) == [field]


@given(st.lists(FIELD, min_size=1, max_size=6))
def test_split_row_undoes_join_fields(fields):
    assert split_row(join_fields(fields)) == fields


@given(st.lists(st.text(max_size=8).filter(lambda t: "\n" not in t), min_size=1, max_size=6))
def test_rows_read_back_with_the_standard_csv_module(fields):
    row = join_fields(field.encode() for field in fields).decode()
    assume(fields != [""])  # an empty line is no row to the csv module
    assert next(csv.reader(io.StringIO(row, newline=""))) == fields


@pytest.mark.parametrize(
    ("row", "detail"),
    [
        (b'a,"b', "malformed quoted field at byte 2"),
        (b'a,b"c', "malformed quoted field at byte 2"),
        (b'"a"b,c', "malformed quoted field at byte 0"),
        (b'a,"b"",c', "malformed quoted field at byte 2"),
    ],
)
def test_misplaced_quotes_are_refused_with_the_place(row, detail):
    with pytest.raises(ValueError, match=detail):
        split_row(row)


@given(st.lists(FIELD, min_size=1, max_size=6))
def test_removing_quoted_fields_leaves_the_comma_count(fields):
    row = join_fields(fields)
    assert QUOTED_FIELD_RE.sub(b"", row).count(b",") == len(fields) - 1
    assert b'"' not in QUOTED_FIELD_RE.sub(b"", row)
