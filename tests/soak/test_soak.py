"""The soak campaign at CI length: 8 channels x 1 kHz through reader, uploader and site with
every kind of fault, for FIELDGATE_SOAK_SECONDS (default 120). ``make soak DURATION=...``
runs the same campaign for longer (tests/soak/campaigns.py; figures in docs/soak.md)."""

import os

import pytest

from tests.soak.campaigns import SoakOptions, plan_faults, run_soak, unplug_spec

SECONDS = float(os.environ.get("FIELDGATE_SOAK_SECONDS", "120"))


def test_the_fault_plan_covers_every_kind_and_ends_before_the_run():
    for duration in (120, 1800, 86400):
        period = min(300.0, max(10.0, duration / 10))
        plan = plan_faults(duration, period, seed=1)
        assert {e.kind for e in plan} == {
            "reader_kill",
            "uploader_kill",
            "site_kill",
            "s3_outage",
            "disk_pressure",
        }
        assert all(e.at + e.seconds <= 0.85 * duration for e in plan)
        assert unplug_spec(duration, period, 1000, seed=1)


@pytest.mark.timeout(SECONDS + 600)
def test_soak_at_ci_length_passes():
    result = run_soak(SoakOptions(duration=SECONDS, sample_seconds=2.0))
    assert result.passed, "\n".join(result.failures)
    figures = result.figures
    injected = figures["injected"]
    for kind in ("reader_kill", "uploader_kill", "site_kill", "s3_outage", "disk_pressure"):
        assert injected.get(kind), f"no {kind} was injected: {injected}"
    assert figures["device_gaps_explained"]["unplug_lines"] > 0, "no unplug took effect"
    assert figures["objects_read_back"] == figures["objects"]
    assert figures["rows_per_second"] > 800
