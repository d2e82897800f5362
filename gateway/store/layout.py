"""Where things live under ``$GATEWAY_DATA_DIR`` (the Data dir contract). The only owner of
those paths: every other module asks a :class:`DataDir` instead of joining names itself.

```
batches/YYYY/MM/DD/<first>-<last>.csv[.touched]   sealed batches, their upload marks
batches/YYYY/MM/DD/<first>.part                   the open batch
quarantine/YYYY-MM-DD.jsonl                       rejected lines
quarantine/recovered/                             tails recovery cut off a .part
quarantine/batches/                               sealed batches that failed validation
state/                                            ledgers and published counters
state/not_stored.jsonl                            rows read but not stored, per episode
state/uploader/{work,chunks}/                     the uploader's derived files
```
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from gateway.store.durable import fsync_dir, make_dirs

BATCHES = "batches"
QUARANTINE = "quarantine"
STATE = "state"


@dataclass(frozen=True)
class DataDir:
    root: Path

    # -- batches ---------------------------------------------------------------------------

    @property
    def batches(self) -> Path:
        """Sealed batches (``*.csv``, any depth), the open ``*.part``, upload marks."""
        return self.root / BATCHES

    def batch_path(self, relative_path: str) -> Path:
        """A batch file from its path under ``batches/`` (``YYYY/MM/DD/<first>-<last>.csv``)."""
        return self.batches / relative_path

    def relative_path(self, path: Path) -> str:
        """Inverse of :meth:`batch_path`."""
        return path.relative_to(self.batches).as_posix()

    # -- quarantine ------------------------------------------------------------------------

    @property
    def quarantine(self) -> Path:
        """Rejected lines (JSON lines per day) and tails cut off by recovery."""
        return self.root / QUARANTINE

    def quarantine_day_file(self, day: dt.date) -> Path:
        return self.quarantine / f"{day.isoformat()}.jsonl"

    @property
    def recovered_tails(self) -> Path:
        return self.quarantine / "recovered"

    @property
    def quarantined_batches(self) -> Path:
        """Sealed batches that failed validation, moved out of ``batches/`` with a reason."""
        return self.quarantine / BATCHES

    # -- state -----------------------------------------------------------------------------

    @property
    def state(self) -> Path:
        """Small state files: the seq floor, ledgers, published counters, a clean stop's
        fragment."""
        return self.root / STATE

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

    @property
    def runs_file(self) -> Path:
        """One line per reader start: the audit tells a gap at a restart from one on the wire."""
        return self.state / "reader.runs.jsonl"

    @property
    def clock_steps_file(self) -> Path:
        """One line per step of the wall clock the reader saw (NTP setting a Pi's clock)."""
        return self.state / "clock.steps.jsonl"

    @property
    def losses_file(self) -> Path:
        """One line per batch cleanup dropped before it was uploaded."""
        return self.state / "losses.jsonl"

    @property
    def not_stored_file(self) -> Path:
        """One line per episode of rows the reader read but could not store, with the cause."""
        return self.state / "not_stored.jsonl"

    @property
    def probe_file(self) -> Path:
        """Written and removed by the reader to learn whether the disk takes writes again."""
        return self.state / "reader.probe"

    def status_file(self, service: str) -> Path:
        return self.state / f"{service}.status.json"

    @property
    def uploader_state(self) -> Path:
        """The uploader's derived files: compressed copies, per-chunk Luigi outputs."""
        return self.state / "uploader"

    @property
    def uploader_pidfile(self) -> Path:
        """The uploader's default pid file (``GATEWAY_UPLOADER_PIDFILE`` overrides it)."""
        return self.root / "uploader.pid"

    @property
    def uploader_log(self) -> Path:
        """Where the detached uploader logs by default (``GATEWAY_UPLOADER_LOG_FILE``)."""
        return self.root / "uploader.log"

    def ensure(self) -> DataDir:
        for folder in (self.batches, self.quarantine, self.state):
            make_dirs(folder)
        # Whoever made the data dir (the uploader's pid file does it with a plain mkdir) may not
        # have made its name durable: without this a power cut can take the whole data dir.
        try:
            fsync_dir(self.root.parent)
        except OSError:
            pass  # a parent we may not open was made long before us, by the installer
        return self

    @classmethod
    def holding(cls, path: Path) -> DataDir | None:
        """The data dir that holds ``path`` (a batch or a file under ``batches/``), if any."""
        for parent in path.parents:
            if parent.name == BATCHES:
                return cls(parent.parent)
        return None


def is_data_dir(path: Path) -> bool:
    return (path / BATCHES).is_dir()


def discover_data_dirs(root: Path) -> list[DataDir]:
    """``root`` if it holds ``batches/``, else each child that does (one per monitor on a
    multi-monitor gateway); empty when there is none yet."""
    if is_data_dir(root):
        return [DataDir(root)]
    try:
        children = sorted(p for p in root.iterdir() if is_data_dir(p))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [DataDir(p) for p in children]
