"""The power-cut campaign: real cuts of a real chain, checked against S3 and the ledgers.

    firmware-sim (csv-seq, 8 channels x 1 kHz) --PTY--> gateway reader (local mode)
      --> data dir on the LazyFS mount --> gateway uploader --foreground --> moto S3 (not on
      the mount)

Each cut, at a random moment (a quarter of them during start-up and recovery): every process
of the reader and the uploader is SIGKILLed at once (their process groups: the relay and any
worker die too), the visible state is read through the mount, the file system is cut (``drop``
or, for ``torn_share`` of the cuts, ``torn``), unmounted, and what survived is read from the
backing folder. Then the machine "boots": the same backing folder is mounted again, the
kernel's tty buffer is emptied (it did not survive the power either), and the services start
under a new boot id (a private mount namespace binds a new ``/proc/sys/kernel/random/boot_id``,
so the uploader drops its unsynced work files as after a real reboot).

After every recovery it checks (a) every sealed batch intact (``check_batch``, name and rows),
(b) every ``.part`` of the cut recovered to the complete rows that survived, a prefix of what
was written, (c) seq gap-free and never reused across the data dir and every object in the
bucket (read back once each), (d) every batch marked touched is in S3 with the same bytes,
(e) the losses within the bound of :mod:`tests.powercut.accounting`, and it attributes the
device counter's gap across the cut: rows lost from the page cache, rejected lines, and lines
never appended. After the last cut: a clean stop, the backlog drained, ``gateway audit --json``
must pass with every device gap attributed to a restart or a rejected line, and the bucket is
read back from seq 0.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gateway.core.batchfile import check_batch, device_field
from gateway.core.keys import (
    BadName,
    gateway_prefix,
    object_key,
    parse_object_key,
    parse_part_name,
    parse_relative_path,
)
from gateway.core.records import counter_field
from gateway.supervise import Service, Supervisor
from tests.powercut.accounting import (
    Bound,
    Held,
    Rows,
    SeqBook,
    complete_prefix,
    is_row_prefix,
    jsonl_lines,
    line_times,
    lost_rows,
    pending_by_layer,
    rejected_line_counters,
    sha256,
    split_rows,
    spread,
    unexplained_wire_gaps,
)
from tests.powercut.mount import REPO, LazyMount
from tests.soak.follow import S3Follower, explain_jumps, rejected_counters, restart_seqs
from tests.support.chain import Gateway, RelayedS3, base_gateway_env, campaign_chain
from tests.support.s3 import all_versions, is_batch_key

ARTIFACTS = REPO / "artifacts"
GATEWAY_ID = "powercut-gw"
SHIM = Path(__file__).parent / "shim"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
LINE_FORMAT = "csv-seq"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class PowercutOptions:
    cuts: int = 50
    seed: int = 1
    rate: int = 1000
    channels: int = 8
    fsync_seconds: float = 1.0
    batch_seconds: float = 5.0
    slack_seconds: float = 0.5
    early_share: float = 0.25  # cuts during start-up and recovery
    torn_share: float = 0.3  # cuts that keep some write-back (``cut torn``)
    steady_seconds: tuple[float, float] = (0.5, 6.0)  # running time before a steady cut
    out: Path | None = None


# -- the machine --------------------------------------------------------------------------------


def boot_namespace_works(boot_file: Path) -> bool:
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
         f'mount --bind "$0" {BOOT_ID} && cat {BOOT_ID}', str(boot_file)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode == 0 and done.stdout.strip() == boot_file.read_text().strip()


class PoweredService(Service):
    """A service in its own process group (and, when it can, its own boot id): a power cut
    SIGKILLs the whole group, the reader's relay and the uploader's workers with it."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: Path, machine) -> None:
        super().__init__(name, argv, log_path, env=env)
        self.machine = machine
        self.kills = 0

    def start(self) -> PoweredService:
        """Start under the machine's boot id: in a private mount namespace where
        /proc/sys/kernel/random/boot_id is the current boot's (a cut is a reboot)."""
        argv = self.argv
        if self.machine.boot_file is not None:
            self.argv = [
                "unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                f'mount --bind "$0" {BOOT_ID} && exec "$@"', str(self.machine.boot_file), *argv,
            ]  # fmt: skip
        try:
            return super().start()
        finally:
            self.argv = argv

    def power_off(self) -> None:
        """The power is gone: the whole group at once, nothing gets a moment."""
        self._exit_expected = True
        if self.process is None:
            return
        if self.process.poll() is None:
            self.kills += 1
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self._group = None

    def kill(self) -> None:
        self.power_off()


