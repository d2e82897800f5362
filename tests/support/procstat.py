"""What a running process uses, read from /proc (Linux): resident memory, open file
descriptors, threads, CPU time; and how many bytes a directory tree holds on disk.

Used by the soak campaign (tests/soak/) and hil/ to watch the gateway's services.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcSample:
    rss_bytes: int
    fds: int
    threads: int
    cpu_seconds: float  # user + system, since the process started


def sample_process(pid: int) -> ProcSample | None:
    """The process's resources now; None when it is gone (or a zombie)."""
    try:
        statm = Path(f"/proc/{pid}/statm").read_text().split()
        stat = Path(f"/proc/{pid}/stat").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields after the command name (which may hold spaces and parentheses).
    fields = stat[stat.rindex(")") + 2 :].split()
    state = fields[0]
    if state in ("Z", "X"):
        return None
    utime, stime = int(fields[11]), int(fields[12])
    threads = int(fields[17])
    return ProcSample(
        rss_bytes=int(statm[1]) * PAGE_BYTES,
        fds=fds,
        threads=threads,
        cpu_seconds=(utime + stime) / CLOCK_TICKS,
    )


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not: it only waits to be reaped)."""
    return sample_process(pid) is not None


def tree_bytes(path: Path) -> int:
    """Bytes the files under ``path`` occupy on disk (allocated blocks, as ``du`` counts);
    files that vanish while it walks are skipped."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total
