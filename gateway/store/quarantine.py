"""Where rejected lines go: ``quarantine/YYYY-MM-DD.jsonl``, one JSON object per line.

Each entry keeps the reason, the detail, the full length and the line itself (its first
``head_bytes`` bytes; as text when it is UTF-8, else base64), so an operator can see what the
device sent without the quarantine growing as fast as a device can send garbage. The audit and
the report read them back with :func:`read_rejections`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.core.keys import day_of
from gateway.core.records import Rejection
from gateway.store.durable import fsync_dir, make_dirs, write_atomic
from gateway.store.layout import DataDir


def quarantine_entry(rejection: Rejection, at: float, head_bytes: int) -> dict:
    entry: dict = {
        "at": round(at, 6),
        "reason": str(rejection.reason),
        "detail": rejection.detail,
        "length": rejection.length,
    }
    head = rejection.line[:head_bytes]
    try:
        entry["line"] = head.decode("utf-8")
    except UnicodeDecodeError:
        entry["line_b64"] = base64.b64encode(head).decode()
    if len(head) < rejection.length:
        entry["truncated"] = True
    return entry


class Quarantine:
    """Appends rejected lines to the day's file; one writer (the reader)."""

    def __init__(
        self, data_dir: DataDir, head_bytes: int = 256, max_file_bytes: int = 64 << 20
    ) -> None:
        self.data_dir = data_dir
        self.head_bytes = head_bytes
        self.max_file_bytes = max_file_bytes  # a garbage storm may not fill the disk
        self.dropped = 0  # entries not written because the day's file was full
        self._size = 0
        self._fd: int | None = None
        self._day: dt.date | None = None
        self._dirty = False

    def add(self, rejections: Iterable[Rejection], at: float) -> None:
        lines = [
            json.dumps(quarantine_entry(rejection, at, self.head_bytes)) + "\n"
            for rejection in rejections
        ]
        if not lines:
            return
        day = day_of(at)
        if day != self._day:
            self.close()
            path = self.data_dir.quarantine_day_file(day)
            make_dirs(path.parent)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._day = day
            self._size = os.fstat(self._fd).st_size
            if not self._size:  # a new day's file: its name must survive a power cut too
                fsync_dir(path.parent)
        data = "".join(lines).encode()
        if self._size + len(data) > self.max_file_bytes:
            self.dropped += len(lines)
            return
        os.write(self._fd, data)
        self._size += len(data)
        self._dirty = True

    def sync(self) -> None:
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None
            self._day = None

    def save_recovered_tail(self, name: str, data: bytes) -> Path:
        """Keep bytes recovery cut off a batch (same name each time: recovery is idempotent)."""
        folder = self.data_dir.recovered_tails
        make_dirs(folder)
        path = folder / name
        write_atomic(path, data)
        return path


@dataclass(frozen=True, slots=True)
class QuarantinedLine:
    """A rejected line as read back: its reason and the head of the line as received."""

    at: float | None
    reason: str
    line: bytes


def _in_range(day: dt.date, since: dt.date | None, until: dt.date | None) -> bool:
    return (since is None or day >= since) and (until is None or day <= until)


def read_rejections(
    data_dir: DataDir, since: dt.date | None = None, until: dt.date | None = None
) -> Iterator[QuarantinedLine]:
    """Rejected lines of the chosen UTC days, oldest day first; torn lines are skipped."""
    folder = data_dir.quarantine
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        try:
            day = dt.date.fromisoformat(path.stem)
        except ValueError:
            continue
        if not _in_range(day, since, until):
            continue
        for text in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(text)
                line = entry.get("line")
                head = (
                    line.encode()
                    if isinstance(line, str)
                    else base64.b64decode(entry.get("line_b64", ""))
                )
            except (ValueError, AttributeError):
                continue  # a line cut by a power cut
            at = entry.get("at")
            yield QuarantinedLine(
                float(at) if isinstance(at, int | float) else None,
                str(entry.get("reason", "unknown")),
                head,
            )


def recovered_tail_count(data_dir: DataDir) -> int:
    """How many tails recovery has cut off open batches here."""
    folder = data_dir.recovered_tails
    return sum(1 for p in folder.iterdir() if p.is_file()) if folder.is_dir() else 0