class Machine:
    """The Pi: a LazyFS mount for the data dir, a boot id, the reader and the uploader."""

    def __init__(self, work: Path, logs: Path, link: Path, s3: RelayedS3, options) -> None:
        self.work = work
        self.link = link
        self.backing = work / "backing"
        self.fs = LazyMount(self.backing, work / "mnt", work / "lazyfs.sock", logs / "lazyfs.log")
        self.data_dir = self.fs.mountpoint / "data"
        self.boots = 0
        self.boot_file: Path | None = work / "boot-0"
        self.boot_file.write_text(str(uuid.uuid4()) + "\n")
        if not boot_namespace_works(self.boot_file):
            say("no private mount namespace here: the boot id does not change at a cut")
            self.boot_file = None
        env = {
            **base_gateway_env(self.data_dir, GATEWAY_ID),
            **s3.gateway_env(),
            "GATEWAY_LINE_FORMAT": LINE_FORMAT,
            "GATEWAY_BATCH_SECONDS": str(options.batch_seconds),
            "GATEWAY_FSYNC_SECONDS": str(options.fsync_seconds),
            "GATEWAY_CLEANUP_SECONDS": "5",
            "GATEWAY_RETAIN_UPLOADED_SECONDS": "60",
            "PYTHONPATH": os.pathsep.join(
                [str(SHIM), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
            ),
            "FIELDGATE_LAZYFS_CONTROL": str(self.fs.control_path),
        }
        self.gateway = Gateway(
            Supervisor(logs), env, str(link), mode="local", audit_env=s3.gateway_env(direct=True)
        )
        self.gateway.reader = PoweredService(
            "reader", self.gateway.reader.argv, env, logs / "reader.log", self
        )
        self.gateway.uploader = PoweredService(
            "uploader", self.gateway.uploader.argv, env, logs / "uploader.log", self
        )
        self.services = [self.gateway.reader, self.gateway.uploader]

    def power_on(self) -> int:
        """Mount, empty the tty's input (the kernel's buffer died with the power), start the
        services; returns the bytes the tty held."""
        if not self.fs.mounted:
            self.fs.start()
        if self.boot_file is not None and self.boots:
            self.boot_file = self.work / f"boot-{self.boots}"
            self.boot_file.write_text(str(uuid.uuid4()) + "\n")
        self.boots += 1
        flushed = flush_tty(self.link) if self.boots > 1 else 0
        for service in self.services:
            service.start()
        return flushed

    def power_off(self) -> float:
        """SIGKILL everything at once; the time of the cut."""
        at = time.time()
        for service in self.services:
            with contextlib.suppress(ProcessLookupError):
                if service.process is not None:
                    os.killpg(service.process.pid, signal.SIGKILL)
        for service in self.services:
            service.power_off()
        return at

    def stop(self) -> None:
        for service in self.services:
            service.stop()
        self.fs.stop()


def flush_tty(link: Path) -> int:
    """Discard what the gateway's end of the serial link holds; the bytes discarded."""
    fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        waiting = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        termios.tcflush(fd, termios.TCIFLUSH)
        return waiting
    finally:
        os.close(fd)


# -- looking at the data dir --------------------------------------------------------------------


@dataclass
class DataState:
    """The parts of a data dir a cut can change, read through the mount or from BACKING."""

    parts: dict[int, bytes] = field(default_factory=dict)  # first seq -> bytes of <first>.part
    sealed: dict[int, tuple[str, bytes]] = field(default_factory=dict)  # newest few, by first
    quarantine: dict[str, bytes] = field(default_factory=dict)
    marks: set[str] = field(default_factory=set)
    runs_lines: int = 0


def read_state(root: Path, newest_sealed: int = 4) -> DataState:
    state = DataState()
    batches = root / "batches"
    sealed = []
    for path in batches.rglob("*") if batches.is_dir() else []:
        name = path.name
        relative = path.relative_to(batches).as_posix()
        if name.endswith(".part"):
            with contextlib.suppress(BadName, FileNotFoundError):
                first = parse_part_name(name)
                state.parts[first] = path.read_bytes()
        elif name.endswith(".csv.touched"):
            state.marks.add(relative.removesuffix(".touched"))
        elif name.endswith(".csv"):
            with contextlib.suppress(BadName):
                sealed.append((parse_relative_path(relative).first_seq, relative, path))
    for first, relative, path in sorted(sealed)[-newest_sealed:]:
        with contextlib.suppress(FileNotFoundError):
            state.sealed[first] = (relative, path.read_bytes())
    quarantine = root / "quarantine"
    for path in sorted(quarantine.glob("*.jsonl")) if quarantine.is_dir() else []:
        state.quarantine[path.name] = path.read_bytes()
    runs = root / "state" / "reader.runs.jsonl"
    with contextlib.suppress(FileNotFoundError):
        state.runs_lines = len(jsonl_lines(runs.read_bytes()))
    return state


# -- one cut ------------------------------------------------------------------------------------


@dataclass
class Cut:
    index: int
    t: float  # seconds into the campaign
    at: float  # wall time of the SIGKILL
    mode: str
    early: bool
    pending: dict = field(default_factory=dict)  # by layer: files, bytes, dir_ops
    open_batch: dict = field(default_factory=dict)
    quarantine: dict = field(default_factory=dict)
    runs_ledger_lines_lost: int = 0
    marks_lost: int = 0
    uploader_work: dict = field(default_factory=dict)
    other_dir_ops: dict = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    tty_bytes_flushed: int = 0
    powered_on_at: float = 0.0
    audit_lines_of_lost_quarantine: int = 0  # audit's "wire" gaps that are lost rejections
    recovery_seconds: dict = field(default_factory=dict)
    device_gap: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        ob = self.open_batch
        rows = ob.get("rows_lost", 0)
        span = f" seq {ob['first_seq']}-{ob['last_seq']}" if rows else ""
        age = f", oldest {ob['oldest_age']:.2f} s" if rows else ""
        q = self.quarantine
        gap = self.device_gap
        return (
            f"| {self.index} | {self.t:.1f} | {'start-up' if self.early else 'steady'}, "
            f"{self.mode} | {_pending_text(self.pending)} | {rows}{span}{age} "
            f"(unsynced {ob.get('unsynced_seconds', 0):.2f} s) | {q.get('lines_lost', 0)} "
            f"| {_gap_text(gap)} "
            f"| {self.uploader_work.get('files', 0)} files, {self.uploader_work.get('dir_ops', 0)} "
            f"entries | {self.marks_lost} | {self.runs_ledger_lines_lost} "
            f"| {_seconds_text(self.recovery_seconds)} | {'; '.join(self.problems) or 'ok'} |"
        )


def _pending_text(pending: dict) -> str:
    parts = []
    for layer, facts in sorted(pending.items()):
        parts.append(f"{layer} {facts['files']}f/{facts['bytes']}B/{facts['dir_ops']}e")
    return ", ".join(parts) or "nothing"


def _gap_text(gap: dict) -> str:
    if "lines" not in gap:
        return gap.get("note") or gap.get("problem") or "-"
    text = f"{gap['never_appended']} (~{gap['in_tty_buffer_about']} in the tty) of {gap['lines']}"
    return text + (f" over {gap['cuts']} cuts" if gap["cuts"] > 1 else "")


def _seconds_text(seconds: dict) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()) or "-"


