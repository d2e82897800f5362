"""Soak and crash campaigns over the real chain: one implementation for ``make soak``,
``make crash``, the CI tests in this folder and the long runs recorded in docs/soak.md.

**Soak** (:func:`run_soak`): firmware-sim at 8 channels x 1 kHz with garbage, bad lines and
unplugs -> reader (full mode, data dir on a small tmpfs) -> uploader -> moto S3 behind a relay;
reader -> site -> a watcher socket. Every ``fault_period`` seconds one injected event, in
shuffled rounds: SIGKILL of the reader, the uploader or the site (restarted after a moment),
an S3 outage (the relay cut), disk pressure (a filler file takes the tmpfs's free space below
GATEWAY_KEEP_FREE_BYTES, so cleanup must delete uploaded batches). Every ``sample_seconds``
it samples RSS, open fds, threads and CPU of each service and the bytes of the data dirs
(artifacts/soak/<run>/samples.csv). It fails on: growth that does not level off (see
:mod:`tests.soak.growth`), any audit failure (live audits during the run and the final one),
a device-side gap no injected fault explains, an object written twice, a backlog that does not
drain, a stream that does not come back, and any process exiting by itself.

**Crash** (:func:`run_crash`): reader and uploader SIGKILLed at random moments, ``kills``
times (sometimes both at once, sometimes again during start-up and recovery); after each
recovery ``gateway audit`` must pass, and every device-side gap must be one the audit
attributes to "the reader restarted" or to a rejected line.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gateway.supervise import Service, Supervisor
from tests.soak.follow import S3Follower, explain_jumps, rejected_counters, restart_seqs
from tests.soak.growth import MIN_SAMPLES, Budget, Point, Verdict, check_growth, pooled_slope
from tests.support.chain import (
    Gateway,
    RelayedS3,
    StreamWatcher,
    base_gateway_env,
    campaign_chain,
    chain_site,
    fault_entries,
    simulator,
)
from tests.support.procstat import sample_process, tree_bytes
from tests.support.s3 import all_versions, is_batch_key
from tests.support.web import viewer_cookie

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
GATEWAY_ID = "soak-gw"

# What a leak-free service may still show over the fitted window (see tests/soak/growth.py).
BUDGETS = {
    "rss": Budget("MiB", 1 << 20, tolerance=8, per_hour=2),
    "fds": Budget("fds", 1, tolerance=8, per_hour=1),
    "threads": Budget("threads", 1, tolerance=4, per_hour=1),
    "disk": Budget("MiB", 1 << 20, tolerance=8, per_hour=8),
}
JUDGED_SERVICES = ("reader", "uploader", "site")
DISKS = ("data_dir", "site_dir")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_stamp(kind: str) -> Path:
    return ARTIFACTS / kind / time.strftime("%Y%m%d-%H%M%S")


# -- the fault plan (pure) ----------------------------------------------------------------------

KINDS = ("reader_kill", "uploader_kill", "site_kill", "s3_outage", "disk_pressure")


@dataclass(frozen=True)
class FaultEvent:
    at: float  # seconds after the start of the run
    kind: str
    seconds: float  # how long it lasts: the outage, the pressure, the wait before a restart


def plan_faults(duration: float, period: float, seed: int) -> list[FaultEvent]:
    """Two interleaved schedules, each event over by 85 % of the run (the end is for draining
    and the final checks):

    - an S3 outage or disk pressure every ``period`` seconds from ``period * 0.75`` on
      (shuffled in pairs), each lasting 40-70 % of the period (at most 140 s);
    - a SIGKILL of the reader, the uploader or the site (shuffled in rounds of three) every
      ``kill_period(duration, period)`` seconds from half of that on. Kills are rarer in long
      runs: a fresh process's memory takes minutes to settle (docs/soak.md), and the growth
      verdict needs processes that live long after it.
    """
    rng = random.Random(f"soak faults {seed}")
    events = []

    def schedule(kinds: tuple[str, ...], first: float, every: float, seconds) -> None:
        at, bag = first, []
        while True:
            if not bag:
                bag = list(kinds)
                rng.shuffle(bag)
            kind = bag.pop()
            lasts = seconds()
            if at + lasts > 0.85 * duration:
                return
            events.append(FaultEvent(round(at, 1), kind, lasts))
            at += every

    schedule(
        ("s3_outage", "disk_pressure"),
        period * 0.75,
        period,
        lambda: round(rng.uniform(0.4, 0.7) * min(period, 200), 1),
    )
    kills = kill_period(duration, period)
    schedule(
        ("reader_kill", "uploader_kill", "site_kill"),
        kills / 2,
        kills,
        lambda: round(rng.uniform(0.2, 2.0), 2),
    )
    return sorted(events, key=lambda event: event.at)


def kill_period(duration: float, period: float) -> float:
    """Seconds between injected kills: an eighth of the run, at least ``period``."""
    return max(period, duration / 8)


def warmup_seconds(duration: float) -> float:
    """How long after its start a process's memory is left out of the growth fit: measured
    (docs/soak.md), the reader's and the uploader's RSS settle within about ten minutes."""
    return min(600.0, max(6.0, duration / 15))


def unplug_spec(duration: float, period: float, rate: int, seed: int) -> list[str]:
    """Unplugs of the simulated port (by sample number: the simulator's schedule), every 2.5
    periods from 0.4 period on, each 0.5-3 s, over by 80 % of the run."""
    rng = random.Random(f"soak unplugs {seed}")
    specs = []
    at = period * 0.4
    while at < 0.8 * duration:
        specs.append(f"unplug@{int(at * rate)}:{rng.uniform(0.5, 3.0):.1f}")
        at += period * 2.5
    return specs


# -- results ------------------------------------------------------------------------------------


@dataclass
class CampaignResult:
    kind: str
    out: Path
    failures: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def fail(self, message: str) -> None:
        say(f"FAILURE: {message.splitlines()[0]}")
        self.failures.append(message)

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        summary = {"kind": self.kind, "passed": self.passed, "failures": self.failures}
        summary.update(self.figures)
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")


def check_followed(
    result: CampaignResult,
    follower: S3Follower,
    seq_last: int,
    data_dir: Path,
    faults: list[dict],
    reader_starts: int,
):
    """Read the rest of the bucket back; every object in seq order, every device-counter
    jump explained by an injected fault."""
    follower.poll()
    if follower.next_seq != seq_last + 1:
        result.fail(f"reading the bucket back stopped at seq {follower.next_seq} of {seq_last}")
    for problem in follower.problems:
        result.fail(f"bucket: {problem}")
    explained, unexplained = explain_jumps(
        follower.jumps, rejected_counters(data_dir), restart_seqs(data_dir), faults
    )
    for message in unexplained:
        result.fail(message)
    if explained.restart_gaps > reader_starts - 1:
        result.fail(
            f"{explained.restart_gaps} device gaps at reader restarts, but the reader was "
            f"restarted {reader_starts - 1} times"
        )
    return explained


def summarize_audit(report: dict) -> dict:
    causes: Counter = Counter()
    for gap in report["gaps"]:
        causes[f"{gap['level']}: {gap['cause'].split(' (')[0]}"] += gap["count"]
    return {
        "passed": report["passed"],
        "seq": [report["seq_first"], report["seq_last"]],
        "rows_local": report["rows_local"],
        "rows_in_s3": report["rows_in_s3"],
        "pending_upload": len(report["pending_upload"]),
        "duplicates": len(report["duplicates"]),
        "gap_lines_by_cause": dict(causes),
        "failures": report["failures"],
    }


# -- sampling -----------------------------------------------------------------------------------


class Sampler:
    """Samples services and folders into a CSV (long format: one metric per row) and keeps
    the points for the growth verdicts."""

    def __init__(self, path: Path, t0: float) -> None:
        self.t0 = t0
        self.file = open(path, "w", newline="")  # noqa: SIM115 (closed in close())
        self.writer = csv.writer(self.file)
        self.writer.writerow(["t", "service", "pid", "started", "metric", "value"])
        self.points: dict[tuple[str, str], list[Point]] = {}
        self.rows = 0

    def _add(self, t: float, name: str, pid: int, started: float, metric: str, value: float):
        self.writer.writerow([f"{t:.2f}", name, pid, f"{started:.2f}", metric, value])
        self.points.setdefault((name, metric), []).append(Point(t, value, started))
        self.rows += 1

    def sample(self, processes: list[tuple[str, int | None, float]], disks: dict[str, Path]):
        """``processes``: (name, pid or None when not running, time.monotonic() it started)."""
        t = time.monotonic() - self.t0
        for name, pid, started_at in processes:
            sample = sample_process(pid) if pid else None
            if sample is None:
                continue
            started = started_at - self.t0
            self._add(t, name, pid, started, "rss", sample.rss_bytes)
            self._add(t, name, pid, started, "fds", sample.fds)
            self._add(t, name, pid, started, "threads", sample.threads)
            self._add(t, name, pid, started, "cpu_seconds", sample.cpu_seconds)
        for name, path in disks.items():
            self._add(t, name, 0, 0.0, "disk", tree_bytes(path))
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def last(self, name: str, metric: str) -> float | None:
        points = self.points.get((name, metric))
        return points[-1].value if points else None

    def cpu_percent(self, name: str) -> float | None:
        """Mean CPU use of a service over the run (summed over its processes)."""
        points = self.points.get((name, "cpu_seconds"))
        if not points:
            return None
        by_process: dict[float, list[Point]] = {}
        for point in points:
            by_process.setdefault(point.incarnation, []).append(point)
        cpu = sum(group[-1].value for group in by_process.values())
        span = points[-1].t - min(p.incarnation for p in points)
        return 100 * cpu / span if span > 0 else None


AGES = ((0, 120), (120, 300), (300, 600), (600, 1200), (1200, 2400), (2400, 4800), (4800, None))


def settling(sampler: Sampler) -> dict:
    """RSS slope (MiB/h) of each service by the age of its processes, pooled over them: how
    long a fresh process takes to settle (the warm-up the growth verdict leaves out)."""
    figures = {}
    for service in JUDGED_SERVICES:
        points = sampler.points.get((service, "rss"), [])
        by_age = {}
        for low, high in AGES:
            window = [
                p
                for p in points
                if p.t - p.incarnation >= low and (high is None or p.t - p.incarnation < high)
            ]
            fit = pooled_slope(window)
            if fit is not None and fit.samples >= MIN_SAMPLES:
                label = f"{low // 60}-{high // 60} min" if high else f"{low // 60}+ min"
                by_age[label] = round(fit.slope * 3600 / 2**20, 2)
        figures[service] = by_age
    return figures


def growth_verdicts(sampler: Sampler, duration: float, warmup: float) -> list[Verdict]:
    verdicts = []
    for service in JUDGED_SERVICES:
        for metric in ("rss", "fds", "threads"):
            verdicts.append(
                check_growth(
                    service,
                    metric,
                    sampler.points.get((service, metric), []),
                    start=0,
                    end=duration,
                    warmup=warmup,
                    budget=BUDGETS[metric],
                )
            )
    for disk in DISKS:
        verdicts.append(
            check_growth(
                disk,
                "disk",
                sampler.points.get((disk, "disk"), []),
                start=0,
                end=duration,
                warmup=0,
                budget=BUDGETS["disk"],
            )
        )
    return verdicts


# -- the tmpfs ----------------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(mount_point: Path, mib: int):
    """A real ``mib`` MiB file system (tmpfs) for the data dir; unmounted whatever happens."""
    mount_point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"cannot mount a {mib} MiB tmpfs for the data dir ({done.stderr.strip()}): the soak "
            "needs root for its disk-pressure faults (or pass --no-disk-pressure)"
        )
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


def free_bytes(path: Path) -> tuple[int, int]:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize


# -- soak ---------------------------------------------------------------------------------------


@dataclass
class SoakOptions:
    duration: float = 120.0
    rate: int = 1000
    channels: int = 8
    seed: int = 1
    sample_seconds: float = 3.0
    fault_period: float | None = None  # default: a tenth of the run, 10 s .. 300 s
    disk_mib: int = 128
    disk_pressure: bool = True
    out: Path | None = None

    def period(self) -> float:
        if self.fault_period:
            return self.fault_period
        return min(300.0, max(10.0, self.duration / 10))


class Faults:
    """Applies the planned events as the run goes; ``finish()`` undoes whatever is active."""

    def __init__(self, plan, chain: dict, filler: Path | None, keep_free: float, log) -> None:
        self.plan = list(plan)
        self.chain = chain
        self.filler = filler
        self.keep_free = keep_free
        self.log = log
        self.applied: list[dict] = []
        self.pending_restarts: list[tuple[float, Service]] = []
        self.active: list[tuple[float, str]] = []
        self.s3 = chain["s3"]
        self.gateway = chain["gateway"]

    def step(self, now: float) -> None:
        while self.plan and self.plan[0].at <= now:
            event = self.plan.pop(0)
            self._apply(event, now)
        for due, service in list(self.pending_restarts):
            if due <= now:
                self.pending_restarts.remove((due, service))
                if service.name == "site":
                    self.chain["site"].start()
                else:
                    service.start()
                self._record(now, f"{service.name}_restart")
        for end, kind in list(self.active):
            if end <= now:
                self.active.remove((end, kind))
                self._undo(kind)
                self._record(now, f"{kind}_end")

    def _record(self, now: float, what: str, **details) -> None:
        entry = {"t": round(now, 2), "event": what, **details}
        self.applied.append(entry)
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()

    def _apply(self, event: FaultEvent, now: float) -> None:
        if event.kind.endswith("_kill"):
            name = event.kind.removesuffix("_kill")
            service = {
                "reader": self.gateway.reader,
                "uploader": self.gateway.uploader,
                "site": self.chain["site"].service,
            }[name]
            service.kill()
            self.pending_restarts.append((now + event.seconds, service))
            self._record(now, event.kind, restart_after=event.seconds)
        elif event.kind == "s3_outage":
            self.s3.cut()
            self.active.append((now + event.seconds, event.kind))
            self._record(now, event.kind, seconds=event.seconds)
        elif event.kind == "disk_pressure":
            if self.filler is None:
                self._record(now, "disk_pressure_skipped")
                return
            free, total = free_bytes(self.filler.parent)
            uploaded = self.gateway.inventory()["touched_bytes"]
            # Leave less than GATEWAY_KEEP_FREE_BYTES free by half of what is uploaded: cleanup
            # must delete uploaded batches (never data not yet in S3) to get it back.
            size = int(free - self.keep_free * total + uploaded / 2)
            if size <= 0:
                self._record(now, "disk_pressure_skipped", free=free)
                return
            with open(self.filler, "wb") as file:
                os.posix_fallocate(file.fileno(), 0, size)
            self.active.append((now + event.seconds, event.kind))
            self._record(now, event.kind, seconds=event.seconds, filler_bytes=size, free=free)

    def _undo(self, kind: str) -> None:
        if kind == "s3_outage":
            self.s3.restore()
        elif kind == "disk_pressure" and self.filler is not None:
            self.filler.unlink(missing_ok=True)

    def finish(self, now: float) -> None:
        for _end, kind in self.active:
            self._undo(kind)
            self._record(now, f"{kind}_end")
        self.active.clear()
        for _due, service in self.pending_restarts:
            if service.name == "site":
                self.chain["site"].start()
            else:
                service.start()
            self._record(now, f"{service.name}_restart")
        self.pending_restarts.clear()
        self.plan.clear()


def run_soak(options: SoakOptions) -> CampaignResult:
    out = options.out or run_stamp("soak")
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    result = CampaignResult("soak", out)
    duration, period = options.duration, options.period()
    plan = plan_faults(duration, period, options.seed)
    if not options.disk_pressure:
        plan = [e for e in plan if e.kind != "disk_pressure"]
    unplugs = unplug_spec(duration, period, options.rate, options.seed)
    retain = min(120, max(15, int(duration / 8)))
    result.figures["options"] = {
        **{k: v for k, v in asdict(options).items() if k != "out"},
        "fault_period": period,
        "retain_uploaded_seconds": retain,
        "unplugs": unplugs,
    }
    say(f"soak: {duration:.0f} s, {len(plan)} injected events, {len(unplugs)} unplugs -> {out}")
    work = Path(tempfile.mkdtemp(prefix="fieldgate-soak-"))
    stack = contextlib.ExitStack()
    chain: dict = {}
    try:
        if options.disk_pressure:
            disk = stack.enter_context(small_disk(work / "disk", options.disk_mib))
        else:
            disk = work / "disk"
            disk.mkdir()
        data_dir = disk / "data"
        supervisor = stack.enter_context(Supervisor(logs))
        chain["s3"] = s3 = RelayedS3(supervisor, bucket="fieldgate-soak", prefix="soak")
        stack.callback(s3.close)
        chain["site"] = site = chain_site(supervisor, work / "site", GATEWAY_ID)
        site_dir = Path(site.env["FIELDGATE_WEB_DATA_DIR"])
        sim_args = [
            "--rate", str(options.rate), "--channels", str(options.channels),
            "--waveform", "ecg", "--seed", str(options.seed), "--drain-timeout", "120",
            "--faults", "garbage=0.001,truncated=0.0002,utf8=0.0002",
        ]  # fmt: skip
        if unplugs:
            sim_args += ["--faults", ",".join(unplugs)]
        sim, link, sim_faults = simulator(supervisor, work / "sim", *sim_args)
        env = {
            **base_gateway_env(data_dir, GATEWAY_ID),
            **s3.gateway_env(),
            **site.gateway_env(),
            "GATEWAY_BATCH_SECONDS": "5",
            "GATEWAY_CLEANUP_SECONDS": "5",
            "GATEWAY_RETAIN_UPLOADED_SECONDS": str(retain),
            "GATEWAY_KEEP_FREE_BYTES": "10%",
        }
        chain["gateway"] = gateway = Gateway(
            supervisor, env, str(link), mode="full", audit_env=s3.gateway_env(direct=True)
        )
        gateway.start()
        gateway.wait_recovered(gateway.reader)
        gateway.wait_recovered(gateway.uploader)
        watcher = StreamWatcher(site.base, GATEWAY_ID, viewer_cookie(site))
        stack.callback(watcher.stop)
        follower = S3Follower(s3.client, s3.bucket, f"{s3.prefix}/{GATEWAY_ID}/")
        next_follow = 10.0
        services = [gateway.reader, gateway.uploader, site.service, sim]
        sampler = Sampler(out / "samples.csv", time.monotonic())
        stack.callback(sampler.close)
        t0 = sampler.t0
        filler = disk / "filler" if options.disk_pressure else None
        fault_log = open(out / "injected.jsonl", "w")  # noqa: SIM115 (closed by the stack)
        stack.callback(fault_log.close)
        faults = Faults(plan, chain, filler, 0.10, fault_log)
        audits, next_sample, next_progress = [], 0.0, 60.0
        audit_period = max(60.0, duration / 6)
        next_audit = audit_period
        while True:
            now = time.monotonic() - t0
            if now >= duration:
                break
            crashed = supervisor.unexpected_exits()
            if crashed:
                for message in crashed:
                    result.fail(f"a crash nobody injected at {now:.0f} s: {message}")
                break
            faults.step(now)
            if now >= next_sample:
                watched = [(v.name, v.pid if v.running else None, v.started_at) for v in services]
                moto = s3.service
                watched.append(("moto_server", moto.pid, moto.started_at))  # for the record only
                sampler.sample(watched, {"data_dir": data_dir, "site_dir": site_dir})
                next_sample += options.sample_seconds
            if now >= next_follow:
                next_follow += 10
                follower.poll()
            if now >= next_audit:
                next_audit += audit_period
                code, report = gateway.audit()
                audits.append({"t": round(now), **summarize_audit(report)})
                if code != 0:
                    result.fail(f"live audit at {now:.0f} s failed: {report['failures']}")
            if now >= next_progress:
                next_progress += 60
                say(
                    f"{now:.0f}/{duration:.0f} s: seq {gateway.status().get('next_seq')}, "
                    f"reader rss {(sampler.last('reader', 'rss') or 0) / 2**20:.1f} MiB, "
                    f"frames {watcher.frames}, events {len(faults.applied)}"
                )
            time.sleep(0.1)
        end = time.monotonic() - t0
        faults.finish(end)
        result.figures["injected"] = dict(Counter(e["event"] for e in faults.applied))
        if result.failures:
            return result
        # The end: every service back, the stream flowing, the backlog drained, then audit.
        gateway.wait_recovered(gateway.reader)
        gateway.wait_recovered(gateway.uploader)
        last_event = max((e["t"] for e in faults.applied), default=0)
        frames_before = watcher.frames
        deadline = time.monotonic() + 30
        while watcher.frames == frames_before and time.monotonic() < deadline:
            time.sleep(0.2)
        if watcher.frames == frames_before:
            result.fail(
                f"no frame reached the site's viewer in the 30 s after the run "
                f"(last injected event at {last_event:.0f} s): {watcher.last_error}"
            )
        status_code = gateway.reader.stop(60)
        if status_code != 0:
            result.fail(
                f"reader exited with {status_code} on SIGTERM:\n{gateway.reader.log_tail()}"
            )
        reader_status = gateway.status("reader")
        drained, drain_started = False, time.monotonic()
        while time.monotonic() - drain_started < 180:
            inventory = gateway.inventory()
            if inventory["pending_batches"] == 0 and inventory["open_batches"] == 0:
                drained = True
                break
            if (message := gateway.uploader.unexpected_exit()) is not None:
                result.fail(message)
                break
            time.sleep(1)
        result.figures["drain_seconds"] = round(time.monotonic() - drain_started, 1)
        if not drained:
            result.fail(f"the upload backlog did not drain in 180 s: {inventory}")
        if gateway.uploader.stop(60) != 0:
            result.fail(f"uploader did not exit 0 on SIGTERM:\n{gateway.uploader.log_tail()}")
        sim.stop()
        code, report = gateway.audit()
        audits.append({"t": "final", **summarize_audit(report)})
        (out / "audit-final.json").write_text(json.dumps(report, indent=1) + "\n")
        if code != 0:
            result.fail(f"final audit failed: {report['failures']}")
        if report["rows_in_s3"] != report["seq_last"] + 1:
            result.fail(
                f"S3 holds {report['rows_in_s3']} rows, seq reached {report['seq_last']}: "
                "not everything was uploaded exactly once"
            )
        faults_logged = fault_entries(sim_faults)
        explained = check_followed(
            result, follower, report["seq_last"], data_dir, faults_logged, gateway.reader.starts
        )
        versions = all_versions(s3.client, s3.bucket)
        rewritten = {key: n for key, n in versions.items() if n != 1}
        if rewritten:
            result.fail(f"objects written more than once: {sorted(rewritten.items())[:10]}")
        counters = reader_status.get("counters", {})
        for name in ("overflow_bytes", "rows_refused_full", "rows_not_stored"):
            if counters.get(name):
                result.fail(f"reader counted {name} = {counters[name]}")
        losses = data_dir / "state" / "losses.jsonl"
        if losses.exists() and losses.read_text().strip():
            result.fail(f"cleanup dropped data not yet uploaded: {losses.read_text()[:2000]}")
        for name in ("reader.runs.jsonl", "losses.jsonl"):
            if (data_dir / "state" / name).exists():
                shutil.copy(data_dir / "state" / name, out / name)
        shutil.copy(sim_faults, out / "sim-faults.jsonl")

        warmup = warmup_seconds(duration)
        verdicts = growth_verdicts(sampler, end, warmup)
        for verdict in verdicts:
            if not verdict.passed:
                result.fail(verdict.message)
        result.figures.update(
            {
                "seconds": round(end, 1),
                "rows": report["seq_last"] + 1,
                "objects": sum(is_batch_key(key) for key in versions),
                "rejected_line_objects": sum("/quarantine/" in key for key in versions),
                "rows_per_second": round((report["seq_last"] + 1) / end, 1),
                "audits": audits,
                "device_gaps_explained": asdict(explained),
                "objects_read_back": follower.objects,
                "sim_faults": dict(Counter(f["fault"] for f in faults_logged)),
                "reader_counters": {
                    k: counters.get(k)
                    for k in (
                        "rows_accepted",
                        "rows_rejected",
                        "device_gaps",
                        "device_lines_lost",
                        "reconnects",
                        "port_outages",
                        "overflow_bytes",
                        "rows_refused_full",
                    )
                },  # fmt: skip
                "reader_cleanup": reader_status.get("cleanup"),
                "stream": {
                    "frames": watcher.frames,
                    "holes": watcher.holes,
                    "viewer_reconnects": watcher.connects - 1,
                    "latency_ms_p50": watcher.latency_ms(0.5),
                    "latency_ms_p99": watcher.latency_ms(0.99),
                },
                "starts": {s.name: s.starts for s in services},
                "growth": [
                    {
                        "service": v.service,
                        "metric": v.metric,
                        "passed": v.passed,
                        "slope_per_hour": None
                        if v.slope_per_hour is None
                        else round(v.slope_per_hour, 4),
                        "allowed_per_hour": None
                        if v.allowed_per_hour is None
                        else round(v.allowed_per_hour, 4),
                        "message": v.message,
                    }
                    for v in verdicts
                ],
                "last": {
                    name: {
                        "rss_mib": round((sampler.last(name, "rss") or 0) / 2**20, 1),
                        "fds": sampler.last(name, "fds"),
                        "threads": sampler.last(name, "threads"),
                        "cpu_percent": None
                        if sampler.cpu_percent(name) is None
                        else round(sampler.cpu_percent(name), 1),
                    }
                    for name in (*JUDGED_SERVICES, "firmware-sim", "moto_server")
                },
                "rss_slope_by_process_age_mib_per_hour": settling(sampler),
                "disk_mib_last": {
                    d: round((sampler.last(d, "disk") or 0) / 2**20, 2) for d in DISKS
                },
            }
        )
        return result
    except Exception as error:
        result.fail(f"the campaign itself failed: {type(error).__name__}: {error}")
        raise
    finally:
        stack.close()
        result.write()
        shutil.rmtree(work, ignore_errors=True)
        say(f"soak {'passed' if result.passed else 'FAILED'}; figures in {out}/summary.json")


# -- crash --------------------------------------------------------------------------------------


@dataclass
class CrashOptions:
    kills: int = 50
    seed: int = 1
    rate: int = 1000
    channels: int = 8
    early_share: float = 0.3  # iterations that kill again during start-up and recovery
    out: Path | None = None


def run_crash(options: CrashOptions) -> CampaignResult:
    out = options.out or run_stamp("crash")
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    result = CampaignResult("crash", out)
    rng = random.Random(f"crash {options.seed}")
    work = Path(tempfile.mkdtemp(prefix="fieldgate-crash-"))
    stack = contextlib.ExitStack()
    say(f"crash: {options.kills} rounds of SIGKILL, audit after each recovery -> {out}")
    started = time.monotonic()
    iterations: list[dict] = []
    try:
        supervisor = stack.enter_context(Supervisor(logs))
        s3, sim, link, sim_faults = campaign_chain(
            supervisor,
            work,
            "crash",
            rate=options.rate,
            channels=options.channels,
            seed=options.seed,
            drain_timeout=120,
        )
        stack.callback(s3.close)
        env = {
            **base_gateway_env(work / "data", "crash-gw"),
            **s3.gateway_env(),
            "GATEWAY_BATCH_SECONDS": "1",
            "GATEWAY_FSYNC_SECONDS": "0.2",
            "GATEWAY_CLEANUP_SECONDS": "5",
            "GATEWAY_RETAIN_UPLOADED_SECONDS": "20",
        }
        gateway = Gateway(
            supervisor, env, str(link), mode="local", audit_env=s3.gateway_env(direct=True)
        )
        services = {"reader": gateway.reader, "uploader": gateway.uploader}
        for service in services.values():
            service.start()
            gateway.wait_recovered(service)
        kills: Counter = Counter()
        restart_lines: list[int] = []
        seen_restart_gaps: set[int] = set()
        for round_ in range(1, options.kills + 1):
            victims = rng.choices([["reader"], ["uploader"], ["reader", "uploader"]], [4, 3, 3])[0]
            early = rng.random() < options.early_share
            if early:
                # Kill, restart, and kill again while it starts up and recovers.
                for name in victims:
                    services[name].kill()
                    services[name].start()
                    kills[f"{name}_startup"] += 1
                time.sleep(rng.uniform(0.02, 1.0))
            else:
                time.sleep(rng.uniform(0.05, 2.0))
            rng.shuffle(victims)
            for name in victims:
                if (problem := services[name].unexpected_exit()) is not None:
                    raise AssertionError(problem)
                services[name].kill()
                kills[name] += 1
            for name in victims:
                services[name].start()
            recovery = gateway.wait_all_recovered([services[name] for name in victims])
            for service in services.values():
                if (problem := service.unexpected_exit()) is not None:
                    raise AssertionError(problem)
            code, report = gateway.audit()
            summary = summarize_audit(report)
            new_gaps = [
                g
                for g in report["gaps"]
                if g["level"] == "device"
                and g["cause"] == "the reader restarted"
                and g["first"] not in seen_restart_gaps
            ]
            for gap in new_gaps:
                seen_restart_gaps.add(gap["first"])
                restart_lines.append(gap["count"])
            iterations.append(
                {
                    "round": round_,
                    "victims": victims,
                    "early": early,
                    "recovery_seconds": recovery,
                    "audit_passed": code == 0,
                    "seq_last": report["seq_last"],
                    "restart_gap_lines": [g["count"] for g in new_gaps],
                }
            )
            wire = [
                g
                for g in report["gaps"]
                if g["level"] == "device" and g["cause"] == "lost on the wire"
            ]
            if code != 0 or wire:
                (out / f"audit-round-{round_}.json").write_text(json.dumps(report, indent=1))
                result.fail(
                    f"round {round_} ({'+'.join(victims)}{', start-up' if early else ''}): "
                    f"audit {'passed' if code == 0 else 'FAILED'}: {report['failures']}; "
                    f"gaps lost on the wire: {wire[:5]}"
                )
                break
            if round_ % 25 == 0:
                say(f"round {round_}/{options.kills}: seq {report['seq_last']}, audits pass")
        if not result.failures:
            # The end: stop cleanly, drain, and audit once more with nothing running.
            if gateway.reader.stop(60) != 0:
                result.fail(f"reader did not exit 0 on SIGTERM:\n{gateway.reader.log_tail()}")
            deadline = time.monotonic() + 180
            while gateway.inventory()["pending_batches"] and time.monotonic() < deadline:
                time.sleep(1)
            if gateway.uploader.stop(60) != 0:
                result.fail(f"uploader did not exit 0 on SIGTERM:\n{gateway.uploader.log_tail()}")
            code, report = gateway.audit()
            (out / "audit-final.json").write_text(json.dumps(report, indent=1) + "\n")
            if code != 0 or report["pending_upload"]:
                result.fail(
                    f"final audit: {report['failures']}, pending {report['pending_upload']}"
                )
            if report["rows_in_s3"] != report["seq_last"] + 1:
                result.fail(f"S3 holds {report['rows_in_s3']} rows of {report['seq_last'] + 1}")
            versions = all_versions(s3.client, s3.bucket)
            rewritten = {key: n for key, n in versions.items() if n != 1}
            if rewritten:
                result.fail(f"objects written more than once: {sorted(rewritten.items())[:10]}")
            result.figures["final_audit"] = summarize_audit(report)
            result.figures["objects"] = sum(is_batch_key(key) for key in versions)
            follower = S3Follower(s3.client, s3.bucket, f"{s3.prefix}/crash-gw/")
            explained = check_followed(
                result,
                follower,
                report["seq_last"],
                gateway.data_dir,
                fault_entries(sim_faults),
                gateway.reader.starts,
            )
            result.figures["read_back"] = {"objects": follower.objects, "rows": follower.rows}
            result.figures["device_gaps_explained"] = asdict(explained)
        return result
    except Exception as error:
        result.fail(f"the campaign itself failed: {type(error).__name__}: {error}")
        raise
    finally:
        stack.close()
        seconds = time.monotonic() - started
        recoveries = [value for item in iterations for value in item["recovery_seconds"].values()]
        result.figures.update(
            {
                "rounds": len(iterations),
                "seconds": round(seconds, 1),
                "kills": dict(kills) if "kills" in locals() else {},
                "audits_passed": sum(1 for item in iterations if item["audit_passed"]),
                "reader_restart_gaps": len(restart_lines) if "restart_lines" in locals() else 0,
                "reader_restart_lines": _spread(locals().get("restart_lines", [])),
                "recovery_seconds": _spread(recoveries),
            }
        )
        with open(out / "rounds.jsonl", "w") as file:
            for item in iterations:
                file.write(json.dumps(item) + "\n")
        result.write()
        if result.passed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say(f"the failed run's data dir is kept in {work}")
        say(f"crash {'passed' if result.passed else 'FAILED'}; figures in {out}/summary.json")


def _spread(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    values = sorted(values)
    return {
        "n": len(values),
        "min": values[0],
        "median": values[len(values) // 2],
        "p99": values[min(len(values) - 1, math.ceil(0.99 * len(values)) - 1)],
        "max": values[-1],
        "mean": round(sum(values) / len(values), 3),
    }


def parse_duration(text: str) -> float:
    """``120``, ``120s``, ``30m``, ``24h``, ``1d`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)
