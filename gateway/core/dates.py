"""Days as people type them on the command line: ``2026-11-30``, ``today``, ``yesterday``,
``3 days ago``, ``-3d``. No clock: ``today`` is an argument. Days are UTC days, as the batch
folders are."""

from __future__ import annotations

import datetime as dt
import re

_AGO_RE = re.compile(r"(\d{1,5})\s*(?:d|days?)\s*(?:ago)?|-(\d{1,5})\s*d?")
FORMS = "YYYY-MM-DD, today, yesterday, '3 days ago' or -3d"


class NotADay(ValueError):
    """``str()`` says what was typed and the forms that are understood."""


def parse_day(text: str, today: dt.date) -> dt.date:
    """The UTC day ``text`` names, counted back from ``today`` where it is relative."""
    word = text.strip().lower()
    if word == "today":
        return today
    if word == "yesterday":
        return today - dt.timedelta(days=1)
    match = _AGO_RE.fullmatch(word)
    if match:
        return today - dt.timedelta(days=int(match[1] or match[2]))
    try:
        return dt.date.fromisoformat(word[:10]) if len(word) >= 10 else dt.date.fromisoformat(word)
    except ValueError:
        raise NotADay(f"{text!r} is not a day: use {FORMS}") from None
