"""A real headless Chromium (Debian's, driven by Playwright) on the live gateway page."""

import datetime as dt
import re
import shutil
import time
from pathlib import Path

import pytest

from gateway.supervise import Supervisor, wait_for
from tests.support.web import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, start_site
from web.fleet import display

playwright = pytest.importorskip("playwright.sync_api")  # make setup installs it (dev extra)
if shutil.which(CHROMIUM) is None:  # make setup installs Debian's chromium
    pytest.skip(f"{CHROMIUM} is not installed: run make setup", allow_module_level=True)


@pytest.fixture
def site(tmp_path):
    with Supervisor(tmp_path / "site") as supervisor:
        yield start_site(supervisor, tmp_path)


@pytest.fixture
def site_on_gateway(tmp_path):
    """The site as it runs on a gateway: it serves the reader's batches (tmp_path/data, as
    reader_env writes them) as history and export."""
    with Supervisor(tmp_path / "site") as supervisor:
        yield start_site(
            supervisor, tmp_path, FIELDGATE_WEB_GATEWAY_DATA_DIR=str(tmp_path / "data")
        )


@pytest.fixture
def browser():
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def stats(page) -> dict:
    return page.evaluate(
        "() => { const s = window.fieldgate.stats; return {points: s.pointsPlotted, "
        "draws: s.draws, frames: s.frames, gaps: s.gaps, missing: s.missing, "
        "channels: window.fieldgate.chart.channels} }"
    )


def test_the_gateway_page_draws_a_live_waveform(site, browser, firmware_sim, processes, reader_env):
    sim = firmware_sim("--rate", "1000", "--channels", "8", "--waveform", "ecg")
    env = reader_env(stream_url=site.ingest_url, stream_token=site.login.token)
    processes.gateway("reader", "--port", str(sim.port), "--mode", "demo", env=env)

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{site.base}/gateways/{site.login.gateway_id}/")
    assert "/accounts/login/" in page.url  # people log in to view
    page.fill("input[name=username]", site.login.user)
    page.fill("input[name=password]", site.login.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/gateways/{site.login.gateway_id}/")

    page.wait_for_function(
        "() => window.fieldgate && window.fieldgate.stats.draws > 3", timeout=20_000
    )
    first = stats(page)
    time.sleep(1.5)
    second = stats(page)
    assert second["points"] > first["points"] and second["draws"] > first["draws"]
    assert second["channels"] == 8
    # The reader's frames come as binary messages (the site offers them) and are drawn as such.
    messages = page.evaluate("() => window.fieldgate.messages")
    assert messages["binary"] >= second["frames"] > 0, messages
    assert page.locator("#channels input[type=checkbox]").count() == 8
    assert page.locator("#state").inner_text() == "online"
    assert page.locator("#lagging").is_hidden()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "gateway-page.png"))

    # Pause freezes the drawing while frames keep coming; resume draws again.
    page.click("#pause")
    paused = stats(page)
    time.sleep(0.6)
    still = stats(page)
    assert still["draws"] == paused["draws"] and still["frames"] > paused["frames"]
    page.click("#pause")
    wait_for(lambda: stats(page)["draws"] > still["draws"], 5, message="drawing after resume")

    # A hole in seq is shown as a gap with the number of samples missing.
    page.evaluate(
        "() => { const c = window.fieldgate.chart; const t = c.lastT + 0.5;"
        " c.addFrame({type: 'frame', seq: [c.lastSeq + 101, c.lastSeq + 101], samples: 1,"
        " t: [t], min: Array(8).fill([0]), max: Array(8).fill([0])}); }"
    )
    gapped = stats(page)
    assert gapped["gaps"] >= 1 and gapped["missing"] >= 100
    # Device time jumping with seq going on and nothing said (a device without a counter that
    # went quiet) breaks the line too, as a silence.
    silent = page.evaluate(  # in one go: the next live frame goes back in device time
        "() => { const c = window.fieldgate.chart; const t = c.lastT + 2;"
        " c.addFrame({type: 'frame', seq: [c.lastSeq + 1, c.lastSeq + 1], samples: 1,"
        " t: [t], min: Array(8).fill([0]), max: Array(8).fill([0]), received_at: t});"
        " return c.gaps.filter(g => g.kind === 'silence'); }"
    )
    assert len(silent) == 1 and 1.9 < silent[0]["seconds"] < 2.1, silent

    # Channel toggles hide a series.
    page.click("#channels input[data-channel='0']")
    assert page.evaluate("() => window.fieldgate.chart.plot.series[1].show") is False


