"""bench/web: the live path's speed, each figure against a baseline measured in the same run.

1. Fan-out, one gateway to 1, 10 and 100 viewers: the site (Channels, in-memory layer) on
   uvicorn+uvloop and on Daphne, against a plain ``websockets`` broadcast server. The sender
   keeps at most WINDOW messages ahead of the slowest viewer (closed loop), so the figure is
   what a server sustains without dropping; p99 is the sender-to-viewer latency.
2. Serial to viewer at 8 channels x 1 kHz: firmware-sim -> reader (full mode) -> site ->
   viewer; latency from the reader's read of a frame's oldest sample to the viewer.
3. The browser's chart frame time (setData/update to drawn) with 8 channels x 10 s x 1 kHz in
   view: the site's uPlot chart (web/static/fieldgate/chart.js) against Chart.js 3 with
   chartjs-plugin-streaming, in Debian's headless Chromium.

    python -m bench.web [--seconds 3] [--viewers 1,10,100] [--skip-browser]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import pty_pair, save
from gateway.core.stream_protocol import viewer_message
from gateway.supervise import Supervisor, free_port, listening, wait_for
from gateway.supervise.chain import GATEWAY, LocalSite, manage, read_status
from tests.support.web import CHROMIUM, CHROMIUM_ARGS, REPO, login_cookie, web_env

WINDOW = 50  # messages the sender may be ahead of the slowest viewer
TOKEN = "fgt_bench-token-0123456789abcdef"
DEMO = ("--gateway", "bench", "--token", TOKEN, "--password", "bench-pw-1")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


def frame_text(number: int) -> str:
    """About 200 bytes: a valid one-bucket, two-channel frame."""
    now = time.time()
    return json.dumps(
        {
            "type": "frame",
            "seq": [number, number],
            "received_at": now,
            "sent_at": now,
            "samples": 1,
            "t": [number / 1000],
            "min": [[0.1234], [-0.5]],
            "max": [[0.1234], [-0.5]],
        }
    )


# -- the plain baseline: a websockets broadcast server in its own process ---------------------


async def plain_server(port: int) -> None:
    from websockets.asyncio.server import broadcast, serve

    viewers = set()

    async def handler(socket):
        if socket.request.path.startswith("/send"):
            async for text in socket:
                broadcast(viewers, text)
        else:
            viewers.add(socket)
            try:
                await socket.wait_closed()
            finally:
                viewers.discard(socket)

    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
        await asyncio.Future()


# -- fan-out ----------------------------------------------------------------------------------


async def fan_out(
    sender_url: str,
    viewer_url: str,
    viewers: int,
    seconds: float,
    headers: dict | None = None,
    sender_headers: dict | None = None,
) -> dict:
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    counts = [0] * viewers
    progress = asyncio.Event()
    sockets = []

    async def view(index: int, socket) -> None:
        received, ack_every = 0, 8
        async for text in socket:
            message = viewer_message(text)
            received += 1
            if message["type"] == "hello":
                ack_every = message["ack_every"]
            elif message["type"] == "frame":
                latencies.append(time.time() - message["sent_at"])
                counts[index] += 1
                progress.set()
            if received % ack_every == 0 and headers is not None:
                await socket.send(json.dumps({"type": "ack", "received": received}))

    for _ in range(viewers):
        sockets.append(
            await connect(viewer_url, additional_headers=headers, compression=None, proxy=None)
        )
    tasks = [asyncio.create_task(view(i, s)) for i, s in enumerate(sockets)]
    sender = await connect(
        sender_url, additional_headers=sender_headers, compression=None, proxy=None
    )
    await asyncio.sleep(0.5)
    sent = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        while sent - min(counts) >= WINDOW:
            progress.clear()
            try:
                await asyncio.wait_for(progress.wait(), 2)
            except TimeoutError:
                break
        await sender.send(frame_text(sent))
        sent += 1
    # Let the last messages arrive (or count them as not delivered).
    end = time.perf_counter() + 2
    while min(counts) < sent and time.perf_counter() < end:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    await sender.close()
    for socket in sockets:
        await socket.close()
    for task in tasks:
        task.cancel()
    delivered = min(counts)
    return {
        "viewers": viewers,
        "sent": sent,
        "delivered_to_slowest": delivered,
        "messages_per_s": round(delivered / elapsed, 1),
        "deliveries_per_s": round(sum(counts) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p99_ms": round(p99(latencies) * 1000, 2),
    }


def run_fan_out(kind: str, viewer_counts: list[int], seconds: float, work: Path) -> list[dict]:
    results = []
    with Supervisor(work) as supervisor:
        if kind == "plain":
            port = free_port()
            server = supervisor.start(
                "plain", [sys.executable, "-m", "bench.web", "--plain-server", str(port)], cwd=REPO
            )
            wait_for(lambda: listening(port), 20, f"port {port}", service=server)
            sender, viewer, headers, sender_headers = (
                f"ws://127.0.0.1:{port}/send",
                f"ws://127.0.0.1:{port}/view",
                None,
                None,
            )
        else:
            env = web_env(work / kind)
            manage(env, "demo_setup", *DEMO)
            if kind == "uvicorn":
                port = LocalSite(supervisor, env, name=kind).port
            else:
                port = free_port()
                daphne = str(Path(sys.executable).with_name("daphne"))
                server = supervisor.start(
                    kind,
                    [daphne, "-b", "127.0.0.1", "-p", str(port), "web.asgi:application"],
                    env=env,
                    cwd=REPO,
                )
                wait_for(lambda: listening(port), 30, f"port {port}", service=server)
            base = f"http://127.0.0.1:{port}"
            headers = {"Cookie": login_cookie(base, "demo", "bench-pw-1"), "Origin": base}
            sender_headers = {"Authorization": f"Bearer {TOKEN}", "X-Fieldgate-Gateway": "bench"}
            sender, viewer = (
                f"ws://127.0.0.1:{port}/ws/ingest/",
                f"ws://127.0.0.1:{port}/ws/live/bench/",
            )
        for count in viewer_counts:
            result = asyncio.run(fan_out(sender, viewer, count, seconds, headers, sender_headers))
            result["server"] = kind
            print(f"  fan-out {kind:8s} {count:3d} viewers: {result}", flush=True)
            results.append(result)
    return results


# -- serial to viewer ---------------------------------------------------------------------------


def serial_to_viewer(seconds: float, work: Path) -> dict:
    """Each sample from the moment its line is written to the PTY (what a device does) to the
    moment the frame holding it reaches a logged-in viewer: the relay's gather, the reader, the
    stream, the site and the viewer's socket, all included. 8 channels x 1 kHz, written as due
    every half millisecond; a sample's latency is its frame's arrival minus its own write."""
    from tests.support.web import Viewer

    with Supervisor(work) as supervisor, pty_pair(work / "pty") as (device, port_path):
        env = web_env(work / "site")
        manage(env, "demo_setup", *DEMO)
        port = LocalSite(supervisor, env).port
        base = f"http://127.0.0.1:{port}"
        viewer = Viewer(base, "/ws/live/bench/", login_cookie(base, "demo", "bench-pw-1"))
        samples = int(seconds * 1000)
        reader_env = {
            "GATEWAY_ID": "bench",
            "GATEWAY_DATA_DIR": str(work / "data"),
            "GATEWAY_LINE_FORMAT": "csv-seq",
            "GATEWAY_STREAM_URL": f"ws://127.0.0.1:{port}/ws/ingest/",
            "GATEWAY_STREAM_TOKEN": TOKEN,
            "GATEWAY_LOG_LEVEL": "warning",
        }
        reader = supervisor.start(
            "reader", [GATEWAY, "reader", "--port", str(port_path)], env=reader_env
        )

        def streaming() -> bool:  # the port open and the stream connected: no line waits
            status = read_status(work / "data") or {}
            return status.get("port_state") == "READING" and status["stream"].get("connected")

        wait_for(streaming, 20, "the reader's port and stream", service=reader)
        written = _write_paced(device, samples, rate=1000)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (viewer.seqs()[-1:] or [-1])[0] < samples - 1:
            time.sleep(0.1)
        viewer.stop()
        frames = [(at, m) for at, m in viewer.messages if m["type"] == "frame"]
        latencies = [
            at - written[seq]
            for at, m in frames
            for seq in range(m["seq"][0], m["seq"][1] + 1)
            if seq < samples
        ]
        return {
            "channels": 8,
            "rate_hz": 1000,
            "samples": samples,
            "samples_at_viewer": len(viewer.seqs()),
            "frames": len(frames),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(p99(latencies) * 1000, 1),
            "max_ms": round(max(latencies) * 1000, 1),
        }


def _write_paced(device: Path, samples: int, rate: float) -> list[float]:
    """Write ``samples`` csv-seq lines of 8 channels at ``rate`` lines a second; return the
    Unix time each line was written at."""
    written = [0.0] * samples
    fd = os.open(device, os.O_WRONLY | os.O_NOCTTY)
    try:
        start, n = time.perf_counter(), 0
        while n < samples:
            due = min(samples, int((time.perf_counter() - start) * rate) + 1)
            if due > n:
                block = b"".join(
                    b"%d,%.3f,%s\n"
                    % (i, i / rate, b",".join(b"%.3f" % (i % 97 - c) for c in range(8)))
                    for i in range(n, due)
                )
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view) :]
                now = time.time()
                written[n:due] = [now] * (due - n)
                n = due
            time.sleep(0.0005)
    finally:
        os.close(fd)
    return written


# -- the browser's chart ------------------------------------------------------------------------

CHART_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="{uplot_css}"></head><body><div id="chart"></div>
<canvas id="canvas" width="1200" height="420"></canvas>
{scripts}
<script>
const CHANNELS = 8, RATE = 1000, SECONDS = 10, FPS = 25, PPS = {pps};
function makeFrame(seq0, t0, n, step) {{
  const t = [], min = [], max = [];
  for (let c = 0; c < CHANNELS; c++) {{ min.push([]); max.push([]); }}
  for (let i = 0; i < n; i++) {{
    const tt = t0 + i * step; t.push(tt);
    for (let c = 0; c < CHANNELS; c++) {{
      const v = Math.sin(2 * Math.PI * (1 + c) * tt) + 0.1 * Math.random();
      min[c].push(v - 0.05); max[c].push(v + 0.05);
    }}
  }}
  return {{type: "frame", seq: [seq0, seq0 + n - 1], samples: n, t: t, min: min, max: max}};
}}
window.results = null;
{body}
</script></body></html>"""

