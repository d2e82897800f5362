// The live waveform on uPlot (chosen over Chart.js + chartjs-plugin-streaming by measured
// frame time: docs/web.md). Frames are min/max buckets (docs/stream-protocol.md); each bucket
// is drawn as two points at its time, min then max, so a spike shows at any zoom.
//
// Nothing missing is drawn over: the line breaks (a null point, uPlot's gaps) and the place is
// shaded and labelled wherever
//  - the gateway says lines were lost before a frame (`gap`: the device counter skipped, the
//    port was away): counted as the reader counts them,
//  - seq has a hole (frames that did not reach this view),
//  - device time jumps with nothing said (a device without a counter went quiet).
"use strict";
const FIELDGATE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
const FIELDGATE_MAX_SECONDS = 60; // kept while paused, whatever the window
const FIELDGATE_MAX_POINTS = 1000000; // per channel: about 17 minutes of 500 buckets/s
// Device time jumping further than this, and than 10 times its usual step, breaks the line.
const FIELDGATE_SILENCE_SECONDS = 0.25;
const FIELDGATE_CLOCK_STEPS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

function fieldgateClock(seconds, zone, withDate) {
  const d = new Date(seconds * 1000);
  const utc = zone === "utc";
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  const h = utc ? d.getUTCHours() : d.getHours(), m = utc ? d.getUTCMinutes() : d.getMinutes();
  const s = utc ? d.getUTCSeconds() : d.getSeconds();
  let text = pad(h) + ":" + pad(m) + ":" + pad(s);
  if (withDate) {
    const y = utc ? d.getUTCFullYear() : d.getFullYear(), mo = (utc ? d.getUTCMonth() : d.getMonth()) + 1;
    const day = utc ? d.getUTCDate() : d.getDate();
    text = y + "-" + pad(mo) + "-" + pad(day) + " " + text;
  }
  return text + (utc ? " UTC" : "");
}

class FieldgateChart {
  constructor(element, options) {
    this.element = element;
    this.windowSeconds = options.windowSeconds || 10;
    this.names = options.names || [];
    this.fixedWidth = options.width || null; // null: follow the container
    this.fixedHeight = options.height || null;
    this.mode = options.mode || "shared"; // "shared" y axis, or one "lanes" per channel
    this.clock = options.clock || "utc"; // wall-clock axis: "utc" or "local"
    this.paused = false;
    this.onZoom = null; // called when a person drags to zoom
    this.hidden = new Set();
    this.plot = null;
    this.channels = 0;
    this.xs = []; this.ys = [];
    this.gaps = []; // {t0, t1, kind: "device"|"delivery"|"silence", missing, seconds}
    this.events = []; // every gap since the page opened, newest last (the page lists them)
    this.lastSeq = null; this.lastT = null;
    this.frameStarts = []; // {i: index in xs, seq, t} of each frame held: trimmed whole
    this.keepSeconds = null; // while history is shown: how much to keep (else the window)
    this.counting = true; // history read back is drawn but not counted as live losses
    this.wallOffset = null; // gateway wall clock minus device time, from the latest frame
    this.step = null; // the usual step of device time between buckets (a moving average)
    this.dirty = false;
    this.drawStartedAt = null;
    this.stats = {
      frames: 0, samples: 0, pointsPlotted: 0, draws: 0, frameTimes: [],
      gaps: 0, missing: 0, // every break in the line, and the samples missing there
      deviceGaps: 0, deviceLinesLost: 0, outages: 0, outageSeconds: 0, // as the reader counted
      deliveryGaps: 0, deliveryMissing: 0, silences: 0,
    };
    if (typeof ResizeObserver !== "undefined") {
      this.resizer = new ResizeObserver(() => this.resize());
      this.resizer.observe(element);
    }
  }

  size() {
    const width = this.fixedWidth || Math.max(200, Math.floor(this.element.clientWidth || 600));
    const fit = Math.round((window.innerHeight || 800) * 0.6);
    const lanes = this.mode === "lanes" ? Math.max(1, this.channels - this.hidden.size) : 1;
    const height = this.fixedHeight || Math.min(Math.max(fit, 220, lanes * 70), 720);
    return { width: width, height: height };
  }

