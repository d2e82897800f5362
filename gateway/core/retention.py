"""Which files to delete so the SD card never fills. No I/O, no clock.

The caller describes what is on disk (:class:`Item` per sealed batch, per quarantine file),
the file system (free and total bytes) and the :class:`RetentionPolicy`; :func:`plan` returns
the deletions to make, oldest first, each with its reason, and whether the reader must stop
storing new rows. Rules, in order:

1. Uploaded ("touched") batches older than ``retain_uploaded_seconds`` go.
2. While free space is below the keep-free mark, or the data is above ``max_data_bytes``,
   more touched batches go, oldest first, whatever their age.
3. Quarantine files beyond ``max_quarantine_bytes`` go, oldest first; under pressure (rule 2)
   quarantine files go after touched batches.
4. If a limit is still broken when nothing else is left, batches not yet uploaded go, oldest
   first, only with ``on_full="drop-oldest"``; with ``"stop-accepting"`` nothing more is
   deleted and the plan says to stop storing new rows. Each such loss carries its seq range.

The open batch (``.part``) is never an item, so it can never be deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

ON_FULL = ("stop-accepting", "drop-oldest")


@dataclass(frozen=True, slots=True)
class Item:
    """Something cleanup may delete: a sealed batch (with its marks) or a quarantine file."""

    key: str  # a stable name: the batch's relative path, or the quarantine file's
    size: int  # bytes it frees
    sealed_at: float  # when it was sealed / last written (Unix time)
    touched: bool = False  # uploaded and verified
    kind: str = "batch"  # "batch" or "quarantine"
    first_seq: int | None = None
    last_seq: int | None = None


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    keep_free_bytes: int = 0
    keep_free_percent: float = 0.0
    max_data_bytes: int = 0  # 0: no limit
    retain_uploaded_seconds: float = 7 * 86400
    on_full: str = "stop-accepting"
    max_quarantine_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.on_full not in ON_FULL:
            raise ValueError(f"on_full must be one of {', '.join(ON_FULL)}, got {self.on_full!r}")
        if not 0 <= self.keep_free_percent < 100:
            raise ValueError(f"keep_free_percent must be in [0, 100), got {self.keep_free_percent}")

    def keep_free(self, total_bytes: int) -> int:
        """The keep-free mark in bytes: the larger of the absolute and the percentage."""
        return max(self.keep_free_bytes, int(total_bytes * self.keep_free_percent / 100))


@dataclass(frozen=True, slots=True)
class Deletion:
    item: Item
    reason: str
    loss: bool  # True when the data had not reached S3


@dataclass
class Plan:
    deletions: list[Deletion] = field(default_factory=list)
    stop_accepting: bool = False
    free_after: int = 0
    data_after: int = 0
    shortfall: int = 0  # bytes still missing to meet the limits after the plan

    @property
    def losses(self) -> list[Deletion]:
        return [d for d in self.deletions if d.loss]


def plan(
    items: Sequence[Item],
    free_bytes: int,
    total_bytes: int,
    policy: RetentionPolicy,
    now: float,
) -> Plan:
    """Decide what to delete. Deterministic: the same inputs give the same plan."""
    batches = sorted((i for i in items if i.kind == "batch"), key=_age_order)
    quarantine = sorted((i for i in items if i.kind == "quarantine"), key=_age_order)
    keep_free = policy.keep_free(total_bytes)
    free = free_bytes
    data = sum(i.size for i in batches) + sum(i.size for i in quarantine)
    result = Plan()
    deleted: set[str] = set()

    def delete(item: Item, reason: str, loss: bool = False) -> None:
        nonlocal free, data
        result.deletions.append(Deletion(item, reason, loss))
        deleted.add(item.key)
        free += item.size
        data -= item.size

    def needed() -> int:
        over_data = data - policy.max_data_bytes if policy.max_data_bytes else 0
        return max(keep_free - free, over_data, 0)

    touched = [i for i in batches if i.touched]
    for item in touched:
        if now - item.sealed_at >= policy.retain_uploaded_seconds:
            delete(item, f"uploaded and older than {policy.retain_uploaded_seconds:g} s")
    # Rejected lines stay while the cap allows, uploaded or not: the audit and the report
    # read the device counters of rejected lines from them.
    quarantine = [i for i in quarantine if i.touched] + [i for i in quarantine if not i.touched]
    quarantine_bytes = sum(i.size for i in quarantine)
    for item in quarantine:
        if quarantine_bytes <= policy.max_quarantine_bytes:
            break
        if item.key in deleted:
            continue
        quarantine_bytes -= item.size
        delete(item, f"quarantine above {policy.max_quarantine_bytes} bytes")
    # Under pressure: uploaded batches, then rejected lines, and only then data not in S3.
    for item in touched + quarantine:
        if needed() <= 0:
            break
        if item.key not in deleted:
            what = "uploaded" if item.kind == "batch" else "quarantine"
            delete(item, _pressure_reason(free, keep_free, data, policy, what))
    if needed() > 0:
        if policy.on_full == "drop-oldest":
            for item in batches:
                if needed() <= 0:
                    break
                if item.key not in deleted:
                    reason = "NOT UPLOADED, dropped by on_full=drop-oldest"
                    delete(item, _pressure_reason(free, keep_free, data, policy, reason), True)
        else:
            result.stop_accepting = True
    result.free_after = free
    result.data_after = data
    result.shortfall = needed()
    return result


def _age_order(item: Item) -> tuple:
    return (item.sealed_at, item.first_seq if item.first_seq is not None else -1, item.key)


def _pressure_reason(
    free: int, keep_free: int, data: int, policy: RetentionPolicy, what: str
) -> str:
    if free < keep_free:
        return f"{what}; {free} bytes free, below the keep-free mark of {keep_free}"
    return f"{what}; data holds {data} bytes, above the limit of {policy.max_data_bytes}"
