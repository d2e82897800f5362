"""The report's PNG plots, drawn with matplotlib's Agg canvas (no display, no pyplot state)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from gateway.core.report import Envelope, RateSeries

MAX_CHANNELS_DRAWN = 16
_SEQ_GAP = "tab:red"
_DEVICE_GAP = "tab:orange"
_RESET = "tab:purple"


def _time(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def _iso_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _time_axis(axis) -> None:
    locator = AutoDateLocator(tz=dt.UTC)
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=dt.UTC))


def _save(figure: Figure, path: Path) -> Path:
    # No "Software" text: the same data gives the same bytes on any matplotlib patch level.
    figure.savefig(path, dpi=100, metadata={"Software": None})
    return path


def _mark_gaps(axis, summary: dict) -> None:
    for gap in summary["gaps"]["seq"]:
        axis.axvline(_iso_time(gap["after"]), color=_SEQ_GAP, linewidth=1, alpha=0.8)
    for gap in summary["gaps"]["device"]:
        axis.axvline(_iso_time(gap["at"]), color=_DEVICE_GAP, linewidth=0.8, alpha=0.6)


def plot_overview(envelopes: Mapping[str, Envelope], summary: dict, path: Path) -> Path:
    """One panel per channel: the min..max envelope over time, gaps as vertical lines."""
    names = list(envelopes)[:MAX_CHANNELS_DRAWN]
    panels = max(1, len(names))
    figure = Figure(figsize=(12, 1.6 * panels + 1.2), layout="constrained")
    axes = figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    for axis, name in zip(axes, names, strict=False):
        envelope = envelopes[name]
        cuts = [0, *envelope.breaks, len(envelope.times)]
        for begin, end in zip(cuts, cuts[1:], strict=False):
            times = [_time(t) for t in envelope.times[begin:end]]
            low, high = envelope.low[begin:end], envelope.high[begin:end]
            if len(times) == 1:
                axis.vlines(times, low, high, color="tab:blue", linewidth=1)
            else:
                axis.fill_between(times, low, high, color="tab:blue", alpha=0.35, linewidth=0)
                axis.plot(times, low, color="tab:blue", linewidth=0.5)
                axis.plot(times, high, color="tab:blue", linewidth=0.5)
        _mark_gaps(axis, summary)
        axis.set_ylabel(name)
        axis.grid(True, alpha=0.3)
    if not names:
        axes[0].text(0.5, 0.5, "no numeric channel", ha="center", va="center")
    more = len(envelopes) - len(names)
    figure.suptitle(
        f"{summary['gateway_id']}: waveform overview (min..max per time bin, UTC)"
        + (f"; {more} more channels not drawn" if more > 0 else "")
    )
    axes[-1].set_xlabel("received at (UTC)")
    if names:
        _time_axis(axes[-1])
    return _save(figure, path)


def plot_timeline(rate: RateSeries, summary: dict, path: Path) -> Path:
    """Rows per second (and rejected lines per second) over time; every gap by size."""
    figure = Figure(figsize=(12, 6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    times = [_time(t) for t in rate.times]
    if times:
        top.step(times, rate.rows_per_second, where="post", label="rows stored per second")
        if rate.rejects_per_second is not None and any(rate.rejects_per_second):
            top.step(
                times,
                rate.rejects_per_second,
                where="post",
                color=_SEQ_GAP,
                label="lines rejected per second",
            )
    device_rate = summary.get("device_rate_hz")
    if device_rate:
        top.axhline(device_rate, color="grey", linestyle="--", linewidth=1, label="device rate")
    top.set_ylabel(f"per second ({rate.width:.3g} s bins)")
    if top.get_legend_handles_labels()[0]:
        top.legend(loc="lower left", fontsize="small")
    top.grid(True, alpha=0.3)

    gaps = summary["gaps"]
    if gaps["seq"]:
        bottom.scatter(
            [_iso_time(g["after"]) for g in gaps["seq"]],
            [g["count"] for g in gaps["seq"]],
            color=_SEQ_GAP,
            marker="s",
            label="seq hole (rows missing)",
        )
    if gaps["device"]:
        bottom.scatter(
            [_iso_time(g["at"]) for g in gaps["device"]],
            [g["count"] for g in gaps["device"]],
            color=_DEVICE_GAP,
            marker="o",
            label="device counter jump (samples missing)",
        )
    if gaps["resets"]:
        bottom.scatter(
            [_iso_time(r["at"]) for r in gaps["resets"]],
            [1] * len(gaps["resets"]),
            color=_RESET,
            marker="x",
            label="device counter reset",
        )
    if gaps["seq"] or gaps["device"] or gaps["resets"]:
        bottom.set_yscale("log")
        bottom.legend(loc="upper left", fontsize="small")
    else:
        bottom.text(0.5, 0.5, "no gaps", ha="center", va="center", transform=bottom.transAxes)
    bottom.set_ylabel("gap size")
    bottom.set_xlabel("received at (UTC)")
    bottom.grid(True, alpha=0.3)
    if times:
        _time_axis(bottom)
    figure.suptitle(
        f"{summary['gateway_id']}: sample rate and gaps — {gaps['seq_missing']} seq missing, "
        f"{gaps['device_missing'] if gaps['device_missing'] is not None else '?'} device "
        "samples missing"
    )
    return _save(figure, path)


def plot_channels(summary: dict, path: Path) -> Path:
    """Per channel: min..max range, mean +- std, and the numbers in a table."""
    channels = [(name, s) for name, s in summary["channels"].items() if s["count"]]
    rows = max(1, len(channels))
    figure = Figure(figsize=(12, 0.45 * rows + 2.2), layout="constrained")
    chart, table = figure.subplots(1, 2, width_ratios=[3, 2])
    for y, (_name, s) in enumerate(channels):
        chart.hlines(y, s["min"], s["max"], color="tab:gray", linewidth=2)
        std = s["std"] or 0.0
        chart.errorbar(s["mean"], y, xerr=std, fmt="o", color="tab:blue", capsize=4)
    chart.set_yticks(range(len(channels)), [name for name, _ in channels])
    chart.invert_yaxis()
    chart.set_xlabel("value (grey: min..max, blue: mean ± std)")
    chart.grid(True, axis="x", alpha=0.3)
    table.axis("off")
    if channels:
        cells = [
            [
                name,
                str(s["count"]),
                f"{s['min']:.6g}",
                f"{s['max']:.6g}",
                f"{s['mean']:.6g}",
                f"{s['std']:.4g}" if s["std"] is not None else "-",
            ]
            for name, s in channels
        ]
        drawn = table.table(
            cellText=cells,
            colLabels=["channel", "n", "min", "max", "mean", "std"],
            loc="upper center",
        )
        drawn.auto_set_font_size(False)
        drawn.set_fontsize(8)
    else:
        table.text(0.5, 0.5, "no numeric channel", ha="center", va="center")
    figure.suptitle(f"{summary['gateway_id']}: per-channel statistics ({summary['rows']} rows)")
    return _save(figure, path)