@dataclass
class CampaignResult:
    out: Path
    failures: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    cuts: list[Cut] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def fail(self, message: str) -> None:
        say(f"FAILURE: {message.splitlines()[0]}")
        self.failures.append(message)


class Campaign:
    def __init__(self, options: PowercutOptions) -> None:
        self.options = options
        self.rng = random.Random(f"powercut {options.seed}")
        self.bound = Bound(options.fsync_seconds, options.slack_seconds)
        self.counter_index = counter_field(LINE_FORMAT)
        self.book = SeqBook()
        self.objects: dict[str, tuple[int, int, str]] = {}  # key -> first, last, sha256
        self.awaiting: dict[int, tuple[int, bytes, bytes]] = {}  # first -> cut, visible, kept
        self.lost_counters: dict[int, set[int]] = {}  # by cut: device counters of rows lost
        self.parts_verified = 0
        # Device counters of rejected lines whose quarantine record a cut took (unsynced): the
        # audit cannot know them and calls their gap "lost on the wire".
        self.quarantine_lost: set[int] = set()

    # -- S3 ---------------------------------------------------------------------------------

    def read_bucket(self, s3: RelayedS3) -> dict[str, tuple[int, int, str]]:
        """Every batch object under the gateway's prefix, each read once."""
        import gzip

        prefix = gateway_prefix(s3.prefix, GATEWAY_ID)
        paginator = s3.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=s3.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key in self.objects:
                    continue
                try:
                    parsed = parse_object_key(key)
                except BadName:
                    continue
                body = s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
                data = gzip.decompress(body) if parsed.gzip else body
                batch = parsed.batch
                self.objects[key] = (batch.first_seq, batch.last_seq, sha256(data))
        return self.objects

    # -- the checks after a recovery --------------------------------------------------------

    def check_data_dir(self, machine: Machine, s3: RelayedS3) -> list[str]:
        """(a) sealed batches intact, (b) awaited parts recovered, (c) seq, (d) marks."""
        problems = []
        root = machine.data_dir
        batches = root / "batches"
        local: dict[int, tuple[str, bytes, bool]] = {}
        for path in batches.rglob("*.csv"):
            relative = path.relative_to(batches).as_posix()
            try:
                name = parse_relative_path(relative)
                data = path.read_bytes()
            except (BadName, FileNotFoundError):
                continue  # cleanup deleted it meanwhile (it is in S3: checked below)
            touched = path.with_name(path.name + ".touched").exists()
            check = check_batch(data, name.first_seq)
            if (
                check.problem
                or check.good_bytes != len(data)
                or (check.first_seq, check.last_seq) != (name.first_seq, name.last_seq)
            ):
                problems.append(
                    f"(a) sealed batch {relative} is not intact: {check.problem or ''} "
                    f"rows {check.first_seq}-{check.last_seq}, {check.good_bytes} of "
                    f"{len(data)} bytes good"
                )
            local[name.first_seq] = (relative, data, touched)
            problem = self.book.see(Held(name.first_seq, name.last_seq, sha256(data), relative))
            if problem:
                problems.append(f"(c) {problem}")
        for first, (cut, visible, kept) in list(self.awaiting.items()):
            if first in local:
                relative, data, _ = local[first]
                expected = complete_prefix(kept)
                if not is_row_prefix(data, visible) or data != expected:
                    problems.append(
                        f"(b) {relative} (cut {cut}) holds {len(data)} bytes: not the "
                        f"{len(expected)} bytes of complete rows that survived, or not a "
                        f"prefix of the {len(visible)} bytes written"
                    )
                self.parts_verified += 1
                del self.awaiting[first]
            elif not split_rows(complete_prefix(kept))[1]:
                del self.awaiting[first]  # nothing survived: recovery removes the .part
        objects = self.read_bucket(s3)
        by_first = {}
        for key, (first, last, digest) in objects.items():
            by_first[first] = (key, last, digest)
            problem = self.book.see(Held(first, last, digest, key))
            if problem:
                problems.append(f"(c) {problem}")
        for relative, data, touched in local.values():
            if not touched:
                continue
            name = parse_relative_path(relative)
            keys = {object_key(s3.prefix, GATEWAY_ID, name, gzip=z) for z in (True, False)}
            found = [objects[key] for key in keys if key in objects]
            if not found:
                problems.append(f"(d) {relative} is marked touched but not in S3")
            elif found[0][2] != sha256(data):
                problems.append(f"(d) {relative} is marked touched but S3 holds other bytes")
        problems += [f"(c) {p}" for p in self.book.problems()]
        return problems

    # -- one cut ----------------------------------------------------------------------------

    def cut(self, index: int, t: float, machine: Machine, early: bool) -> Cut:
        mode = "torn" if self.rng.random() < self.options.torn_share else "drop"
        at = machine.power_off()
        record = Cut(index, round(t, 2), at, mode, early)
        visible = read_state(machine.data_dir)
        lost = machine.fs.cut(mode, self.rng.randrange(1 << 30))
        code = machine.fs.unmount()
        if code != 0:
            record.problems.append(f"lazyfs exited {code}: {machine.fs.log_tail()}")
        record.anomalies = lost["anomalies"]
        record.pending = pending_by_layer(lost, "data")
        survived = read_state(machine.backing / "data")
        self.account(record, lost, visible, survived)
        return record

    def account(self, record: Cut, lost: dict, visible: DataState, survived: DataState) -> None:
        bound = self.bound
        # The open batch: rows after its last fsync.
        rows_lost, unsynced = [], 0.0
        for first, data in visible.parts.items():
            kept = survived.parts.get(first)
            if kept is None:
                sealed = survived.sealed.get(first)
                kept = sealed[1] if sealed else b""
            if not data.startswith(kept):
                record.problems.append(
                    f"(b) {first}.part: what survived is not a prefix of what was written"
                )
            rows_lost += lost_rows(data, kept)
            self.awaiting[first] = (record.index, data, kept)
        for first, (relative, data) in visible.sealed.items():
            kept = survived.sealed.get(first)
            if kept is not None and kept[1] != data:
                record.problems.append(f"(a) sealed {relative} changed at the cut")
            if kept is None:
                part = survived.parts.get(first)
                if part is None or part != data:
                    record.problems.append(f"(a) sealed {relative} lost at the cut")
                else:  # its rename was not durable yet: a .part again, all of it fsynced
                    self.awaiting[first] = (record.index, data, part)
        for file in lost["files"]:
            if file["path"].endswith(".part") and file["path"].startswith("data/batches/"):
                unsynced = max(unsynced, record.at - file["pending_since"])
        facts = Rows.of(rows_lost, self.counter_index)
        oldest_age = round(record.at - facts.earliest, 3) if facts.count else 0.0
        record.open_batch = {
            "rows_lost": facts.count,
            "first_seq": facts.first_seq,
            "last_seq": facts.last_seq,
            "oldest_age": oldest_age,
            "unsynced_seconds": round(unsynced, 3),
            "counters": [min(facts.counters), max(facts.counters)] if facts.counters else None,
            "why": "appended after the open batch's last fsync",
        }
        if unsynced > bound.seconds:
            record.problems.append(
                f"(e) the open batch had writes unsynced for {unsynced:.2f} s at the cut "
                f"(bound: {bound.explain()})"
            )
        if oldest_age > bound.seconds:
            record.problems.append(
                f"(e) lost rows received {oldest_age:.2f} s before the cut (bound: "
                f"{bound.explain()})"
            )
        self.lost_counters[record.index] = set(facts.counters)
        # The quarantine: lines after its last fsync.
        lines_lost, ages = 0, []
        for name, data in visible.quarantine.items():
            seen = jsonl_lines(data)
            kept = jsonl_lines(survived.quarantine.get(name, b""))
            if seen[: len(kept)] != kept:
                record.problems.append(f"(b) quarantine/{name}: what survived is not a prefix")
            gone = seen[len(kept) :]
            lines_lost += len(gone)
            self.quarantine_lost |= rejected_line_counters(gone, LINE_FORMAT)
            ages += [record.at - at for at in line_times(gone)]
        record.quarantine = {
            "lines_lost": lines_lost,
            "oldest_age": round(max(ages), 3) if ages else 0.0,
            "why": "written after the quarantine's last fsync",
        }
        if ages and max(ages) > bound.seconds:
            record.problems.append(
                f"(e) quarantine lines written {max(ages):.2f} s before the cut were lost "
                f"({lines_lost} lines; bound: {bound.explain()}): their file or its name was "
                "never made durable"
            )
        record.runs_ledger_lines_lost = max(0, visible.runs_lines - survived.runs_lines)
        record.marks_lost = len(visible.marks - survived.marks)
        work = record.pending.get("uploader work", {})
        record.uploader_work = {
            "files": work.get("files", 0),
            "bytes": work.get("bytes", 0),
            "dir_ops": work.get("dir_ops", 0),
            "why": "written without fsync by design; dropped after a reboot",
        }
        for layer, facts in record.pending.items():
            if layer in ("sealed batch",) and (facts["files"] or facts["bytes"]):
                record.problems.append(f"(a) a sealed batch had unsynced data at the cut: {facts}")

    def attribute_gaps(self, machine: Machine, cuts: list[Cut], quarantine: set[int]) -> None:
        """For each cut since the last check: the device counter's jump where the reader's
        next run began, split into rows the page cache lost (at this cut, or at earlier ones
        whose runs lost every row), rejected lines, and lines never appended (the kernel's tty
        buffer emptied at power-on, and what the relay and reader held at the kill)."""
        runs = list(_runs(machine.data_dir))
        lost: set[int] = set()
        tty_bytes = merged = 0
        for position, cut in enumerate(cuts):
            lost |= self.lost_counters.pop(cut.index, set())
            tty_bytes += cut.tty_bytes_flushed
            merged += 1
            end = cuts[position + 1].at if position + 1 < len(cuts) else float("inf")
            mine = [run for run in runs if cut.powered_on_at <= run["at"] < end]
            if not mine:
                cut.device_gap = {"note": "cut again before the reader recorded its start"}
                continue
            first_seq = mine[-1]["first_seq"]
            if any(run["first_seq"] == first_seq and run["at"] >= end for run in runs):
                cut.device_gap = {"note": f"the next cut lost every row from seq {first_seq}"}
                continue
            if first_seq == 0:
                cut.device_gap = {"note": "nothing was stored before this run"}
                continue
            deadline = time.monotonic() + (10 if end == float("inf") else 0)
            row, previous = _row_and_previous(machine.data_dir, first_seq)
            while row is None and time.monotonic() < deadline:
                time.sleep(0.1)
                row, previous = _row_and_previous(machine.data_dir, first_seq)
            if row is None or previous is None or self.counter_index is None:
                cut.device_gap = {"problem": f"no rows at seq {first_seq - 1} and {first_seq}"}
                continue
            after = int(device_field(previous, self.counter_index))
            following = int(device_field(row, self.counter_index))
            missing = set(range(after + 1, following))
            page_cache = len(lost & missing)
            rejected = len(quarantine & missing)
            line_bytes = len(row.split(b",", 2)[2]) + 1
            cut.device_gap = {
                "after_counter": after,
                "next_counter": following,
                "lines": len(missing),
                "page_cache_rows": page_cache,
                "rejected": rejected,
                "never_appended": len(missing) - page_cache - rejected,
                "in_tty_buffer_about": round(tty_bytes / line_bytes),
                "first_seq_of_run": first_seq,
                "cuts": merged,  # more than one: earlier runs lost every row they stored
            }
            lost, tty_bytes, merged = set(), 0, 0


