"""The data dir's small records under ``state/``, each with a type and one way to read and write.

* append-only ledgers (JSON lines): reader runs, losses (cleanup), rows not stored
  (reader), steps of the clock;
* replaced documents: the gateway's identity, each service's published status, the seq floor,
  the unfinished line a clean stop hands to the next start.

Readers are forgiving where a power cut can leave a torn last line (it is skipped) and strict
where a wrong value would renumber data (the seq floor).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Generic, TypeVar

from gateway.core.keys import BadName, check_gateway_id
from gateway.core.not_stored import Episode
from gateway.store.durable import append_whole, make_dirs, overwrite_in_place, write_atomic
from gateway.store.layout import DataDir

Entry = TypeVar("Entry")


@dataclass(frozen=True)
class Ledger(Generic[Entry]):
    """An append-only JSON-lines file of one entry type."""

    path: Path
    entry: type[Entry]
    durable: bool = False  # every append fsynced (and the file's name, when it is new)

    def append(self, entry: Entry, *, durable: bool | None = None) -> None:
        """Append one entry, whole or not at all (``OSError`` on a full or read-only disk)."""
        durable = self.durable if durable is None else durable
        make_dirs(self.path.parent)
        append_whole(self.path, (json.dumps(asdict(entry)) + "\n").encode(), durable=durable)

    def __iter__(self) -> Iterator[Entry]:
        known = {f.name for f in dataclasses.fields(self.entry)}
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                values = json.loads(line)
                yield self.entry(**{k: v for k, v in values.items() if k in known})
            except (ValueError, TypeError, AttributeError):
                continue  # a line torn by a power cut, or not ours


@dataclass(frozen=True)
class RunRecord:
    """A reader start: rows from ``first_seq`` on were numbered by this run."""

    at: float
    pid: int
    first_seq: int
    recovered_parts: int = 0
    port: str = ""
    # Was the wall clock synchronized at the start (None: unknown)? If not, this run's
    # received_at may be off until the clock steps (the clock-steps ledger says when and by how
    # much): a Pi has no RTC.
    clock_synced: bool | None = None


@dataclass(frozen=True)
class LossRecord:
    """Sealed rows deleted before they were uploaded (cleanup under ``drop-oldest``)."""

    at: float
    batch: str
    first_seq: int | None
    last_seq: int | None
    rows: int | None
    bytes: int
    reason: str


@dataclass(frozen=True)
class ClockStepRecord:
    """The wall clock jumped by ``step_seconds`` just before ``at`` (wall time after the step):
    ``received_at`` taken before it is off by that much, relative to later ones."""

    at: float
    step_seconds: float
    synced: bool | None  # the clock's state as last probed
    pid: int


@dataclass(frozen=True)
class NotStoredRecord:
    """An episode of rows the reader read but did not store (``gateway/core/not_stored.py``).

    ``counters`` are ``[first, last, next_seq]`` spans: device counters first..last were not
    stored, and the next row that was stored got ``next_seq``. ``ongoing``: the episode went on
    past ``end`` and continues in a later entry (each entry counts only its own rows).
    """

    cause: str
    start: float
    end: float
    rows: int
    counters: list
    bytes: int = 0
    error: str = ""
    spans_merged: int = 0
    ongoing: bool = False
    written_at: float = 0.0  # later than ``end`` when the disk would not take it sooner

    @classmethod
    def of(cls, episode: Episode, *, ongoing: bool, written_at: float) -> NotStoredRecord:
        return cls(
            str(episode.cause),
            round(episode.start, 3),
            round(episode.end, 3),
            episode.rows,
            [span.as_list() for span in episode.spans],
            episode.bytes,
            episode.error,
            episode.spans_merged,
            ongoing,
            round(written_at, 3),
        )

    def written(self, at: float) -> NotStoredRecord:
        return dataclasses.replace(self, written_at=round(at, 3))


def not_stored(data_dir: DataDir) -> Ledger[NotStoredRecord]:
    # Durable: the audit tells what the disk cost from what the wire lost by these entries.
    # One per episode (not per row), so an fsync each is cheap.
    return Ledger(data_dir.not_stored_file, NotStoredRecord, durable=True)


def not_stored_totals(data_dir: DataDir) -> dict:
    """Rows (and bytes) not stored here, ever, by cause: they survive restarts."""
    by_cause: dict[str, dict] = {}
    last = None
    for entry in not_stored(data_dir):
        totals = by_cause.setdefault(entry.cause, {"rows": 0, "bytes": 0, "entries": 0})
        totals["rows"] += entry.rows
        totals["bytes"] += entry.bytes
        totals["entries"] += 1
        last = entry
    return {
        "rows": sum(t["rows"] for t in by_cause.values()),
        "by_cause": dict(sorted(by_cause.items())),
        "last": asdict(last) if last else None,
    }


def runs(data_dir: DataDir) -> Ledger[RunRecord]:
    # Durable: the audit tells a restart's gap from the wire's by these records, and a power
    # cut soon after a start must not take the record of that start.
    return Ledger(data_dir.runs_file, RunRecord, durable=True)


def losses(data_dir: DataDir) -> Ledger[LossRecord]:
    return Ledger(data_dir.losses_file, LossRecord)


def clock_steps(data_dir: DataDir) -> Ledger[ClockStepRecord]:
    # Durable: NTP steps a Pi's clock soon after boot, when a power cut is likeliest.
    return Ledger(data_dir.clock_steps_file, ClockStepRecord, durable=True)


def loss_totals(data_dir: DataDir) -> dict:
    """What cleanup has ever dropped before upload here."""
    totals = {"batches": 0, "rows": 0, "bytes": 0, "last": None}
    for entry in losses(data_dir):
        totals["batches"] += 1
        totals["rows"] += entry.rows or 0
        totals["bytes"] += entry.bytes or 0
        totals["last"] = asdict(entry)
    return totals


# -- identity ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Who writes this data dir and how its rows are shaped."""

    gateway_id: str
    port: str = ""
    line_format: str = ""