def log_in(page, site, path: str) -> None:
    page.goto(f"{site.base}{path}")
    page.fill("input[name=username]", site.login.user)
    page.fill("input[name=password]", site.login.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")


def test_an_unplug_breaks_the_line_and_the_page_says_what_was_lost(
    site_on_gateway, browser, firmware_sim, processes, reader_env
):
    site = site_on_gateway
    # make demo's monitor (3-lead ECG at 500 lines/s) unplugged 1.5 s, here 3 s in.
    sim = firmware_sim(
        *("--rate", "500", "--channels", "3", "--waveform", "ecg", "--seed", "7"),
        *("--faults", "unplug@1500:1.5"),
    )
    env = reader_env(
        stream_url=site.ingest_url,
        stream_token=site.login.token,
        stream_heartbeat_seconds=0.5,
        field_names="n,t,lead_i,lead_ii,lead_iii",  # as make demo names them
    )
    reader = processes.gateway("reader", "--port", str(sim.port), "--mode", "full", env=env)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, site, f"/gateways/{site.login.gateway_id}/")
    page.wait_for_function(
        "() => window.fieldgate && window.fieldgate.stats.deviceGaps > 0", timeout=30_000
    )
    (unplug,) = [e for e in sim.fault_entries() if e["fault"] == "unplug"]
    chart = page.evaluate(
        "() => { const c = window.fieldgate.chart; return {stats: c.stats, gaps: c.gaps,"
        " nulls: c.ys[0].filter(v => v === null).length, width: c.plot.width} }"
    )
    (gap,) = chart["gaps"]
    assert gap["kind"] == "device" and gap["missing"] == unplug["lines_lost"] > 0
    assert 1.5 <= gap["seconds"] < 4.0, gap
    assert 1.4 < gap["t1"] - gap["t0"] < 4.0, gap  # the shaded span is the time lost
    assert chart["nulls"] >= 1  # the line is broken there, not drawn across
    assert chart["stats"]["deviceLinesLost"] == unplug["lines_lost"]
    assert chart["stats"]["outages"] == 1 and chart["stats"]["deliveryGaps"] == 0
    page.wait_for_function(
        "() => document.getElementById('losses').textContent.includes('1 device gap ')"
    )
    text = page.locator("#losses").inner_text()
    assert f"1 device gap ({unplug['lines_lost']} samples lost)" in text, text
    assert "1 port outage (" in text, text
    page.wait_for_function(  # the reader's own count, from its status
        "() => /counted 1 device gap [(]/"
        ".test(document.getElementById('reader-counts').textContent)"
    )
    page.click("#events-box summary")  # the list of gaps, with the gateway clock
    assert "samples lost" in page.locator("#events li.gap.device").first.inner_text()
    assert 1200 < chart["width"] <= 1280  # the chart fills the page's width
    # The wall-clock axis is there beside device time (the gateway clock, UTC by default).
    assert page.locator(".u-axis").count() >= 3
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "gateway-gap.png"))  # the README's picture

    # History: what the gateway stored before the oldest seq this page holds, joined to it
    # without a hole (the rows came before the page opened).
    page.select_option("#history-span", "60")
    page.click("#history")
    page.wait_for_function("() => window.fieldgate.history", timeout=15_000)
    answer = page.evaluate("() => window.fieldgate.history")
    # before_seq: the oldest seq the page held when asked (the first of a frame)
    assert answer["last_seq"] == answer["before_seq"] - 1 and answer["first_seq"] == 0, answer
    joined = page.evaluate(
        "() => { const c = window.fieldgate.chart; return {oldest: c.oldestSeq(),"
        " kinds: c.gaps.map(g => g.kind), counted: c.stats.deliveryGaps} }"
    )
    assert joined["oldest"] == 0 and "delivery" not in joined["kinds"], joined
    assert joined["counted"] == 0  # history is drawn, not counted as a loss of this view
    assert "rows read back" in page.locator("#history-state").inner_text()
    page.screenshot(path=str(ARTIFACTS / "gateway-history.png"))
    page.click("#live")

    # Dragging across the chart zooms into that stretch and pauses the page there.
    box = page.locator("#chart .u-over").bounding_box()
    middle = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.2, middle)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.4, middle, steps=5)
    page.mouse.up()
    zoomed = page.evaluate(
        "() => { const c = window.fieldgate.chart, x = c.plot.scales.x;"
        " return {paused: c.paused, span: x.max - x.min} }"
    )
    assert zoomed["paused"] and 0 < zoomed["span"] < 4, zoomed  # of a 10 s window
    assert page.locator("#pause").inner_text() == "Resume"

    # Export: the rows of the last minute as stored, with the device's counter skipping
    # where the monitor was unplugged.
    page.click("#export-view")  # the zoomed stretch, in the gateway's clock
    shown = [
        dt.datetime.fromisoformat(page.input_value(f"#export input[name={end}]"))
        for end in ("from", "to")
    ]
    assert 0 < (shown[1] - shown[0]).total_seconds() <= 5, shown
    with page.expect_download() as download:
        page.evaluate(
            "() => { const f = document.getElementById('export');"
            " f.elements.from.value = new Date(Date.now() - 60000).toISOString().slice(0, 19);"
            " f.elements.to.value = new Date(Date.now() + 5000).toISOString().slice(0, 19);"
            " f.requestSubmit(); }"
        )
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "seq,received_at,n,t,lead_i,lead_ii,lead_iii"
    counters = [int(line.split(",")[2]) for line in lines[1:]]
    seq = [int(line.split(",")[0]) for line in lines[1:]]
    assert seq == list(range(seq[0], seq[0] + len(seq)))  # every row stored, in order
    jumps = [b - a - 1 for a, b in zip(counters, counters[1:], strict=False) if b != a + 1]
    assert jumps == [unplug["lines_lost"]]

    # The gateway stopped (offline): a fresh page reads its last minute back, the unplug in
    # it found from the device's counter as the reader found it.
    assert reader.stop() == 0
    page.reload()
    page.select_option("#history-span", "60")
    page.click("#history")
    page.wait_for_function("() => window.fieldgate.history", timeout=15_000)
    answer = page.evaluate("() => window.fieldgate.history")
    assert answer["first_seq"] == 0 and answer["rows"] == answer["last_seq"] + 1, answer
    back = page.evaluate(
        "() => { const c = window.fieldgate.chart; return {channels: c.channels,"
        " gaps: c.gaps.map(g => [g.kind, g.missing]), draws: c.stats.draws} }"
    )
    assert back["channels"] == 3 and back["draws"] >= 1, back
    assert back["gaps"] == [["device", unplug["lines_lost"]]], back

    # A lane per channel: each channel on its own scale.
    page.select_option("#mode", "lanes")
    scales = page.evaluate("() => Object.keys(window.fieldgate.chart.plot.scales)")
    assert {"y0", "y1", "y2"} <= set(scales), scales
    page.wait_for_function("() => window.fieldgate.chart.plot.series[3].scale === 'y2'")
    # A phone: the chart follows its container.
    page.set_viewport_size({"width": 390, "height": 800})
    page.wait_for_function("() => window.fieldgate.chart.plot.width <= 390", timeout=5_000)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 400
    page.screenshot(path=str(ARTIFACTS / "gateway-phone.png"), full_page=True)


