"""Seal records on disk: ``<first>-<last>.csv.seal`` beside the batch the reader sealed.

The reader writes the record (``gateway/core/seal.py``) after the batch's last fsync and
before the rename that seals it, so the uploader, woken by that rename, finds it complete. It
is not fsynced and needs no atomic write: a record a power cut tore does not parse, and the
batch is then validated row by row, as is one without a record. The record lives as long as
its batch; cleanup removes both, and a record left without its batch is an orphan it sweeps.
"""

from __future__ import annotations

from pathlib import Path

from gateway.core.seal import SealRecord

SEAL_SUFFIX = ".seal"


def seal_path(batch_path: Path) -> Path:
    """Where a batch's seal record is, from the batch's sealed (``.csv``) path."""
    return batch_path.with_name(batch_path.name + SEAL_SUFFIX)


def write_seal(batch_path: Path, record: SealRecord) -> None:
    seal_path(batch_path).write_bytes(record.to_bytes())


def read_seal(batch_path: Path) -> SealRecord | None:
    """The batch's seal record, or None when it has none or it does not parse."""
    try:
        return SealRecord.parse(seal_path(batch_path).read_bytes())
    except (OSError, ValueError):
        return None


def remove_seal(batch_path: Path) -> None:
    seal_path(batch_path).unlink(missing_ok=True)


def is_orphan_seal(path: Path) -> bool:
    """A seal record whose batch is gone (moved to quarantine, or an interrupted deletion)."""
    return (
        path.name.endswith(SEAL_SUFFIX)
        and not path.with_name(path.name.removesuffix(SEAL_SUFFIX)).exists()
    )
