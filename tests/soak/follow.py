"""Follow the bucket during a long run: read every object once, in seq order, and keep what
``gateway audit`` cannot see once cleanup has deleted the local batches: that the objects hold
seq 0, 1, 2, ... without a hole or an overlap, and every jump of the device counter.

``gateway audit`` checks the device counter over the batches still on the gateway; a soak
deletes uploaded batches after a minute, so the campaign reads the objects themselves (one
GET per object, as they appear) and explains each jump by an injected fault at the end.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path

from gateway.core.keys import BadName, parse_object_key

_COUNTER = re.compile(rb"^(\d+),")


@dataclass(frozen=True, slots=True)
class Jump:
    seq: int  # the first stored row after the missing lines
    first: int  # first missing device counter
    last: int


class S3Follower:
    def __init__(self, client, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.rstrip("/") + "/"
        self.next_seq = 0
        self.last_counter: int | None = None
        self.objects = 0
        self.rows = 0
        self.jumps: list[Jump] = []
        self.problems: list[str] = []
        self._waiting: dict[int, tuple[str, int]] = {}  # first seq -> (key, last seq)
        self._listed_after = ""

    def poll(self) -> None:
        """List new objects; read those that continue the seq already read."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=self.prefix, StartAfter=self._listed_after
        )
        for page in pages:
            for item in page.get("Contents", []):
                try:
                    parsed = parse_object_key(item["Key"])
                except BadName:
                    continue
                batch = parsed.batch
                if batch.last_seq >= self.next_seq:
                    self._waiting[batch.first_seq] = (item["Key"], batch.last_seq)
        while self.next_seq in self._waiting:
            key, last = self._waiting.pop(self.next_seq)
            self._read(key, self.next_seq, last)
            self._listed_after = key
        stale = [first for first in self._waiting if first < self.next_seq]
        for first in stale:
            key, _ = self._waiting.pop(first)
            self.problems.append(f"{key} overlaps seq already read (next {self.next_seq})")

    def _read(self, key: str, first: int, last: int) -> None:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        data = gzip.decompress(body) if key.endswith(".gz") else body
        lines = data.split(b"\n")
        if lines[-1] != b"" or not lines[0].startswith(b"seq,received_at,"):
            self.problems.append(f"{key}: not a batch (header {lines[0][:60]!r})")
        expected = first
        for line in lines[1:-1]:
            seq_text, _received, rest = line.split(b",", 2)
            seq = int(seq_text)
            if seq != expected:
                self.problems.append(f"{key}: seq {seq} where {expected} was due")
                expected = seq
            match = _COUNTER.match(rest)
            if match:
                counter = int(match[1])
                if self.last_counter is not None and counter > self.last_counter + 1:
                    self.jumps.append(Jump(seq, self.last_counter + 1, counter - 1))
                elif self.last_counter is not None and counter <= self.last_counter:
                    self.problems.append(f"{key}: device counter went back at seq {seq}")
                self.last_counter = counter
            expected += 1
            self.rows += 1
        if expected != last + 1:
            self.problems.append(f"{key}: rows end at seq {expected - 1}, its name says {last}")
        self.next_seq = last + 1
        self.objects += 1


def rejected_counters(data_dir: Path) -> set[int]:
    """Device counters of the lines the reader rejected (quarantine), when they survived."""
    counters = set()
    for path in (data_dir / "quarantine").rglob("*.jsonl"):
        for text in path.read_text().splitlines():
            try:
                entry = json.loads(text)
            except ValueError:
                continue
            line = entry.get("line")
            raw = line.encode() if line is not None else base64.b64decode(entry.get("line_b64", ""))
            match = _COUNTER.match(raw)
            if match:
                counters.add(int(match[1]))
    return counters


def restart_seqs(data_dir: Path) -> set[int]:
    """The first seq of every reader start (state/reader.runs.jsonl)."""
    seqs = set()
    path = data_dir / "state" / "reader.runs.jsonl"
    if path.exists():
        for text in path.read_text().splitlines():
            try:
                seqs.add(json.loads(text)["first_seq"])
            except (ValueError, KeyError):
                continue
    return seqs


@dataclass
class Explained:
    rejected_lines: int = 0
    restart_gaps: int = 0
    restart_lines: int = 0
    restart_max_lines: int = 0
    unplug_lines: int = 0


def explain_jumps(
    jumps: list[Jump], rejected: set[int], restarts: set[int], faults: list[dict]
) -> tuple[Explained, list[str]]:
    """Attribute every device-counter jump to an injected fault: a rejected line (its counter
    is in the quarantine), a reader restart (the jump is at the first seq of a run), or an
    unplug of the simulated port (its lost range in the fault log; lines the reader had not
    read when the port vanished are lost just before it). What is left is unexplained."""
    explained = Explained()
    unexplained = []
    unplugs = [f for f in faults if f["fault"] == "unplug" and f["lines_lost"]]
    for jump in jumps:
        missing = [c for c in range(jump.first, jump.last + 1) if c not in rejected]
        explained.rejected_lines += jump.last - jump.first + 1 - len(missing)
        if not missing:
            continue
        if jump.seq in restarts:
            explained.restart_gaps += 1
            explained.restart_lines += len(missing)
            explained.restart_max_lines = max(explained.restart_max_lines, len(missing))
            continue
        for unplug in unplugs:
            unread = unplug.get("unread_bytes") or 0
            slack = unread // 20 + 1 if unread else 0
            if unplug["first_lost"] - slack <= missing[0] and missing[-1] <= unplug["last_lost"]:
                explained.unplug_lines += len(missing)
                break
        else:
            unexplained.append(
                f"device lines {missing[0]}-{missing[-1]} ({len(missing)}) missing before seq "
                f"{jump.seq}: no injected fault explains them"
            )
    return explained, unexplained
