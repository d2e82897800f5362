"""What the uploader does next, decided from names and marks alone. No I/O.

Chunks: the pending batches of a data dir, in ``seq`` order, cut into groups of a fixed size.
A chunk's id hashes what identifies its work (data dir, gateway, key prefix, compression,
batches), so after a crash the same backlog gives the same chunks and Luigi resumes them from
their outputs. Day folders: marked when every batch in them is touched and the day is over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    data_dir: str
    gateway_id: str
    batches: tuple[str, ...]  # relative paths under batches/, in seq order

    def chunk_id(self, prefix: str, compression: str) -> str:
        text = "\n".join((self.data_dir, self.gateway_id, prefix, compression, *self.batches))
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def make_chunks(
    data_dir: str,
    gateway_id: str,
    pending: Sequence[tuple[str, int]],
    max_batches: int,
    max_bytes: int,
) -> list[Chunk]:
    """Cut ``pending`` ((relative path, size) in seq order) into chunks of at most
    ``max_batches`` batches and, unless one batch alone is bigger, ``max_bytes`` bytes.

    Cutting from the oldest keeps the ids of full chunks stable while new batches arrive.
    """
    if max_batches < 1 or max_bytes < 1:
        raise ValueError("chunk limits must be at least 1")
    chunks, current, size = [], [], 0
    for relpath, nbytes in pending:
        if current and (len(current) == max_batches or size + nbytes > max_bytes):
            chunks.append(Chunk(data_dir, gateway_id, tuple(current)))
            current, size = [], 0
        current.append(relpath)
        size += nbytes
    if current:
        chunks.append(Chunk(data_dir, gateway_id, tuple(current)))
    return chunks


def day_is_over(day: dt.date, now: float) -> bool:
    """True once no batch can be opened in ``day`` any more (UTC)."""
    return dt.datetime.fromtimestamp(now, dt.UTC).date() > day


def days_to_mark(
    batches: Iterable[tuple[dt.date, bool]],
    marked: Iterable[dt.date],
    now: float,
    open_days: Iterable[dt.date] = (),
) -> list[dt.date]:
    """Day folders to mark touched: every batch in them touched, the day over, not yet marked.

    ``batches`` holds ``(day, touched)`` for every sealed batch still on disk; ``open_days``
    the days whose folder still holds an open batch (a ``.part``: a batch begun before
    midnight is sealed after it). A day whose batches are all gone has nothing to mark.
    """
    touched_all: dict[dt.date, bool] = {}
    for day, touched in batches:
        touched_all[day] = touched_all.get(day, True) and touched
    skip = set(marked) | set(open_days)
    return sorted(
        day
        for day, every in touched_all.items()
        if every and day not in skip and day_is_over(day, now)
    )


def days_to_unmark(
    batches: Iterable[tuple[dt.date, bool]], marked: Iterable[dt.date]
) -> list[dt.date]:
    """Marked day folders that hold a batch not yet touched (e.g. after a clock step back)."""
    untouched = {day for day, touched in batches if not touched}
    return sorted(day for day in marked if day in untouched)