def _runs(data_dir: Path):
    path = data_dir / "state" / "reader.runs.jsonl"
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                yield json.loads(line)


def _row_and_previous(data_dir: Path, seq: int) -> tuple[bytes | None, bytes | None]:
    """The stored row ``seq`` and the one before it (None where not (yet) stored)."""
    found = {}
    batches = data_dir / "batches"
    for path in batches.rglob("*"):
        name = path.name
        try:
            if name.endswith(".part"):
                first, last = parse_part_name(name), None
            elif name.endswith(".csv"):
                parsed = parse_relative_path(path.relative_to(batches).as_posix())
                first, last = parsed.first_seq, parsed.last_seq
            else:
                continue
        except BadName:
            continue
        if first > seq or (last is not None and last < seq - 1):
            continue
        with contextlib.suppress(FileNotFoundError):
            _, rows, _ = split_rows(path.read_bytes())
            for row in rows:
                number = int(row[: row.index(b",")])
                if number in (seq - 1, seq):
                    found[number] = row.rstrip(b"\n")
    return found.get(seq), found.get(seq - 1)


# -- the run ------------------------------------------------------------------------------------


def run_powercut(options: PowercutOptions) -> CampaignResult:
    out = options.out or ARTIFACTS / "powercut" / time.strftime("%Y%m%d-%H%M%S")
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    result = CampaignResult(out)
    campaign = Campaign(options)
    rng = campaign.rng
    work = Path(tempfile.mkdtemp(prefix="fieldgate-powercut-"))
    stack = contextlib.ExitStack()
    started = time.monotonic()
    audits = []
    say(f"powercut: {options.cuts} cuts, data dir on LazyFS -> {out}")
    try:
        servers = Supervisor(logs)
        stack.callback(servers.stop_all)
        s3, sim, link, _ = campaign_chain(
            servers,
            work,
            "powercut",
            rate=options.rate,
            channels=options.channels,
            seed=options.seed,
            drain_timeout=600,
        )
        stack.callback(s3.close)
        machine = Machine(work, logs, link, s3, options)
        stack.callback(machine.stop)
        result.figures["boot_id_changes"] = machine.boot_file is not None
        machine.power_on()
        gateway = machine.gateway
        result.figures["first_start_seconds"] = gateway.wait_all_recovered(machine.services)
        next_early = False
        unchecked: list[Cut] = []  # cuts since the last full recovery
        for index in range(1, options.cuts + 1):
            if next_early:
                time.sleep(rng.uniform(0.05, 1.5))
            else:
                time.sleep(rng.uniform(*options.steady_seconds))
            for service in machine.services:
                if (problem := service.unexpected_exit()) is not None:
                    raise AssertionError(problem)
            cut = campaign.cut(index, time.monotonic() - started, machine, next_early)
            result.cuts.append(cut)
            unchecked.append(cut)
            cut.powered_on_at = time.time()
            cut.tty_bytes_flushed = machine.power_on()
            last = index == options.cuts
            next_early = not last and rng.random() < options.early_share
            if next_early:
                continue
            cut.recovery_seconds = gateway.wait_all_recovered(machine.services)
            for service in machine.services:
                if (problem := service.unexpected_exit()) is not None:
                    raise AssertionError(problem)
            cut.problems += campaign.check_data_dir(machine, s3)
            campaign.attribute_gaps(machine, unchecked, rejected_counters(machine.data_dir))
            unchecked = []
            code, report = gateway.audit()
            wire, covered = unexplained_wire_gaps(report, campaign.quarantine_lost)
            cut.audit_lines_of_lost_quarantine = covered
            audits.append({"cut": index, "passed": code == 0, "wire_gaps": wire})
            if code != 0:
                cut.problems.append(f"gateway audit failed: {report['failures']}")
            if wire:
                cut.problems.append(
                    f"gateway audit attributes {sum(g['count'] for g in wire)} device lines "
                    f"to the wire, not to a restart: {wire[:3]}"
                )
            for problem in cut.problems:
                result.fail(f"cut {index}: {problem}")
            say(f"cut {index}/{options.cuts}: {cut.line()}")
            if cut.problems:
                (out / f"audit-cut-{index}.json").write_text(json.dumps(report, indent=1))
        # The end: a clean stop, the backlog drained, the final audit, the bucket read back.
        final_problems = []
        if gateway.reader.stop(60) != 0:
            final_problems.append(f"reader did not exit 0 on SIGTERM:\n{gateway.reader.log_tail()}")
        deadline = time.monotonic() + 180
        while gateway.inventory()["pending_batches"] and time.monotonic() < deadline:
            time.sleep(1)
        if gateway.uploader.stop(60) != 0:
            final_problems.append(
                f"uploader did not exit 0 on SIGTERM:\n{gateway.uploader.log_tail()}"
            )
        final_problems += campaign.check_data_dir(machine, s3)
        code, report = gateway.audit()
        (out / "audit-final.json").write_text(json.dumps(report, indent=1) + "\n")
        if code != 0 or report["pending_upload"]:
            final_problems.append(
                f"final audit: {report['failures']}, pending {report['pending_upload']}"
            )
        wire, covered = unexplained_wire_gaps(report, campaign.quarantine_lost)
        result.figures["audit_wire_lines_of_lost_quarantine"] = covered
        if wire:
            final_problems.append(
                f"final audit attributes {sum(g['count'] for g in wire)} device lines to the "
                f"wire instead of a restart: {wire[:5]}"
            )
        if report["rows_in_s3"] != report["seq_last"] + 1:
            final_problems.append(
                f"S3 holds {report['rows_in_s3']} rows of {report['seq_last'] + 1}"
            )
        versions = all_versions(s3.client, s3.bucket)
        rewritten = {key: n for key, n in versions.items() if n != 1}
        if rewritten:
            final_problems.append(
                f"objects written more than once: {sorted(rewritten.items())[:10]}"
            )
        follower = S3Follower(s3.client, s3.bucket, gateway_prefix(s3.prefix, GATEWAY_ID))
        follower.poll()
        if follower.next_seq != report["seq_last"] + 1:
            final_problems.append(
                f"reading the bucket back stopped at seq {follower.next_seq} "
                f"of {report['seq_last']}"
            )
        final_problems += [f"bucket: {p}" for p in follower.problems]
        explained, unexplained = explain_jumps(
            follower.jumps,
            rejected_counters(machine.data_dir) | campaign.quarantine_lost,
            restart_seqs(machine.data_dir),
            [],
        )
        final_problems += unexplained
        for problem in final_problems:
            result.fail(f"at the end: {problem}")
        result.figures.update(
            final_audit={
                "passed": report["passed"],
                "seq_last": report["seq_last"],
                "rows_in_s3": report["rows_in_s3"],
                "gaps_by_cause": dict(
                    Counter(
                        f"{g['level']}: {g['cause']}"
                        for g in report["gaps"]
                        for _ in range(g["count"])
                    )
                ),
            },
            objects=sum(is_batch_key(key) for key in versions),
            read_back={"objects": follower.objects, "rows": follower.rows},
            device_gaps_explained=asdict(explained),
            audits_passed=sum(1 for a in audits if a["passed"] and not a["wire_gaps"]),
            parts_verified=campaign.parts_verified,
            parts_unverified=len(campaign.awaiting),
            audits=len(audits),
        )
        return result
    except Exception as error:
        result.fail(f"the campaign itself failed: {type(error).__name__}: {error}")
        raise
    finally:
        stack.close()
        result.figures.update(summarize(result.cuts, options, time.monotonic() - started))
        write_report(result, options, campaign.bound)
        if result.passed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say(f"the failed run's files are kept in {work}")
        say(f"powercut {'passed' if result.passed else 'FAILED'}; report in {out}/report.md")


