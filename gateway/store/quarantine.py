"""Where rejected lines go: ``quarantine/YYYY-MM-DD.jsonl``, one JSON object per line.

Each entry keeps the reason, the detail, the full length and the line itself (its first
``head_bytes`` bytes; as text when it is UTF-8, else base64), so an operator can see what the
device sent without the quarantine growing as fast as a device can send garbage.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from pathlib import Path

from gateway.core.keys import day_of
from gateway.core.records import Rejection
from gateway.store.durable import make_dirs, write_atomic


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
    def __init__(self, folder: Path, head_bytes: int = 256, max_file_bytes: int = 64 << 20) -> None:
        self.folder = folder
        self.head_bytes = head_bytes
        self.max_file_bytes = max_file_bytes  # a garbage storm may not fill the disk
        self.dropped = 0  # entries not written because the day's file was full
        self._size = 0
        self._fd: int | None = None
        self._day: str | None = None
        self._dirty = False

    def add(self, rejections: Iterable[Rejection], at: float) -> None:
        lines = [
            json.dumps(quarantine_entry(rejection, at, self.head_bytes)) + "\n"
            for rejection in rejections
        ]
        if not lines:
            return
        day = day_of(at).isoformat()
        if day != self._day:
            self.close()
            make_dirs(self.folder)
            self._fd = os.open(
                self.folder / f"{day}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
            self._day = day
            self._size = os.fstat(self._fd).st_size
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
        folder = self.folder / "recovered"
        make_dirs(folder)
        path = folder / name
        write_atomic(path, data)
        return path
