"""Where things live under ``$GATEWAY_DATA_DIR`` (the Data dir contract)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.store.durable import make_dirs


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def batches(self) -> Path:
        """Sealed batches (``*.csv``, any depth), the open ``*.part``, upload marks."""
        return self.root / "batches"

    @property
    def quarantine(self) -> Path:
        """Rejected lines (JSON lines per day) and tails cut off by recovery."""
        return self.root / "quarantine"

    @property
    def state(self) -> Path:
        """Small state files: the seq floor, published counters, a clean stop's fragment."""
        return self.root / "state"

    @property
    def seq_file(self) -> Path:
        return self.state / "seq.json"

    @property
    def fragment_file(self) -> Path:
        return self.state / "reader.fragment"

    @property
    def identity_file(self) -> Path:
        """Who writes here: ``{"gateway_id": ...}``, written by the reader at start, so the
        uploader and cleanup can serve several data dirs (one per monitor) with the right id."""
        return self.state / "identity.json"

    def status_file(self, service: str) -> Path:
        return self.state / f"{service}.status.json"

    def ensure(self) -> DataDir:
        for folder in (self.batches, self.quarantine, self.state):
            make_dirs(folder)
        return self


def discover_data_dirs(root: Path) -> list[DataDir]:
    """``root`` if it holds ``batches/``, else each child that does (one per monitor on a
    multi-monitor gateway); empty when there is none yet."""
    if (root / "batches").is_dir():
        return [DataDir(root)]
    try:
        children = sorted(p for p in root.iterdir() if (p / "batches").is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [DataDir(p) for p in children]