  resize() {
    if (!this.plot) return;
    const size = this.size();
    if (size.width !== this.plot.width || size.height !== this.plot.height) this.plot.setSize(size);
  }

  laneRange(channel) {
    const chart = this;
    return (u, min, max) => {
      const visible = [];
      for (let c = 0; c < chart.channels; c++) if (!chart.hidden.has(c)) visible.push(c);
      const lanes = Math.max(1, visible.length), lane = Math.max(0, visible.indexOf(channel));
      if (min == null || max == null) { min = -1; max = 1; }
      let span = max - min; if (!(span > 0)) span = Math.abs(max) || 1;
      const low = min - span * 0.08, height = span * 1.16;
      const bottom = low - height * (lanes - 1 - lane);
      return [bottom, bottom + height * lanes];
    };
  }

  build(channels) {
    if (this.plot) this.plot.destroy();
    this.channels = channels;
    if (this.ys.length !== channels) { this.xs = []; this.ys = Array.from({ length: channels }, () => []); }
    const lanes = this.mode === "lanes";
    const series = [{ label: "device t (s)" }];
    const scales = { x: { time: false }, y: {} };
    for (let c = 0; c < channels; c++) {
      const scale = lanes ? "y" + c : "y";
      if (lanes) scales[scale] = { range: this.laneRange(c) };
      series.push({
        label: this.names[c] || "ch" + c, stroke: FIELDGATE_COLORS[c % FIELDGATE_COLORS.length],
        width: 1, spanGaps: false, points: { show: false }, show: !this.hidden.has(c), scale: scale,
      });
    }
    const chart = this;
    const clockAxis = {
      scale: "x", side: 0, label: this.clock === "utc" ? "gateway clock (UTC)" : "gateway clock (local)",
      labelSize: 20, size: 36, space: 90, incrs: FIELDGATE_CLOCK_STEPS, grid: { show: false },
      splits: (u, axis, min, max, step) => chart.clockSplits(min, max, step),
      values: (u, splits, axis, space, step) => splits.map((t) => chart.clockLabel(t, step)),
    };
    // Rows without a device time (record types, csv without t) are drawn at the time of their
    // read, the gateway's clock: then that is the one time axis, below.
    const yAxis = lanes ? { scale: "y0", show: false }
      : { scale: "y", size: (u, values) => values ? 14 + 7 * Math.max(3, ...values.map((v) => String(v).length)) : 50 };
    const axes = this.unixTime
      ? [{ ...clockAxis, side: 2, grid: { show: true } }, yAxis]
      : [{ scale: "x", label: "device time (s)", labelSize: 20 }, clockAxis, yAxis];
    this.plot = new uPlot({
      ...this.size(), series: series, scales: scales, axes: axes,
      // Drag across the chart to zoom into a stretch of time (the page pauses, so it stays);
      // a double click zooms out again.
      cursor: { drag: { x: true, y: false, setScale: true } },
      hooks: {
        draw: [(u) => chart.drew(u)],
        setSelect: [(u) => { if (u.select.width > 0 && chart.onZoom) chart.onZoom(); }],
      },
    }, [this.xs, ...this.ys], this.element);
  }

  // Ticks of the clock axis at round times of the gateway's clock, not of device time.
  clockSplits(min, max, step) {
    const offset = this.wallOffset || 0, splits = [];
    for (let wall = Math.ceil((min + offset) / step) * step; wall <= max + offset; wall += step) splits.push(wall - offset);
    return splits;
  }

  clockLabel(t, step) {
    if (this.wallOffset === null) return "";
    const wall = t + this.wallOffset;
    let text = fieldgateClock(Math.round(wall * 10) / 10, this.clock).replace(" UTC", "");
    if (step < 1) text += "." + String(Math.round(wall * 10) % 10);
    return text;
  }

