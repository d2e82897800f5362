"""Upload marks ("touched"): a sidecar per uploaded batch, a file per fully uploaded folder.

``<first>-<last>.csv.touched`` holds the JSON record of the verified object (key, size,
checksum, time). A day folder gets ``.touched`` when every batch in it is touched and no batch
can still be added to it. Only touched data is eligible for routine cleanup.
"""

from __future__ import annotations

from pathlib import Path

BATCH_MARK_SUFFIX = ".touched"
FOLDER_MARK = ".touched"


def batch_mark(batch_path: Path) -> Path:
    return batch_path.with_name(batch_path.name + BATCH_MARK_SUFFIX)


def folder_mark(folder: Path) -> Path:
    return folder / FOLDER_MARK


def is_touched(batch_path: Path) -> bool:
    return batch_mark(batch_path).exists()
