"""What a power cut lost, and whether the gateway kept its promise: pure functions, no I/O.

**The bound.** The reader appends each read's rows with one ``write`` and fsyncs the open batch
(and the quarantine) from its loop when ``GATEWAY_FSYNC_SECONDS`` (F) have passed since the
last fsync or seal. The loop wakes at least every 0.25 s, so no write stays unsynced longer
than F plus one loop iteration and the file system's latency: the slack S (0.5 s by default).
So at a cut at time T:

- every write pending in the open batch or the quarantine began after T - (F + S): the
  layer's ``pending_since`` of those files is checked against it;
- every row lost from the open batch was received after T - (F + S) (its ``received_at``),
  so at most ``rate x (F + S)`` rows plus what was read in one burst;
- nothing else held by a sealed batch, a mark or the seq floor is lost (they are fsynced and
  their folders too), and recovery keeps every complete row that survived.

What was lost is attributed per layer: rows of the open batch after its last fsync, quarantine
lines after it, the device lines never appended (read by the relay or in the kernel's tty
buffer when the power went), and the files written without fsync by design (uploader work
files, published status, the runs ledger).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.core.batchfile import device_field, row_seq
from gateway.core.records import leading_counter

# -- rows -------------------------------------------------------------------------------------


def split_rows(data: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(header line, complete rows, an unfinished tail) of a batch file's bytes."""
    end = data.find(b"\n")
    if end < 0:
        return b"", [], data
    header, body = data[: end + 1], data[end + 1 :]
    lines = body.split(b"\n")
    tail = lines.pop()  # after the last newline: b"" when the file ends with a whole row
    return header, [line + b"\n" for line in lines], tail


def complete_prefix(data: bytes) -> bytes:
    """The bytes up to and including the last complete row (nothing if no whole header)."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""


def is_row_prefix(kept: bytes, written: bytes) -> bool:
    """``kept`` is ``written`` cut back at a row boundary (or nothing at all)."""
    return written.startswith(kept) and (not kept or kept.endswith(b"\n"))


@dataclass(frozen=True)
class Rows:
    """Facts about a run of rows: seq range, when they were received, device counters."""

    count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    earliest: float | None = None  # received_at
    latest: float | None = None
    counters: tuple[int, ...] = ()

    @classmethod
    def of(cls, rows: list[bytes], counter_index: int | None) -> Rows:
        if not rows:
            return cls()
        received = [float(row.split(b",", 2)[1]) for row in rows]
        counters: tuple[int, ...] = ()
        if counter_index is not None:
            counters = tuple(int(device_field(row.rstrip(b"\n"), counter_index)) for row in rows)
        return cls(
            len(rows),
            row_seq(rows[0]),
            row_seq(rows[-1]),
            min(received),
            max(received),
            counters,
        )


def lost_rows(visible: bytes, survived: bytes) -> list[bytes]:
    """Complete rows visible before the cut that are not complete rows after it."""
    _, seen, _ = split_rows(visible)
    _, kept, _ = split_rows(complete_prefix(survived))
    return seen[len(kept) :]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- where a file belongs ---------------------------------------------------------------------

LAYERS = (
    "open batch",
    "sealed batch",
    "marks",
    "quarantine",
    "recovered tails",
    "uploader work",
    "status",
    "runs ledger",
    "losses ledger",
    "seq floor",
    "identity",
    "other",
)


def layer_of(relpath: str) -> str:
    """Which layer of the data dir a path (relative to the data dir) belongs to."""
    name = relpath.rsplit("/", 1)[-1]
    if relpath.startswith("batches/"):
        if ".touched" in name:
            return "marks"
        if name.endswith(".part"):
            return "open batch"
        if name.endswith(".csv"):
            return "sealed batch"
        return "other"
    if relpath.startswith("quarantine/recovered/"):
        return "recovered tails"
    if relpath.startswith("quarantine/"):
        return "quarantine"
    if relpath.startswith("state/uploader/"):
        return "uploader work"
    if ".status.json" in name:
        return "status"
    return {
        "reader.runs.jsonl": "runs ledger",
        "losses.jsonl": "losses ledger",
        "seq.json": "seq floor",
        "identity.json": "identity",
    }.get(name, "other")


def pending_by_layer(report: dict, data_prefix: str) -> dict[str, dict]:
    """The layer's report (files with pending data, un-synced entry changes) by layer."""
    layers: dict[str, dict] = {}
    prefix = data_prefix.strip("/") + "/"

    def entry(path: str) -> dict | None:
        path = path.split(" (", 1)[0]  # "... (unlinked)" / "(replaced)"
        if not path.startswith(prefix):
            return None
        layer = layer_of(path[len(prefix) :])
        return layers.setdefault(layer, {"files": 0, "bytes": 0, "dir_ops": 0})

    for file in report.get("files", []):
        if (found := entry(file["path"])) is not None:
            found["files"] += 1
            found["bytes"] += file["pending_bytes"]
    for op in report.get("dir_ops", []):
        if (found := entry(op.get("target") or op["path"])) is not None:
            found["dir_ops"] += 1
    return layers


