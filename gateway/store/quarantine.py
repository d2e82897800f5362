"""Where rejected lines go: segments of JSON lines, sealed like batches, then uploaded.

The reader appends each rejected line to the open segment
``quarantine/YYYY/MM/DD/<time of its first line, ms>.jsonl.part`` and seals it (fsync, rename
to ``.jsonl``, fsync the folder) when it is ``seal_seconds`` old or ``seal_bytes`` big, when the
day changes and at a stop; the uploader uploads sealed segments and marks them, as it does
batches. Each entry keeps the reason, the detail, the full length and the line itself (its
first ``head_bytes`` bytes; as text when it is UTF-8, else base64), so an operator can see what
the device sent without the quarantine growing as fast as a device can send garbage; a day may
hold at most ``max_day_bytes`` (what is beyond is counted, not written). The audit and the
report read them back with :func:`read_rejections`. Data dirs of older versions hold one
``quarantine/YYYY-MM-DD.jsonl`` per day: they are read and uploaded the same way.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.core.keys import day_folder, day_of
from gateway.core.records import Rejection
from gateway.store.durable import PART, commit, fsync_dir, make_dirs, write_atomic
from gateway.store.layout import BATCHES, DataDir
from gateway.store.marks import is_touched

SEGMENT_SUFFIX = ".jsonl"
SEAL_SECONDS = 60.0
SEAL_BYTES = 1 << 20


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
    """Appends rejected lines to the open segment and seals it; one writer (the reader)."""

    def __init__(
        self,
        data_dir: DataDir,
        head_bytes: int = 256,
        max_day_bytes: int = 32 << 20,
        *,
        seal_seconds: float = SEAL_SECONDS,
        seal_bytes: int = SEAL_BYTES,
    ) -> None:
        self.data_dir = data_dir
        self.head_bytes = head_bytes
        self.max_day_bytes = max_day_bytes  # a garbage storm may not fill the disk
        self.seal_seconds = seal_seconds
        self.seal_bytes = seal_bytes
        self.dropped = 0  # entries not written because the day's budget was spent
        self.sealed_total = 0
        self._path: Path | None = None  # the open segment's .part
        self._fd: int | None = None
        self._size = 0
        self._opened = 0.0  # monotonic
        self._day: dt.date | None = None
        self._day_bytes = 0  # written on that day, by this and earlier runs
        self._dirty = False

    def add(self, rejections: Sequence[Rejection], at: float | None = None) -> bool:
        """Append ``rejections``, each stamped with the time its read returned (else ``at``,
        else now); they go to the segment of the first one's day. False: the day's budget is
        spent and they were counted, not written. ``OSError``: the disk refused them (no
        partial entry stays)."""
        if not rejections:
            return True
        now = time.time()
        times = [r.received_at if r.received_at is not None else (at or now) for r in rejections]
        lines = [
            json.dumps(quarantine_entry(rejection, when, self.head_bytes)) + "\n"
            for rejection, when in zip(rejections, times, strict=True)
        ]
        data = "".join(lines).encode()
        day = day_of(times[0])
        if day != self._day:
            self.seal()
            self._day = day
            self._day_bytes = _bytes_of_day(self.data_dir, day)
        if self._day_bytes + len(data) > self.max_day_bytes:
            self.dropped += len(lines)
            return False
        if self._fd is None:
            self._open(day, times[0])
        self._write(data)
        self._size += len(data)
        self._day_bytes += len(data)
        self._dirty = True
        return True

    def _write(self, data: bytes) -> None:
        """All of ``data`` or, on error, nothing: a torn entry would swallow the next one."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass  # read-only now; readers skip a torn line
            raise

    def tick(self, now: float) -> None:
        """Seal the open segment when it is old or big enough (``now``: monotonic)."""
        if self._fd is not None and (
            now - self._opened >= self.seal_seconds or self._size >= self.seal_bytes
        ):
            self.seal()

    def sync(self) -> None:
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def seal(self) -> Path | None:
        """Make the open segment a sealed one (the uploader's to take); its path, or None."""
        if self._fd is None:
            return None
        os.fsync(self._fd)
        os.close(self._fd)
        part, self._path, self._fd = self._path, None, None
        self._dirty = False
        final = part.with_name(part.name.removesuffix(PART))
        commit(part, final)
        self.sealed_total += 1
        return final

    def close(self) -> None:
        self.seal()
        self._day = None

    def _open(self, day: dt.date, first_at: float) -> None:
        folder = self.data_dir.quarantine / day_folder(day)
        make_dirs(folder)
        stem = f"{int(first_at * 1000):013d}"
        for attempt in range(1000):  # a clock set back may name a segment that exists
            name = f"{stem}{f'-{attempt}' if attempt else ''}{SEGMENT_SUFFIX}"
            if not (folder / name).exists() and not (folder / (name + PART)).exists():
                break
        path = folder / (name + PART)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            fsync_dir(folder)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self._fd, self._path, self._size, self._opened = fd, path, 0, time.monotonic()

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