def summarize(cuts: list[Cut], options: PowercutOptions, seconds: float) -> dict:
    def values(getter) -> list[float]:
        return [getter(cut) for cut in cuts]

    recoveries: dict[str, list[float]] = {}
    for cut in cuts:
        for name, value in cut.recovery_seconds.items():
            recoveries.setdefault(name, []).append(value)
    gaps = [cut.device_gap for cut in cuts if "lines" in cut.device_gap]
    return {
        "options": {k: v for k, v in asdict(options).items() if k != "out"},
        "seconds": round(seconds, 1),
        "cuts": len(cuts),
        "cuts_by_kind": dict(
            Counter(f"{'start-up' if c.early else 'steady'}, {c.mode}" for c in cuts)
        ),
        "cuts_with_problems": sum(1 for cut in cuts if cut.problems),
        "open_batch_rows_lost": spread(values(lambda c: c.open_batch.get("rows_lost", 0))),
        "open_batch_rows_lost_total": sum(values(lambda c: c.open_batch.get("rows_lost", 0))),
        "oldest_lost_row_age_seconds": spread(
            [c.open_batch["oldest_age"] for c in cuts if c.open_batch.get("rows_lost")]
        ),
        "open_batch_unsynced_seconds": spread(
            values(lambda c: c.open_batch.get("unsynced_seconds", 0))
        ),
        "quarantine_lines_lost_total": sum(values(lambda c: c.quarantine.get("lines_lost", 0))),
        "device_lines_never_appended": spread([g["never_appended"] for g in gaps]),
        "device_gap_lines": spread([g["lines"] for g in gaps]),
        "tty_bytes_flushed": spread(values(lambda c: c.tty_bytes_flushed)),
        "uploader_work_files_lost_total": sum(values(lambda c: c.uploader_work.get("files", 0))),
        "marks_lost_total": sum(values(lambda c: c.marks_lost)),
        "runs_ledger_lines_lost_total": sum(values(lambda c: c.runs_ledger_lines_lost)),
        "recovery_seconds": {name: spread(v) for name, v in recoveries.items()},
        "layer_anomalies": sum(len(c.anomalies) for c in cuts),
    }