def gateway_id_of(data_dir: DataDir, default: str) -> str:
    """The id the reader wrote for this data dir, else ``default`` (GATEWAY_ID)."""
    identity = read_identity(data_dir)
    if identity is None:
        return default
    try:
        return check_gateway_id(identity.gateway_id)
    except BadName:
        return default


def write_identity(data_dir: DataDir, identity: Identity) -> None:
    write_atomic(data_dir.identity_file, json.dumps(asdict(identity)).encode())


def read_identity(data_dir: DataDir) -> Identity | None:
    try:
        values = json.loads(data_dir.identity_file.read_text())
        return Identity(
            str(values["gateway_id"]),
            str(values.get("port", "")),
            str(values.get("line_format", "")),
        )
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


# -- published status --------------------------------------------------------------------------

# Status files are padded to a multiple of this, so the next one fits in their blocks.
STATUS_SLACK_BYTES = 8192


def publish_status(data_dir: DataDir, service: str, status: dict) -> None:
    """Replace the service's status file; best effort (counters must never stop a service).

    On a full disk the counters that say so must still be readable: the file is padded with
    slack and, when a new file cannot be written, rewritten inside its own blocks.
    """
    path = data_dir.status_file(service)
    data = json.dumps(status, indent=1).encode()
    data += b" " * (-len(data) % STATUS_SLACK_BYTES)
    try:
        write_atomic(path, data, durable=False)
    except OSError:
        try:
            overwrite_in_place(path, data)
        except OSError:
            pass


def read_status(data_dir: DataDir, service: str) -> dict | None:
    try:
        return json.loads(data_dir.status_file(service).read_text())
    except (FileNotFoundError, ValueError):
        return None


# -- the seq floor -----------------------------------------------------------------------------


def read_seq_floor(data_dir: DataDir) -> int:
    """The next ``seq`` as of the last seal (0 in a new data dir). It survives cleanup of old
    batches, so ``seq`` is never reused; an unreadable file stops the reader."""
    try:
        return int(json.loads(data_dir.seq_file.read_text())["next_seq"])
    except FileNotFoundError:
        return 0
    except (ValueError, KeyError, TypeError) as error:
        raise RuntimeError(
            f"{data_dir.seq_file} is unreadable ({error}); fix or remove it"
        ) from None


def write_seq_floor(data_dir: DataDir, next_seq: int) -> None:
    write_atomic(data_dir.seq_file, json.dumps({"next_seq": next_seq}).encode())


# -- the unfinished line of a clean stop -------------------------------------------------------


def save_fragment(data_dir: DataDir, port: str, fragment: bytes) -> None:
    """Keep the line a clean stop left unfinished, for the next start on the same port."""
    record = {"port": port, "fragment_b64": base64.b64encode(fragment).decode()}
    write_atomic(data_dir.fragment_file, json.dumps(record).encode())


def take_fragment(data_dir: DataDir, port: str) -> bytes:
    """The saved unfinished line if it was read from ``port`` (b"" otherwise); the file is
    removed either way. Raises ``ValueError`` when the file is unreadable (it is removed)."""
    path = data_dir.fragment_file
    try:
        text = path.read_text()
    except FileNotFoundError:
        return b""
    path.unlink(missing_ok=True)
    saved = json.loads(text)
    if not isinstance(saved, dict) or saved.get("port") != port:
        return b""
    return base64.b64decode(saved.get("fragment_b64", ""))
