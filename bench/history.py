"""The live view's history and the CSV export, read back from a gateway's batches: an hour of
a 3-lead ECG at 500 lines/s (1.8 million rows in 5-second batches, as make demo writes them).
``python -m bench.history``. The baseline is reading the same batches' bytes (the store's part
of the work), in the same run."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS
from gateway.core import history
from gateway.core.batching import BatchPolicy
from gateway.store.batchstore import BatchStore
from gateway.store.history import batches_newest_first, batches_oldest_first
from gateway.store.layout import DataDir

RATE = 500
SECONDS = 3600
START = 1_764_500_000.0


def write_hour(data_dir: DataDir) -> None:
    store = BatchStore(data_dir, BatchPolicy(RATE * 5, 1 << 30, 3600))
    store.recover()
    store.use_columns(("n", "t", "lead_i", "lead_ii", "lead_iii"), START)
    for first in range(0, RATE * SECONDS, 50):  # reads of 50 lines
        records = [
            b"%d,%.3f,%.4f,%.4f,%.4f" % (n, n / RATE, (n % 400) / 400, -(n % 250) / 250, 0.01)
            for n in range(first, first + 50)
        ]
        store.append(records, START + first / RATE, START)
    store.close(START + SECONDS)


def loop_lag_while(work) -> dict:
    """How late an asyncio loop's 10 ms timers fire while ``work`` runs in another thread, as
    the site runs history.json (it shares the GIL with the loop that serves the sockets)."""

    async def measure() -> list[float]:
        loop = asyncio.get_running_loop()
        reading = loop.run_in_executor(None, work)
        lags = []
        while not reading.done():
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - start - 0.01)
        await reading
        return sorted(lags)

    lags = asyncio.run(measure())
    pick = lambda q: round(lags[min(len(lags) - 1, int(q * len(lags)))] * 1000, 1)  # noqa: E731
    return {"p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(lags[-1] * 1000, 1)}


def timed(work) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return round(time.perf_counter() - start, 2), result


def main(argv: list[str]) -> int:
    data_dir = DataDir(Path(tempfile.mkdtemp(prefix="fieldgate-bench-history-")))
    took, _ = timed(lambda: write_hour(data_dir))
    print(f"wrote {RATE * SECONDS:,} rows in {took} s", flush=True)
    results = {
        "rows": RATE * SECONDS,
        "baseline_read_all_batches_s": timed(
            lambda: sum(len(b.rows) for b in batches_oldest_first(data_dir))
        )[0],
    }
    for span in (60, 600, 3600):
        took, found = timed(
            lambda span=span: history.history_frames(
                batches_newest_first(data_dir), before_seq=2**62, span=span, line_format="csv-seq"
            )
        )
        buckets = sum(len(f["t"]) for f in found.frames)
        size = len(json.dumps(found.frames))
        results[f"history_{span}s"] = {"s": took, "rows": found.rows, "buckets": buckets,
                                       "json_bytes": size}  # fmt: skip
        print(f"history {span:5d} s: {results[f'history_{span}s']}", flush=True)
    results["event_loop_lag_idle"] = loop_lag_while(lambda: time.sleep(3))  # the baseline
    print(f"event loop lag, nothing read: {results['event_loop_lag_idle']}")
    results["event_loop_lag_during_hour"] = loop_lag_while(
        lambda: history.history_frames(
            batches_newest_first(data_dir), before_seq=2**62, span=3600, line_format="csv-seq"
        )
    )
    print(f"event loop lag while an hour is read: {results['event_loop_lag_during_hour']}")
    export = history.Export()
    took, size = timed(
        lambda: sum(
            map(
                len,
                history.export_rows(
                    batches_oldest_first(data_dir), START + 3000, START + 3600, export
                ),
            )
        )
    )
    results["export_600s"] = {"s": took, "rows": export.rows, "bytes": size}
    print(f"export 10 min: {results['export_600s']}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "history.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