@dataclass(frozen=True, slots=True)
class RejectionFile:
    """A file of rejected lines (or a tail recovery cut off): where it is, and its day."""

    path: Path
    relpath: str  # under quarantine/: also its place under the gateway's quarantine/ in S3
    day: dt.date | None  # None: a recovered tail
    sealed: bool


def rejection_files(data_dir: DataDir) -> list[RejectionFile]:
    """Segments (sealed and the open one) and older versions' day files, oldest first."""
    folder = data_dir.quarantine
    found = []
    for path in folder.rglob(f"*{SEGMENT_SUFFIX}*") if folder.is_dir() else []:
        relpath = path.relative_to(folder).as_posix()
        sealed = path.name.endswith(SEGMENT_SUFFIX)
        if not sealed and not path.name.endswith(SEGMENT_SUFFIX + PART):
            continue  # a mark, or a batch's reason
        if relpath.startswith(f"{BATCHES}/"):
            continue
        day = _day_of(relpath)
        if day is not None:
            found.append(RejectionFile(path, relpath, day, sealed))
    return sorted(found, key=lambda f: (f.day, f.relpath))


def _day_of(relpath: str) -> dt.date | None:
    """``YYYY/MM/DD/<ms>.jsonl[.part]`` or an older ``YYYY-MM-DD.jsonl``."""
    folder, _, name = relpath.rpartition("/")
    try:
        if folder:
            return dt.date(*map(int, folder.split("/")))
        return dt.date.fromisoformat(name.removesuffix(PART).removesuffix(SEGMENT_SUFFIX))
    except (ValueError, TypeError):
        return None


def rejections_to_upload(data_dir: DataDir) -> list[RejectionFile]:
    """Sealed segments and recovered tails not uploaded yet (no touched mark beside them)."""
    files = [f for f in rejection_files(data_dir) if f.sealed and not is_touched(f.path)]
    tails = data_dir.recovered_tails
    for path in sorted(tails.iterdir()) if tails.is_dir() else []:
        if path.is_file() and not path.name.endswith((PART, ".touched")) and not is_touched(path):
            relpath = path.relative_to(data_dir.quarantine).as_posix()
            files.append(RejectionFile(path, relpath, None, True))
    return files


def recover_segments(data_dir: DataDir) -> list[Path]:
    """Seal the segments a stopped (or killed) reader left open, cut to their last complete
    line; an empty one is removed. Returns the sealed ones."""
    sealed = []
    for file in rejection_files(data_dir):
        if file.sealed:
            continue
        data = file.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep == 0:
            file.path.unlink()
            fsync_dir(file.path.parent)
            continue
        with open(file.path, "r+b") as handle:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        final = file.path.with_name(file.path.name.removesuffix(PART))
        commit(file.path, final)
        sealed.append(final)
    return sealed


def _bytes_of_day(data_dir: DataDir, day: dt.date) -> int:
    total = 0
    for file in rejection_files(data_dir):
        if file.day == day:
            try:
                total += file.path.stat().st_size
            except FileNotFoundError:
                pass
    return total


def read_rejections(
    data_dir: DataDir, since: dt.date | None = None, until: dt.date | None = None
) -> Iterator[QuarantinedLine]:
    """Rejected lines of the chosen UTC days, oldest first; torn lines are skipped."""
    for file in rejection_files(data_dir):
        if not _in_range(file.day, since, until):
            continue
        try:
            text = file.path.read_text(errors="replace")
        except FileNotFoundError:
            continue  # sealed or cleaned up while we looked
        for line_text in text.splitlines():
            try:
                entry = json.loads(line_text)
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