def write_report(result: CampaignResult, options: PowercutOptions, bound: Bound) -> None:
    out = result.out
    out.mkdir(parents=True, exist_ok=True)
    summary = {"passed": result.passed, "failures": result.failures, **result.figures}
    summary["bound"] = bound.explain()
    (out / "report.json").write_text(
        json.dumps(
            {**summary, "cut_records": [asdict(c) for c in result.cuts]}, indent=1, default=str
        )
        + "\n"
    )
    with open(out / "cuts.jsonl", "w") as file:
        for cut in result.cuts:
            file.write(json.dumps(asdict(cut), default=str) + "\n")
    figures = result.figures
    lines = [
        f"# Power-cut campaign: {'PASSED' if result.passed else 'FAILED'}",
        "",
        f"{figures.get('cuts', 0)} cuts in {figures.get('seconds', 0)} s "
        f"({figures.get('cuts_by_kind')}); seed {options.seed}; "
        f"{options.rate} lines/s x {options.channels} channels; "
        f"GATEWAY_FSYNC_SECONDS {options.fsync_seconds:g}, "
        f"GATEWAY_BATCH_SECONDS {options.batch_seconds:g}.",
        "",
        f"Bound on what a cut may lose: {bound.explain()}.",
        "",
        "## Figures",
        "",
        "```json",
        json.dumps({k: v for k, v in figures.items() if k != "options"}, indent=1, default=str),
        "```",
        "",
        "## Failures" if result.failures else "## No failure",
        "",
        *[f"- {failure}" for failure in result.failures],
        "",
        "## Each cut",
        "",
        "What was pending when the power went (per layer: files with unsynced data / their "
        "unsynced bytes / un-synced entry changes), and what each layer lost and why: the open "
        "batch lost the rows appended after its last fsync (seq range, the oldest one's age at "
        "the cut, how long its oldest unsynced write had waited); the quarantine the lines "
        "written after its last fsync; device lines never appended were read by the reader's "
        "relay or waited in the kernel's tty buffer (emptied at power-on); uploader work files "
        "and entries are unsynced by design and dropped after a reboot; marks and run records "
        "lost had not been fsynced yet.",
        "",
        "| cut | t (s) | kind | pending at the cut | open batch rows lost | quarantine lines "
        "lost | device lines never appended, of the counter's gap "
        "| uploader work lost | marks lost | run records "
        "lost | recovery (s) | checks |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[cut.line() for cut in result.cuts],
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