  breakLine(t0, t1, gap) {
    this.gaps.push({ t0: t0, t1: t1, ...gap });
    if (this.xs.length) { this.xs.push(t0); for (const y of this.ys) y.push(null); }
    if (!this.counting) return;
    this.events.push({ t0: t0, t1: t1, wall: this.wallOffset === null ? null : t0 + this.wallOffset, ...gap });
    if (this.events.length > 200) this.events.shift();
    this.stats.gaps += 1; this.stats.missing += gap.missing || 0;
  }

  // Add one frame message; returns the number of samples missing before it (0: contiguous).
  addFrame(frame) {
    const channels = frame.min.length;
    const gap = frame.gap || null;
    let missing = 0;
    if (frame.t.length === 0) { // rows that cannot be drawn (record types): seq goes on
      this.lastSeq = frame.seq[1];
      return 0;
    }
    const t0 = frame.t[0];
    if (channels !== this.channels) { this.unixTime = t0 > 1e8; this.build(channels); }
    this.wallOffset = frame.received_at - t0;
    const restarted = this.lastT !== null && t0 < this.lastT;
    if (restarted) { // the device restarted: its clock went back
      this.xs.length = 0; for (const y of this.ys) y.length = 0; this.gaps = []; this.frameStarts = [];
    }
    const from = restarted ? t0 : this.lastT;
    const gapsBefore = this.stats.gaps;
    const counted = this.counting ? this.stats : {};
    if (gap && (gap.device_lines > 0 || gap.outage_seconds != null)) {
      counted.deviceGaps += gap.device_lines > 0 ? 1 : 0;
      counted.deviceLinesLost += gap.device_lines;
      if (gap.outage_seconds != null) { counted.outages += 1; counted.outageSeconds += gap.outage_seconds; }
      missing += gap.device_lines;
      this.breakLine(from === null ? t0 : from, t0, { kind: "device", missing: gap.device_lines, seconds: gap.outage_seconds });
    }
    if (this.lastSeq !== null && !restarted && frame.seq[0] > this.lastSeq + 1) {
      const lost = frame.seq[0] - this.lastSeq - 1;
      missing += lost;
      counted.deliveryGaps += 1; counted.deliveryMissing += lost;
      this.breakLine(from === null ? t0 : from, t0, { kind: "delivery", missing: lost });
    } else if (!gap && this.lastT !== null && !restarted &&
               t0 - this.lastT > Math.max(FIELDGATE_SILENCE_SECONDS, 10 * (this.step || 0))) {
      counted.silences += 1;
      this.breakLine(this.lastT, t0, { kind: "silence", missing: 0, seconds: t0 - this.lastT });
    }
    const xs = this.xs, n = frame.t.length;
    this.frameStarts.push({ i: xs.length, seq: frame.seq[0], t: t0 });
    let previous = restarted || gapsBefore !== this.stats.gaps ? null : this.lastT; // no step over a break
    for (let i = 0; i < n; i++) {
      const t = frame.t[i]; xs.push(t, t);
      if (previous !== null && t > previous) {
        const delta = t - previous;
        this.step = this.step === null ? delta : this.step * 0.95 + Math.min(delta, 10 * this.step) * 0.05;
      }
      previous = t;
    }
    for (let c = 0; c < channels; c++) {
      const y = this.ys[c], low = frame.min[c], high = frame.max[c];
      for (let i = 0; i < n; i++) y.push(low[i], high[i]);
    }
    this.lastSeq = frame.seq[1]; this.lastT = frame.t[n - 1];
    if (this.counting) { this.stats.frames += 1; this.stats.samples += frame.samples; }
    this.trim(this.keep());
    this.dirty = true;
    return missing;
  }

  keep() {
    if (this.keepSeconds !== null) return Math.max(this.keepSeconds, this.windowSeconds);
    return this.paused ? FIELDGATE_MAX_SECONDS : this.windowSeconds;
  }

