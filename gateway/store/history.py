"""The batches as the site's history and export read them: sealed ``*.csv`` and the open
``*.part`` (its complete rows), oldest or newest first. Read only; a batch cleanup removes
while we read is skipped (it is no longer there to show)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from gateway.core.history import BatchRows, batch_rows
from gateway.core.keys import PART_SUFFIX, BadName, parse_part_name
from gateway.store.layout import DataDir
from gateway.store.recovery import sealed_batches


def _open_batches(data_dir: DataDir) -> list[tuple[int, Path]]:
    found = []
    for path in data_dir.batches.rglob(f"*{PART_SUFFIX}"):
        try:
            found.append((parse_part_name(path.name), path))
        except BadName:
            continue
    return found


def _all(data_dir: DataDir, days: tuple[dt.date, dt.date] | None = None) -> list[tuple[int, Path]]:
    """Every batch by first seq; with ``days`` only those opened from the day before the first
    (a batch may run over midnight) to the last."""
    batches = [
        (batch.name.first_seq, batch.path)
        for batch in sealed_batches(data_dir)
        if days is None or days[0] - dt.timedelta(days=1) <= batch.name.day <= days[1]
    ]
    return sorted(batches + _open_batches(data_dir))


def _read(path: Path) -> BatchRows | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # sealed (renamed) or cleaned up while we looked
        return None
    return batch_rows(data)


def batches_newest_first(data_dir: DataDir, before_seq: int | None = None) -> Iterator[BatchRows]:
    """Batches holding rows before ``before_seq`` (None: all), the newest first."""
    for first_seq, path in reversed(_all(data_dir)):
        if before_seq is not None and first_seq >= before_seq:
            continue
        batch = _read(path)
        if batch is not None:
            yield batch


def batches_oldest_first(
    data_dir: DataDir, days: tuple[dt.date, dt.date] | None = None
) -> Iterator[BatchRows]:
    """Batches oldest first; ``days`` (UTC, first and last) leaves out sealed batches opened
    outside them, without reading them."""
    for _, path in _all(data_dir, days):
        batch = _read(path)
        if batch is not None:
            yield batch