def test_rows_with_record_types_are_drawn_one_chosen_type_at_a_time(
    site, browser, firmware_sim, processes, reader_env
):
    sim = firmware_sim("--format", "nmea0183", "--terminator", "crlf", "--rate", "50")
    env = reader_env(
        stream_url=site.ingest_url, stream_token=site.login.token, line_format="nmea0183"
    )
    processes.gateway("reader", "--port", str(sim.port), "--mode", "demo", env=env)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, site, f"/gateways/{site.login.gateway_id}/")
    page.wait_for_function(
        "() => document.querySelectorAll('#record-type option').length >= 3"
        " && window.fieldgate.chart.channels > 0 && window.fieldgate.stats.draws > 2",
        timeout=20_000,
    )
    types = page.locator("#record-type option").all_inner_texts()
    assert "GPGGA" in types or "GNGGA" in types, types
    gga = next(t for t in types if t.endswith("GGA"))
    page.select_option("#record-type", gga)
    page.wait_for_function(
        "() => window.fieldgate.stats.draws > 0 && window.fieldgate.chart.channels > 0"
    )
    labels = page.locator("#channels label").all_inner_texts()
    assert labels and all(label.strip().startswith(f"{gga} field ") for label in labels), labels
    draws = stats(page)["draws"]
    wait_for(lambda: stats(page)["draws"] > draws, 10, message="the chosen type drawn")
    assert stats(page)["gaps"] == 0  # every seq arrived: the other types are not a gap
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "gateway-record-types.png"))