  // Drop what is older than `seconds` before the newest point, whole frames only (so the
  // oldest seq held is a frame's first: history read back joins it without a hole).
  // Whatever is kept, at most FIELDGATE_MAX_POINTS points per channel (live data arriving
  // while history is shown would otherwise grow for as long as it is shown).
  trim(seconds) {
    const xs = this.xs;
    if (!xs.length) return;
    const from = xs[xs.length - 1] - seconds;
    const excess = xs.length - FIELDGATE_MAX_POINTS;
    if (xs[0] >= from && excess <= 0) return;
    const starts = this.frameStarts;
    let k = 0;
    while (k + 1 < starts.length && (starts[k + 1].t <= from || starts[k].i < excess)) k += 1;
    const low = starts.length ? starts[k].i : 0;
    if (low <= 0) return;
    xs.splice(0, low); for (const y of this.ys) y.splice(0, low);
    starts.splice(0, k);
    for (const start of starts) start.i -= low;
    while (this.gaps.length && this.gaps[0].t1 < xs[0]) this.gaps.shift();
  }

  oldestSeq() { return this.frameStarts.length ? this.frameStarts[0].seq : null; }

  // History read back (frames ending just before the oldest seq held) goes in front of what
  // is held; a hole at the joint shows as any other.
  prependFrames(frames) {
    if (!frames.length) return;
    const held = { xs: this.xs, ys: this.ys, gaps: this.gaps, starts: this.frameStarts, lastSeq: this.lastSeq, lastT: this.lastT };
    const heldStep = this.step;
    this.xs = []; this.ys = Array.from({ length: this.channels }, () => []); this.gaps = []; this.frameStarts = [];
    this.lastSeq = null; this.lastT = null;
    const keepSeconds = this.keepSeconds; this.keepSeconds = Infinity; this.counting = false;
    try {
      // (an offline gateway's page has no channels yet: the history's frames set them)
      for (const frame of frames) {
        if (!this.channels || frame.min.length === this.channels || frame.t.length === 0) this.addFrame(frame);
      }
      const joint = held.starts.length ? held.starts[0] : null;
      if (joint && this.lastSeq !== null && joint.seq > this.lastSeq + 1) {
        this.breakLine(this.lastT, joint.t, { kind: "delivery", missing: joint.seq - this.lastSeq - 1 });
      }
    } finally { this.keepSeconds = keepSeconds; this.counting = true; this.step = heldStep; }
    const offset = this.xs.length;
    this.xs.push(...held.xs);
    held.ys.forEach((y, c) => this.ys[c].push(...y));
    this.gaps.push(...held.gaps);
    for (const start of held.starts) this.frameStarts.push({ ...start, i: start.i + offset });
    this.lastSeq = held.lastSeq; this.lastT = held.lastT;
    this.dirty = true;
  }

  // Call once per animation frame: redraws only when new data came and not paused.
  draw() {
    if (!this.plot || !this.dirty || this.paused) return;
    this.dirty = false;
    this.trim(this.keep());
    this.drawStartedAt = performance.now();
    this.plot.setData([this.xs, ...this.ys]);
  }

  static gapLabel(gap) {
    const parts = [];
    if (gap.kind === "device") {
      if (gap.seconds != null) parts.push("port out " + gap.seconds.toFixed(2) + " s");
      if (gap.missing) parts.push(gap.missing + " samples lost");
    } else if (gap.kind === "delivery") {
      parts.push(gap.missing + " samples not delivered");
    } else {
      parts.push("no data " + gap.seconds.toFixed(2) + " s");
    }
    return parts.join(", ");
  }