UPLOT_BODY = """
const element = document.getElementById("chart");
const chart = new FieldgateChart(element, {windowSeconds: SECONDS, width: 1200, height: 420});
const perFrame = PPS / FPS, step = 1 / PPS;
const fill = makeFrame(0, 0, PPS * SECONDS, step);
chart.addFrame(fill);
let seq = fill.seq[1] + 1, t = PPS * SECONDS * step;
const start = performance.now();
setInterval(() => {
  chart.addFrame(makeFrame(seq, t, perFrame, step));
  seq += perFrame; t += perFrame * step;
}, 1000 / FPS);
function loop() {
  chart.draw();
  if (performance.now() - start < 5000) { requestAnimationFrame(loop); return; }
  const points = chart.xs.length * CHANNELS;
  window.results = {times: chart.stats.frameTimes.slice(20), points: points};
}
requestAnimationFrame(loop);
"""

CHARTJS_BODY = """
const times = []; let t0 = 0;
const datasets = [];
for (let c = 0; c < CHANNELS; c++) {
  const color = "hsl(" + c * 45 + ",70%,45%)";
  datasets.push({data: [], borderWidth: 1, pointRadius: 0, borderColor: color});
}
const now0 = Date.now();
// Pre-fill 10 s at 1 kHz, then stream 40 samples per channel every 40 ms.
for (let i = 0; i < RATE * SECONDS; i++) {
  for (let c = 0; c < CHANNELS; c++) {
    const y = Math.sin(2 * Math.PI * (1 + c) * i / RATE);
    datasets[c].data.push({x: now0 - SECONDS * 1000 + i, y: y});
  }
}
function refresh(c) {
  const now = Date.now();
  for (let i = 0; i < RATE / FPS; i++) {
    for (const d of c.data.datasets) d.data.push({x: now - RATE / FPS + i, y: Math.random()});
  }
}
const timer = {
  id: "timer",
  beforeUpdate: () => { t0 = performance.now(); },
  afterDraw: () => { if (t0) times.push(performance.now() - t0); t0 = 0; },
};
const realtime = {duration: SECONDS * 1000, refresh: 1000 / FPS, delay: 0, onRefresh: refresh};
const chart = new Chart(document.getElementById("canvas"), {
  type: "line",
  data: {datasets: datasets},
  options: {
    animation: false, parsing: false, normalized: true, responsive: false, spanGaps: false,
    plugins: {legend: {display: false}, tooltip: {enabled: false}, streaming: {frameRate: 60}},
    scales: {x: {type: "realtime", realtime: realtime}},
  },
  plugins: [timer],
});
setTimeout(() => {
  const points = datasets.reduce((a, d) => a + d.data.length, 0);
  window.results = {times: times.slice(20), points: points};
}, 5000);
"""