def test_the_fleet_page_shows_the_gateway_online_live(
    site, browser, firmware_sim, processes, reader_env
):
    page = browser.new_page()
    page.goto(f"{site.base}/accounts/login/")
    page.fill("input[name=username]", site.login.user)
    page.fill("input[name=password]", site.login.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.base}/")
    row = page.locator(f"tr[data-name='{site.login.gateway_id}']")
    assert row.locator(".state").inner_text() == "offline"
    assert row.locator(".alerts [data-alert]").evaluate_all(
        "bs => bs.map(b => b.dataset.alert)"
    ) == ["offline"]
    sim = firmware_sim("--rate", "1000", "--channels", "4")
    env = reader_env(
        stream_url=site.ingest_url, stream_token=site.login.token, stream_heartbeat_seconds=0.5
    )
    processes.gateway("reader", "--port", str(sim.port), "--mode", "full", env=env)
    # No reload: the row changes through the fleet socket.
    cell = f"document.querySelector(\"tr[data-name='{site.login.gateway_id}'] .%s\").textContent"
    page.wait_for_function(
        f"() => /^[1-9][0-9,]* [/]s$/.test({cell % 'sample_rate'}) && {cell % 'rejects'} === '0'",
        timeout=20_000,
    )

    def shown_rate() -> float:
        return float(row.locator(".sample_rate").inner_text().split()[0].replace(",", ""))

    # The simulator's 1 kHz, measured over a 0.5 s heartbeat: one may be off on a busy machine.
    wait_for(lambda: 800 < shown_rate() < 1200, 10, message="a rate near 1 kHz on the page")
    assert row.locator(".state").inner_text() == "online"
    assert re.fullmatch(r"[0-9.,]+ [MG]iB \([0-9]+%\)", row.locator(".disk_free").inner_text())
    assert re.fullmatch(r"none|[0-9,]+ batch.*", row.locator(".upload_backlog").inner_text())
    page.wait_for_function(  # two heartbeats with a rate: the sparkline has a line
        f"() => /L/.test(document.querySelector(\"tr[data-name='{site.login.gateway_id}'] "
        ".rates path\").getAttribute('d'))",
        timeout=10_000,
    )
    # Online now: the offline badge went; no uploader runs here, so none about uploads.
    badges = row.locator(".alerts [data-alert]").evaluate_all("bs => bs.map(b => b.dataset.alert)")
    assert "offline" not in badges and not any(b.startswith("upload") for b in badges), badges
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "fleet-page.png"))

    # The page's script writes values as the server does (web/fleet/display.py).
    cases = [
        None, 0, 5 * 2**20 + 1, 1536 * 2**20, 123 * 2**30, 12_345 * 2**30,
    ]  # fmt: skip
    backlogs = [None, {"batches": 0}, {"batches": 1, "bytes": 2**20},
                {"batches": 1200, "bytes": 5 * 2**30, "age_seconds": 7300}]  # fmt: skip
    scripted = page.evaluate(
        "([sizes, backlogs]) => { const f = window.fieldgateFleet; return {"
        " sizes: sizes.map(f.size), disks: sizes.map((s) => f.disk(s, 30 * 2**30)),"
        " backlogs: backlogs.map(f.backlog), rates: [null, 0, 1234.6].map(f.rate),"
        " ages: [45, 600, 7200, 3 * 86400].map(f.duration),"
        " spark: f.sparkline([10, null, 480, 500.04]) } }",
        [cases, backlogs],
    )
    assert scripted == {
        "sizes": [display.size(c) for c in cases],
        "disks": [display.disk(c, 30 * 2**30) for c in cases],
        "backlogs": [display.backlog(b) for b in backlogs],
        "rates": [display.rate(r) for r in (None, 0, 1234.6)],
        "ages": [display.duration(s) for s in (45, 600, 7200, 3 * 86400)],
        "spark": display.sparkline([10, None, 480, 500.04]).replace(".0 ", " ").replace(".0", ""),
    }

    # Served without scripts: formatted values, never Python's.
    bare = browser.new_context(java_script_enabled=False).new_page()
    log_in(bare, site, "/")
    cells = bare.locator("#fleet tbody td").all_inner_texts()
    assert cells and not [c for c in cells if re.search(r"\{'|None|True|False|\[", c)], cells
    served = bare.locator(f"tr[data-name='{site.login.gateway_id}']")
    assert re.fullmatch(r"[0-9,]+ /s", served.locator(".sample_rate").inner_text())
    assert served.locator(".disk_free").inner_text() != "–"
    bare.screenshot(path=str(ARTIFACTS / "fleet-page-no-script.png"))
