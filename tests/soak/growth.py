"""Does a resource level off? A least-squares slope over the second half of a run. No I/O.

A soak restarts services on purpose (injected kills), so a service's samples come from
several processes ("incarnations"). The slope is fitted *within* each incarnation and pooled
(each incarnation's own mean removed before the fit), so a restart that resets memory does not
hide a leak, and a fresh process's start-up growth is not counted: samples from the first
``warmup`` seconds of every incarnation are left out.

The verdict allows what a leak-free process still shows over a window of W hours: a
``tolerance`` (one-off steps, allocator noise) plus ``per_hour`` * W. It fails when the fitted
growth over the window exceeds that, i.e. when the slope exceeds
``per_hour + tolerance / W`` (so a short run only catches fast growth; a long one, slow growth).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Point:
    t: float  # seconds since the run started
    value: float
    incarnation: float  # when this process started (seconds since the run started)


@dataclass(frozen=True, slots=True)
class Fit:
    slope: float  # value units per second
    samples: int
    incarnations: int
    window: float  # seconds between the first and the last sample used


def pooled_slope(points: Iterable[Point]) -> Fit | None:
    """Least-squares slope with each incarnation's own mean removed; None without two
    samples apart in time within some incarnation."""
    groups: dict[float, list[Point]] = defaultdict(list)
    for point in points:
        groups[point.incarnation].append(point)
    numerator = denominator = 0.0
    count, used_groups, first, last = 0, 0, None, None
    for group in groups.values():
        if len(group) < 2:
            continue
        mean_t = sum(p.t for p in group) / len(group)
        mean_v = sum(p.value for p in group) / len(group)
        numerator += sum((p.t - mean_t) * (p.value - mean_v) for p in group)
        denominator += sum((p.t - mean_t) ** 2 for p in group)
        count += len(group)
        used_groups += 1
        low, high = min(p.t for p in group), max(p.t for p in group)
        first = low if first is None else min(first, low)
        last = high if last is None else max(last, high)
    if denominator <= 0 or first is None or last is None:
        return None
    return Fit(numerator / denominator, count, used_groups, last - first)


@dataclass(frozen=True, slots=True)
class Budget:
    unit: str  # how values are shown, e.g. "MiB"
    scale: float  # raw value units per shown unit, e.g. 1 << 20 for bytes shown in MiB
    tolerance: float  # shown units over the whole window
    per_hour: float  # shown units per hour


@dataclass(frozen=True, slots=True)
class Verdict:
    service: str
    metric: str
    passed: bool
    message: str
    slope_per_hour: float | None  # shown units per hour
    allowed_per_hour: float | None
    fit: Fit | None


MIN_SAMPLES = 5


def check_growth(
    service: str,
    metric: str,
    points: Iterable[Point],
    *,
    start: float,
    end: float,
    warmup: float,
    budget: Budget,
) -> Verdict:
    """Fit the slope of ``points`` over the second half of [start, end], leaving out each
    incarnation's first ``warmup`` seconds, and judge it against ``budget``."""
    half = start + (end - start) / 2
    used = [p for p in points if p.t >= half and p.t - p.incarnation >= warmup]
    fit = pooled_slope(used)
    if fit is None or fit.samples < MIN_SAMPLES or fit.window <= 0:
        samples = 0 if fit is None else fit.samples
        return Verdict(
            service,
            metric,
            False,
            f"{service} {metric}: only {samples} samples in the second half after warm-up; "
            "cannot tell whether it levels off (run longer or kill it less often)",
            None,
            None,
            fit,
        )
    hours = fit.window / 3600
    slope = fit.slope * 3600 / budget.scale
    allowed = budget.per_hour + budget.tolerance / hours
    growth = slope * hours
    described = (
        f"{service} {metric}: fitted slope {slope:+.3f} {budget.unit}/h over the second half "
        f"({fit.samples} samples, {fit.window:.0f} s, {fit.incarnations} process"
        f"{'es' if fit.incarnations != 1 else ''}; {growth:+.2f} {budget.unit} over the window)"
    )
    if slope > allowed:
        return Verdict(
            service,
            metric,
            False,
            f"{described} exceeds the allowed {allowed:.3f} {budget.unit}/h "
            f"({budget.per_hour:g} {budget.unit}/h + {budget.tolerance:g} {budget.unit} over "
            f"the window): it does not level off",
            slope,
            allowed,
            fit,
        )
    return Verdict(
        service, metric, True, f"{described}; allowed {allowed:.3f}", slope, allowed, fit
    )
