import datetime as dt

import pytest

from gateway.core.dates import NotADay, parse_day

TODAY = dt.date(2026, 11, 30)


@pytest.mark.parametrize(
    ("typed", "day"),
    [
        ("2026-11-02", dt.date(2026, 11, 2)),
        ("2026-11-02T13:45:00Z", dt.date(2026, 11, 2)),
        ("today", TODAY),
        ("Yesterday", dt.date(2026, 11, 29)),
        ("3 days ago", dt.date(2026, 11, 27)),
        ("1 day ago", dt.date(2026, 11, 29)),
        ("7d", dt.date(2026, 11, 23)),
        ("-2d", dt.date(2026, 11, 28)),
        ("-2", dt.date(2026, 11, 28)),
    ],
)
def test_the_forms_people_type(typed, day):
    assert parse_day(typed, TODAY) == day


@pytest.mark.parametrize("typed", ["last week", "2026-13-01", "", "soon"])
def test_anything_else_is_one_clear_sentence(typed):
    with pytest.raises(NotADay) as error:
        parse_day(typed, TODAY)
    assert str(error.value) == (
        f"{typed!r} is not a day: use YYYY-MM-DD, today, yesterday, '3 days ago' or -3d"
    )
