"""Issue 17's probes against a real site (uvicorn), real websockets clients and Debian's
headless Chromium: a flood of wrong tokens does not starve a gateway, and the pages raise no
Content-Security-Policy violation."""

import asyncio
import shutil

import pytest

from gateway.supervise import Supervisor
from tests.support.flood import measure
from tests.support.web import CHROMIUM, CHROMIUM_ARGS, start_site


@pytest.fixture
def site(tmp_path):
    with Supervisor(tmp_path / "site") as supervisor:
        yield start_site(supervisor, tmp_path)


def test_a_flood_of_wrong_tokens_from_one_address_does_not_starve_a_gateway(site):
    login = site.login
    result = asyncio.run(
        measure(
            site.ingest_url,
            login.gateway_id,
            login.token,
            seconds=5,
            flood_per_second=100,
        )
    )
    summary = result.summary()
    codes = summary["flood_close_codes"]
    # The first 20 are checked (FIELDGATE_WEB_INGEST_FAILURES_PER_CLIENT) and a few more that
    # were already past the check when the 20th was counted (20-41 of 3,200 measured at
    # 400/s); the rest never reach a token.
    assert 20 <= codes.get(4403, 0) <= 60, summary
    assert codes.get(4429, 0) >= summary["flood_attempts"] - 60, summary
    # Before the limit the same flood, at 400/s on this 2-core machine, held the welcome for
    # 8 s (docs/web.md); the gateway is welcomed in tens of milliseconds when it is quiet.
    assert summary["welcomes"] >= 5 and summary["welcome_median_s"] < 1.0, summary
    log = site.service.log()
    assert 'event=ingest_refused client=127.0.0.2 reason="too many failed attempts"' in log
    assert log.count("too many failed attempts") <= 2  # once per 10 s, not per attempt


playwright = pytest.importorskip("playwright.sync_api")  # make setup installs it (dev extra)


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="chromium: run make setup")
def test_the_live_and_fleet_pages_raise_no_csp_violation_in_chromium(
    site, firmware_sim, processes, reader_env
):
    sim = firmware_sim("--rate", "500", "--channels", "3", "--waveform", "ecg")
    env = reader_env(
        stream_url=site.ingest_url, stream_token=site.login.token, stream_heartbeat_seconds=0.5
    )
    processes.gateway("reader", "--port", str(sim.port), "--mode", "demo", env=env)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            violations: list[str] = []
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security Policy" in m.text else 0,
            )
            page.add_init_script(
                "document.addEventListener('securitypolicyviolation', e => console.error("
                "'Content Security Policy violation: ' + e.violatedDirective + ' ' + "
                "e.blockedURI));"
            )
            page.goto(f"{site.base}/accounts/login/")
            page.fill("input[name=username]", site.login.user)
            page.fill("input[name=password]", site.login.password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{site.base}/")
            gateway = site.login.gateway_id
            page.wait_for_function(
                f"() => document.querySelector(\"tr[data-name='{gateway}'] .state\")"
                ".textContent === 'online'",
                timeout=20_000,
            )
            page.goto(f"{site.base}/gateways/{gateway}/")
            page.wait_for_function(
                "() => window.fieldgate && window.fieldgate.stats.draws > 3", timeout=20_000
            )
            headers = page.request.get(f"{site.base}/").headers
            clean = list(violations)
            # The listener does catch a violation: an inline script, blocked.
            page.evaluate(
                "() => { const s = document.createElement('script'); s.textContent = '1';"
                " document.head.appendChild(s); }"
            )
            page.wait_for_timeout(300)
        finally:
            browser.close()
    assert "script-src 'self'" in headers["content-security-policy"]
    assert clean == []
    assert len(violations) >= 1 and "script-src" in violations[-1], violations
