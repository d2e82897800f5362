"""Ranges of ``seq`` held somewhere, and what lies between them: holes and overlaps. No I/O.

The audit (local batches, objects, loss records) and the report (batches read back) both ask
the same question of sorted ranges; :func:`walk` answers it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Hole(Generic[Item]):
    """``first..last`` is held by nothing between ``before`` and the next range."""

    first: int
    last: int
    before: Item


@dataclass(frozen=True, slots=True)
class Overlap(Generic[Item]):
    """``first..last`` is held both by ``holder`` (the furthest-reaching range so far) and
    ``item``."""

    first: int
    last: int
    holder: Item
    item: Item


@dataclass(frozen=True, slots=True)
class Adjacent(Generic[Item]):
    """``after`` begins right where ``before`` ends."""

    before: Item
    after: Item


def walk(ranges: Iterable[tuple[int, int, Item]]) -> Iterator[Hole | Overlap | Adjacent]:
    """For ``(first, last, item)`` ranges sorted by ``first``: what lies between each range and
    the furthest-reaching one before it (a range wholly inside another is compared, and then
    the next one is compared with the outer one)."""
    holder: Item | None = None
    reach = -1
    for first, last, item in ranges:
        if holder is not None:
            if first > reach + 1:
                yield Hole(reach + 1, first - 1, holder)
            elif first <= reach:
                yield Overlap(first, min(last, reach), holder, item)
            else:
                yield Adjacent(holder, item)
        if holder is None or last > reach:
            holder, reach = item, last


def holes(ranges: Iterable[tuple[int, int]], low: int, high: int) -> list[tuple[int, int]]:
    """Parts of ``low..high`` covered by no range (``ranges`` sorted by their first value)."""
    found, expected = [], low
    for first, last in ranges:
        if first > expected:
            found.append((expected, min(first - 1, high)))
        expected = max(expected, last + 1)
        if expected > high:
            break
    if expected <= high:
        found.append((expected, high))
    return found
