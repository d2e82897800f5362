"""The crash campaign at CI length: FIELDGATE_CRASH_KILLS rounds (default 20, so that `make test`
stays within CI's 20 minutes) of SIGKILL of the reader, the uploader or both at random moments
(some during start-up and recovery), with ``gateway audit`` passing after every recovery.
``make crash N=...`` runs the same campaign (50 rounds unless told)."""

import os

import pytest

from tests.soak.campaigns import CrashOptions, run_crash

KILLS = int(os.environ.get("FIELDGATE_CRASH_KILLS", "20"))


@pytest.mark.timeout(KILLS * 30 + 300)
def test_random_sigkills_pass_the_audit_after_every_recovery():
    result = run_crash(CrashOptions(kills=KILLS))
    assert result.passed, "\n".join(result.failures)
    figures = result.figures
    assert figures["rounds"] == figures["audits_passed"] == KILLS
    kills = figures["kills"]
    assert kills.get("reader", 0) and kills.get("uploader", 0), kills
    assert figures["read_back"]["rows"] == figures["final_audit"]["rows_in_s3"]