def chart_frame_times(work: Path) -> dict:
    from playwright.sync_api import sync_playwright

    modules = REPO / "node_modules"  # Chart.js and its plugins: npm dev dependencies
    uplot = REPO / "web" / "static" / "vendor" / "uplot"  # the site's own copy
    static = REPO / "web" / "static" / "fieldgate"
    pages = {
        "uplot (site chart, 500 buckets/s: 10 s x 1 kHz as min/max)": (
            [uplot / "uPlot.iife.min.js", static / "chart.js"],
            UPLOT_BODY,
            500,
        ),
        "uplot (site chart, every sample: 1000 buckets/s)": (
            [uplot / "uPlot.iife.min.js", static / "chart.js"],
            UPLOT_BODY,
            1000,
        ),
        "chart.js 3 + chartjs-plugin-streaming (every sample)": (
            [
                modules / "chart.js/dist/chart.min.js",
                modules / "luxon/build/global/luxon.min.js",
                modules / "chartjs-adapter-luxon/dist/chartjs-adapter-luxon.umd.min.js",
                modules / "chartjs-plugin-streaming/dist/chartjs-plugin-streaming.min.js",
            ],
            CHARTJS_BODY,
            1000,
        ),
    }
    results = {}
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for name, (scripts, body, pps) in pages.items():
                html = CHART_PAGE.format(
                    uplot_css=(uplot / "uPlot.min.css").as_uri(),
                    scripts="\n".join(f'<script src="{p.as_uri()}"></script>' for p in scripts),
                    body=body,
                    pps=pps,
                )
                path = work / f"chart-{len(results)}.html"
                path.write_text(html)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors = []
                page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
                page.goto(path.as_uri())
                page.wait_for_function("() => window.results !== null", timeout=30_000)
                data = page.evaluate("() => window.results")
                page.close()
                times = data["times"]
                if errors or not times:
                    results[name] = {"error": errors[:3] or ["no frames drawn"]}
                    continue
                results[name] = {
                    "points_in_view": data["points"],
                    "frames": len(times),
                    "median_ms": round(statistics.median(times), 2),
                    "p95_ms": round(sorted(times)[int(len(times) * 0.95)], 2),
                }
                print(f"  chart {name}: {results[name]}", flush=True)
        finally:
            browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.web")
    parser.add_argument("--seconds", type=float, default=3.0, help="per fan-out point")
    parser.add_argument("--viewers", default="1,10,100")
    parser.add_argument("--servers", default="plain,uvicorn,daphne")
    parser.add_argument("--serial-seconds", type=float, default=10.0)
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--plain-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plain_server:
        try:
            import uvloop

            uvloop.run(plain_server(args.plain_server))
        except ImportError:
            asyncio.run(plain_server(args.plain_server))
        return 0
    os.environ.setdefault("FIELDGATE_WEB_LOG_LEVEL", "warning")
    viewer_counts = [int(v) for v in args.viewers.split(",")]
    result: dict = {"window": WINDOW, "seconds_per_point": args.seconds}
    with tempfile.TemporaryDirectory(prefix="bench-web-") as directory:
        work = Path(directory)
        fan = []
        for kind in args.servers.split(","):
            (work / kind).mkdir()
            fan += run_fan_out(kind, viewer_counts, args.seconds, work / kind)
        result["fan_out"] = fan
        plain = {r["viewers"]: r["messages_per_s"] for r in fan if r["server"] == "plain"}
        result["fan_out_ratio_to_plain"] = {
            f"{r['server']}@{r['viewers']}": round(r["messages_per_s"] / plain[r["viewers"]], 3)
            for r in fan
            if r["server"] != "plain" and plain.get(r["viewers"])
        }
        print(f"  ratios to plain: {result['fan_out_ratio_to_plain']}", flush=True)
        (work / "serial").mkdir()
        result["serial_to_viewer"] = serial_to_viewer(args.serial_seconds, work / "serial")
        print(f"  serial to viewer: {result['serial_to_viewer']}", flush=True)
        if not args.skip_browser:
            result["chart_frame_time"] = chart_frame_times(work)
    path = save("web", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