# -- the bound --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    fsync_seconds: float
    slack_seconds: float = 0.5

    @property
    def seconds(self) -> float:
        return self.fsync_seconds + self.slack_seconds

    def explain(self) -> str:
        return (
            f"GATEWAY_FSYNC_SECONDS {self.fsync_seconds:g} s + {self.slack_seconds:g} s slack "
            f"(one reader loop iteration) = {self.seconds:g} s"
        )


# -- quarantine lines -------------------------------------------------------------------------


def jsonl_lines(data: bytes) -> list[bytes]:
    """Complete lines of a JSON-lines file (a torn last line is not one)."""
    lines = data.split(b"\n")
    lines.pop()
    return lines


def rejected_line_counters(lines: Iterable[bytes], line_format: str) -> set[int]:
    """Device counters of quarantine lines (the rejected lines that start with one)."""
    counters = set()
    for line in lines:
        try:
            entry = json.loads(line)
            text = entry.get("line")
            raw = text.encode() if text is not None else base64.b64decode(entry["line_b64"])
        except (ValueError, KeyError, AttributeError):
            continue
        counter = leading_counter(line_format, raw)
        if counter is not None:
            counters.add(counter)
    return counters


def unexplained_wire_gaps(report: dict, lost_rejections: set[int]) -> tuple[list[dict], int]:
    """The audit's device gaps blamed on the wire that no rejected line explains whose
    quarantine record a cut took (unsynced; the audit cannot know it), and how many lines
    such lost records do explain."""
    unexplained, covered = [], 0
    for gap in report["gaps"]:
        if gap["level"] != "device" or gap["cause"] != "lost on the wire":
            continue
        if all(c in lost_rejections for c in range(gap["first"], gap["last"] + 1)):
            covered += gap["count"]
        else:
            unexplained.append(gap)
    return unexplained, covered


def line_times(lines: Iterable[bytes]) -> list[float]:
    times = []
    for line in lines:
        try:
            at = json.loads(line).get("at")
        except (ValueError, AttributeError):
            continue
        if isinstance(at, int | float):
            times.append(float(at))
    return times


# -- seq over the data dir and the bucket -----------------------------------------------------


@dataclass(frozen=True, order=True)
class Held:
    """A seq range and the bytes that hold it, somewhere (a local batch, an object)."""

    first: int
    last: int
    sha: str
    where: str


@dataclass
class SeqBook:
    """Every seq range ever seen, local or in S3, with its bytes: seq is never reused when a
    range is only ever seen again with the same bytes and ranges never overlap otherwise."""

    ranges: dict[tuple[int, int], Held] = field(default_factory=dict)

    def see(self, held: Held) -> str | None:
        """Record a range; a description of the problem if it reuses or rewrites seq."""
        known = self.ranges.get((held.first, held.last))
        if known is not None:
            if known.sha != held.sha:
                return (
                    f"seq {held.first}-{held.last}: {held.where} holds other bytes than "
                    f"{known.where} did (sha256 {held.sha[:12]} vs {known.sha[:12]})"
                )
            return None
        self.ranges[(held.first, held.last)] = held
        return None

    def problems(self, upto: int | None = None) -> list[str]:
        """Overlapping ranges (seq reused) and holes below ``upto`` (seq not gap-free)."""
        found = []
        expected = 0
        previous: Held | None = None
        for held in sorted(self.ranges.values()):
            if held.first < expected and previous is not None:
                found.append(
                    f"seq {held.first}-{held.last} ({held.where}) overlaps "
                    f"{previous.first}-{previous.last} ({previous.where}): seq reused"
                )
            elif held.first > expected:
                found.append(f"seq {expected}-{held.first - 1} held nowhere: a hole")
            if held.last + 1 > expected:
                expected, previous = held.last + 1, held
        if upto is not None and expected < upto:
            found.append(f"seq {expected}-{upto - 1} held nowhere: a hole")
        return found

    @property
    def next_seq(self) -> int:
        return max((last + 1 for _, last in self.ranges), default=0)


def spread(values: list[float]) -> dict:
    """n, median, p90, max (and mean) of a list of figures."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    n = len(ordered)
    return {
        "n": n,
        "median": ordered[n // 2],
        "p90": ordered[min(n - 1, int(0.9 * n))],
        "max": ordered[-1],
        "mean": round(sum(ordered) / n, 3),
    }
