"""The power-cut campaign at CI length: FIELDGATE_POWERCUT_CUTS cuts (default 6) of the whole
chain on the LazyFS layer, at least one during start-up and one torn. ``make powercut N=...``
runs the same campaign for longer (figures in docs/soak.md)."""

import os

import pytest

from tests.powercut.campaign import PowercutOptions, run_powercut
from tests.powercut.mount import fuse_unavailable

CUTS = int(os.environ.get("FIELDGATE_POWERCUT_CUTS", "6"))


@pytest.mark.timeout(CUTS * 40 + 240)
def test_power_cuts_lose_only_what_was_not_fsynced_and_the_audit_passes(tmp_path):
    reason = fuse_unavailable()
    if reason:
        pytest.skip(f"FUSE is not available here: {reason}")
    result = run_powercut(
        PowercutOptions(cuts=CUTS, seed=2, early_share=0.4, torn_share=0.4, out=tmp_path / "out")
    )
    assert result.passed, "\n".join(result.failures)
    figures = result.figures
    assert figures["cuts"] == CUTS
    assert figures["final_audit"]["passed"]
    assert figures["read_back"]["rows"] == figures["final_audit"]["rows_in_s3"]
    assert figures["open_batch_rows_lost_total"] > 0  # the cuts did lose unsynced rows
    report = (tmp_path / "out" / "report.md").read_text()
    assert report.count("\n| ") == CUTS + 1  # a header and one line per cut
