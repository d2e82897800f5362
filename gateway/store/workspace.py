"""The uploader's derived files under ``state/uploader/``: compressed copies of batches
(``work/``), and the Luigi outputs of each chunk (``chunks/<chunk id>/``).

They are written without fsync (a SIGKILL keeps them: they are in the page cache) and are
dropped after a reboot, when a power cut may have left zeros in them. Touched marks are
fsynced and live beside the batches, not here.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from gateway.store.durable import make_dirs, write_atomic
from gateway.store.layout import DataDir

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"


@dataclass(frozen=True)
class UploadWorkspace:
    data_dir: DataDir

    @property
    def root(self) -> Path:
        return self.data_dir.uploader_state

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def chunks(self) -> Path:
        return self.root / "chunks"

    def compressed_path(self, relpath: str) -> Path:
        return self.work / f"{relpath}.gz"

    def chunk_output(self, chunk_id: str, name: str) -> Path:
        return self.chunks / chunk_id / name

    def forget_processed(self, relpath: str) -> None:
        """Drop a batch's compressed copy (after its mark, or when the store got other bytes).
        (Up to 2026-12 a ``<batch>.json`` record lay beside it; any left go at the next boot.)"""
        self.compressed_path(relpath).unlink(missing_ok=True)

    def forget_chunk(self, chunk_id: str) -> None:
        shutil.rmtree(self.chunks / chunk_id, ignore_errors=True)

    def forget_other_chunks(self, keep: set[str]) -> None:
        """Remove the outputs of chunks not in this cycle (a crash left them; the batches were
        regrouped since), so no stale output can stand for work done."""
        try:
            folders = list(self.chunks.iterdir())
        except FileNotFoundError:
            return
        for folder in folders:
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)

    def forget_after_reboot(self, current_boot: str) -> bool:
        """Drop what an earlier boot derived; True when something was dropped."""
        marker = self.root / "boot_id"
        try:
            if marker.read_text().strip() == current_boot:
                return False
        except FileNotFoundError:
            pass
        for folder in (self.work, self.chunks):
            shutil.rmtree(folder, ignore_errors=True)
        make_dirs(self.root)
        write_atomic(marker, current_boot.encode())
        return True