  drew(u) {
    const ctx = u.ctx, ratio = window.devicePixelRatio || 1;
    ctx.save();
    if (this.mode === "lanes") this.drawLanes(u, ratio);
    ctx.font = Math.round(11 * ratio) + "px system-ui, sans-serif";
    ctx.textBaseline = "top"; ctx.textAlign = "left";
    for (const gap of this.gaps) {
      const left = u.valToPos(gap.t0, "x", true), right = u.valToPos(gap.t1, "x", true);
      if (right < u.bbox.left || left > u.bbox.left + u.bbox.width) continue;
      ctx.fillStyle = gap.kind === "delivery" ? "rgba(230, 140, 0, 0.18)" : "rgba(200, 40, 40, 0.16)";
      const width = Math.max(2 * ratio, right - left);
      ctx.fillRect(left, u.bbox.top, width, u.bbox.height);
      ctx.fillStyle = gap.kind === "delivery" ? "#8a4b00" : "#a11";
      ctx.fillRect(left, u.bbox.top, Math.max(1, ratio), u.bbox.height);
      ctx.fillText(FieldgateChart.gapLabel(gap), left + 3 * ratio, u.bbox.top + 3 * ratio);
    }
    ctx.restore();
    if (this.drawStartedAt !== null) {
      const times = this.stats.frameTimes;
      times.push(performance.now() - this.drawStartedAt);
      if (times.length > 300) times.shift();
      this.drawStartedAt = null;
      this.stats.draws += 1;
      this.stats.pointsPlotted += this.xs.length * this.channels;
    }
  }

  // Lanes: a rule between lanes, each lane's name and the range of its values in view.
  drawLanes(u, ratio) {
    const ctx = u.ctx;
    ctx.font = Math.round(11 * ratio) + "px system-ui, sans-serif";
    ctx.textBaseline = "top"; ctx.textAlign = "left";
    for (let c = 0; c < this.channels; c++) {
      if (this.hidden.has(c)) continue;
      const scale = u.scales["y" + c];
      if (!scale || scale.min == null) continue;
      const top = u.valToPos(scale.max, "y" + c, true), bottom = u.valToPos(scale.min, "y" + c, true);
      let low = Infinity, high = -Infinity;
      for (const v of this.ys[c]) if (v !== null) { if (v < low) low = v; if (v > high) high = v; }
      const lanes = Math.max(1, this.channels - this.hidden.size);
      const laneHeight = (bottom - top) / lanes;
      const laneTop = u.valToPos(high === -Infinity ? 0 : high, "y" + c, true);
      ctx.fillStyle = FIELDGATE_COLORS[c % FIELDGATE_COLORS.length];
      const text = (this.names[c] || "ch" + c) + (high === -Infinity ? "" : "  " + low.toPrecision(3) + " … " + high.toPrecision(3));
      ctx.fillText(text, u.bbox.left + 4 * ratio, Math.max(u.bbox.top, laneTop - 14 * ratio));
      ctx.strokeStyle = "#e3e6eb"; ctx.lineWidth = ratio;
      const rule = Math.round(laneTop - laneHeight * 0.04);
      if (rule > u.bbox.top + 2) { ctx.beginPath(); ctx.moveTo(u.bbox.left, rule); ctx.lineTo(u.bbox.left + u.bbox.width, rule); ctx.stroke(); }
    }
  }

  // Forget what is drawn (another record type was chosen): its channels are other ones.
  clear(names) {
    this.names = names; this.xs = []; this.ys = []; this.gaps = []; this.frameStarts = [];
    this.lastSeq = null; this.lastT = null; this.step = null; this.hidden.clear();
    if (this.plot) { this.plot.destroy(); this.plot = null; }
    this.channels = 0;
  }

  setWindow(seconds) { this.windowSeconds = seconds; this.dirty = true; }
  setPaused(paused) { this.paused = paused; this.dirty = true; }
  // Show `seconds` (history included) until `live()`; the drawing stops following the edge.
  showHistory(seconds) { this.keepSeconds = seconds; this.windowSeconds = seconds; this.paused = false; this.dirty = true; this.draw(); this.paused = true; }
  live(windowSeconds) { this.keepSeconds = null; this.windowSeconds = windowSeconds; this.paused = false; this.dirty = true; }
  setMode(mode) { this.mode = mode; if (this.plot) { this.build(this.channels); this.dirty = true; } }
  setClock(clock) { this.clock = clock; if (this.plot) { this.build(this.channels); this.dirty = true; } }
  toggle(channel, show) {
    if (show) this.hidden.delete(channel); else this.hidden.add(channel);
    if (!this.plot) return;
    if (this.mode === "lanes") { this.build(this.channels); this.dirty = true; }
    else this.plot.setSeries(channel + 1, { show: show });
  }
}
