"""``make bench``: run every benchmark, then write bench/RESULTS.md from their results.

Each benchmark writes ``bench/results/<name>.json`` with its figures and the baseline measured
in the same run; the table below puts each figure beside its baseline, the ratio and the
target. ``python -m bench --table`` only rewrites RESULTS.md from the last results.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from bench.common import RESULTS

BENCHMARKS = ("ingest", "upload", "web", "gateway")
OUTPUT = Path(__file__).with_name("RESULTS.md")


def _row(figure, value, baseline="", ratio="", target="", met=None) -> str:
    mark = "" if met is None else ("yes" if met else "**no**")
    return f"| {figure} | {value} | {baseline} | {ratio} | {target} | {mark} |"


def ingest_rows(r: dict) -> list[str]:
    steady = r["steady_8ch_1khz"]
    formats = r.get("formats") or {r["stream"].get("format", "csv-seq"): r}
    peak = max(
        [steady["peak_rss_mib"]]
        + [f["reader_local_mode"]["peak_rss_mib"] for f in formats.values()]
    )
    return [
        *(
            _row(
                f"reader, local mode, {f['stream']['bytes'] / 2**20:.0f} MiB of "
                f"{f['stream']['mean_line_bytes']:.0f}-byte {name} lines from a PTY",
                f"{f['reader_local_mode']['mb_per_s']} MB/s, "
                f"{f['reader_local_mode']['lines_per_s']:,} lines/s",
                f"raw copy (`head -c`): {f['baseline_raw_copy']['mb_per_s']} MB/s",
                f["ratio_reader_to_raw"],
                ">= 0.5",
                f["ratio_reader_to_raw"] >= 0.5,
            )
            for name, f in formats.items()
        ),
        _row(
            "reader CPU at 8 channels x 1 kHz (with its relay process)",
            f"{steady['cpu_percent_of_one_core']} % of a core",
            "",
            "",
            "< 3 %",
            steady["cpu_percent_of_one_core"] < 3,
        ),
        _row(
            "reader RSS (peak; reader + relay process)",
            f"{peak} MiB",
            "",
            "",
            "< 60 MiB",
            peak < 60,
        ),
    ]


def upload_rows(r: dict) -> list[str]:
    rows = []
    for name, data in r["sets"].items():
        same = data.get("bare_same_work")
        ratio = data["ratio_uploader_to_same_work"] if same else data["ratio_uploader_to_bare"]
        plain = (
            f"bare boto3 thread pool: {data['bare_boto3']['files_per_s']} files/s, "
            f"{data['bare_boto3']['mb_per_s']} MB/s "
            f"(with a HEAD per object: ratio {data['ratio_uploader_to_bare_put_and_head']})"
        )
        baseline = (
            f"boto3 thread pool doing the same work (gzip level 1, SHA-256, PUT with checksum, "
            f"HEAD): {same['files_per_s']} files/s, {same['mb_per_s']} MB/s; plain "
            f"`upload_file` pool (no gzip, hash or HEAD): ratio {data['ratio_uploader_to_bare']}"
            if same
            else plain
        )
        rows.append(
            _row(
                f"uploader, {data['files']} x {name.split('_')[1]} batches",
                f"{data['uploader']['files_per_s']} files/s, {data['uploader']['mb_per_s']} MB/s",
                baseline,
                ratio,
                ">= 0.8",
                ratio >= 0.8,
            )
        )
        rss = data["uploader"]["peak_rss_mib"]
        rows.append(
            _row(f"uploader RSS (peak), {name}", f"{rss} MiB", "", "", "< 150 MiB", rss < 150)
        )
    return rows


def web_rows(r: dict) -> list[str]:
    plain = {p["viewers"]: p for p in r["fan_out"] if p["server"] == "plain"}
    rows = []
    for point in r["fan_out"]:
        if point["server"] != "uvicorn":
            continue
        base = plain[point["viewers"]]
        ratio = round(point["messages_per_s"] / base["messages_per_s"], 3)
        rows.append(
            _row(
                f"fan-out, 1 gateway to {point['viewers']} viewers (uvicorn)",
                f"{point['messages_per_s']:,} msgs/s, p99 {point['p99_ms']} ms",
                f"plain websockets broadcast: {base['messages_per_s']:,} msgs/s",
                ratio,
                ">= 0.3",
                ratio >= 0.3,
            )
        )
    serial = r["serial_to_viewer"]
    rows.append(
        _row(
            "serial to viewer, 8 channels x 1 kHz",
            f"p99 {serial['p99_ms']} ms (p50 {serial['p50_ms']}, max {serial['max_ms']})",
            "",
            "",
            "< 100 ms",
            serial["p99_ms"] < 100,
        )
    )
    charts = r["chart_frame_time"]
    uplot = next(v for k, v in charts.items() if k.startswith("uplot (site chart, 500"))
    others = "; ".join(
        f"{k}: {v['median_ms']} ms"
        for k, v in charts.items()
        if not k.startswith("uplot (site chart, 500")
    )
    rows.append(
        _row(
            "chart frame, 8 channels x 10 s x 1 kHz (uPlot, median)",
            f"{uplot['median_ms']} ms (p95 {uplot['p95_ms']})",
            others,
            "",
            "< 16 ms",
            uplot["median_ms"] < 16,
        )
    )
    return rows


def gateway_rows(r: dict) -> list[str]:
    """The whole gateway at 8 channels x 1 kHz, one core: each process and the sum."""
    copy, rows = r["baseline_copy"], []
    for name, p in r["processes"].items():
        rows.append(
            _row(
                f"{name}{' (with its relay)' if name == 'reader' else ''}",
                f"{p['cpu_percent_of_one_core']} % of a core, {p['rss_mib']} MiB",
                f"bare python: {r['baseline_interpreter_rss_mib']} MiB",
                "",
                "< 1.5 %" if name == "reader" else "",
                p["cpu_percent_of_one_core"] < 1.5 if name == "reader" else None,
            )
        )
    total = r["total"]
    rows.append(
        _row(
            "whole gateway (reader, relay, uploader, site)",
            f"{total['cpu_percent_of_one_core']} % of a core, {total['rss_mib']} MiB "
            f"(peak {total['peak_rss_mib']})",
            f"`cat` of the same stream: {copy['cpu_percent_of_one_core']} %, {copy['rss_mib']} MiB",
            r["ratio_cpu_to_copy"],
            "< 160 MiB",
            total["rss_mib"] < 160,
        )
    )
    return rows


ROWS = {"ingest": ingest_rows, "upload": upload_rows, "web": web_rows, "gateway": gateway_rows}


def write_table() -> Path:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); each figure beside its baseline, "
        "measured in the same run.",
        "",
    ]
    machine = None
    for name in BENCHMARKS:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            lines += [f"## bench/{name}", "", "not run yet", ""]
            continue
        result = json.loads(path.read_text())
        machine = machine or result["machine"]
        lines += [
            f"## bench/{name} ({result['when']})",
            "",
            "| figure | value | baseline (same run) | ratio | target | met |",
            "|---|---|---|---|---|---|",
            *ROWS[name](result),
            "",
        ]
    if machine:
        lines += ["Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), ""]
    OUTPUT.write_text("\n".join(lines))
    return OUTPUT


def main(argv: list[str]) -> int:
    if "--table" not in argv:
        for name in BENCHMARKS:
            print(f"== bench/{name}", flush=True)
            importlib.import_module(f"bench.{name}").main([])
    print(f"wrote {write_table()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
