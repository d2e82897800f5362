// The live waveform on uPlot (chosen over Chart.js + chartjs-plugin-streaming by measured
// frame time: docs/web.md). Frames are min/max buckets (docs/stream-protocol.md); each bucket
// is drawn as two points at its time, min then max, so a spike shows at any zoom. A hole in
// seq breaks the line (a null point) and is shaded, with the number of samples missing.
"use strict";
const FIELDGATE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
const FIELDGATE_MAX_SECONDS = 60; // kept while paused, whatever the window

class FieldgateChart {
  constructor(element, options) {
    this.element = element;
    this.windowSeconds = options.windowSeconds || 10;
    this.names = options.names || [];
    this.width = options.width || Math.max(600, element.clientWidth || 900);
    this.height = options.height || 420;
    this.paused = false;
    this.hidden = new Set();
    this.plot = null;
    this.channels = 0;
    this.xs = []; this.ys = [];
    this.gaps = []; // {t0, t1, missing}
    this.lastSeq = null; this.lastT = null;
    this.dirty = false;
    this.drawStartedAt = null;
    this.stats = { frames: 0, samples: 0, pointsPlotted: 0, draws: 0, gaps: 0, missing: 0, frameTimes: [] };
  }

  build(channels) {
    if (this.plot) this.plot.destroy();
    this.channels = channels;
    this.xs = []; this.ys = Array.from({ length: channels }, () => []);
    const series = [{ label: "t (s)" }];
    for (let c = 0; c < channels; c++) {
      series.push({
        label: this.names[c] || "ch" + c, stroke: FIELDGATE_COLORS[c % FIELDGATE_COLORS.length],
        width: 1, spanGaps: false, points: { show: false }, show: !this.hidden.has(c),
      });
    }
    const chart = this;
    this.plot = new uPlot({
      width: this.width, height: this.height, series: series,
      scales: { x: { time: false } },
      axes: [{ label: "device time (s)" }, {}],
      cursor: { drag: { x: false, y: false } },
      hooks: {
        draw: [(u) => chart.drew(u)],
      },
    }, [this.xs, ...this.ys], this.element);
  }

  // Add one frame message; returns the number of samples missing before it (0: contiguous).
  addFrame(frame) {
    const channels = frame.min.length;
    if (frame.t.length === 0) { this.lastSeq = frame.seq[1]; return 0; }
    if (channels !== this.channels) this.build(channels);
    const t0 = frame.t[0];
    let missing = 0;
    if (this.lastT !== null && t0 < this.lastT) { // the device restarted: its clock went back
      this.xs.length = 0; for (const y of this.ys) y.length = 0; this.gaps = [];
    } else if (this.lastSeq !== null && frame.seq[0] !== this.lastSeq + 1) {
      missing = frame.seq[0] - this.lastSeq - 1;
      if (missing > 0) {
        this.stats.gaps += 1; this.stats.missing += missing;
        this.gaps.push({ t0: this.lastT, t1: t0, missing: missing });
        this.xs.push(this.lastT); for (const y of this.ys) y.push(null);
      }
    }
    const xs = this.xs, n = frame.t.length;
    for (let i = 0; i < n; i++) { const t = frame.t[i]; xs.push(t, t); }
    for (let c = 0; c < channels; c++) {
      const y = this.ys[c], low = frame.min[c], high = frame.max[c];
      for (let i = 0; i < n; i++) y.push(low[i], high[i]);
    }
    this.lastSeq = frame.seq[1]; this.lastT = frame.t[n - 1];
    this.stats.frames += 1; this.stats.samples += frame.samples;
    this.trim(this.paused ? FIELDGATE_MAX_SECONDS : this.windowSeconds);
    this.dirty = true;
    return missing;
  }

  trim(seconds) {
    const xs = this.xs;
    if (!xs.length) return;
    const from = xs[xs.length - 1] - seconds;
    if (xs[0] >= from) return;
    let low = 0, high = xs.length; // first index with x >= from
    while (low < high) { const mid = (low + high) >> 1; if (xs[mid] < from) low = mid + 1; else high = mid; }
    xs.splice(0, low); for (const y of this.ys) y.splice(0, low);
    while (this.gaps.length && this.gaps[0].t1 < from) this.gaps.shift();
  }

  // Call once per animation frame: redraws only when new data came and not paused.
  draw() {
    if (!this.plot || !this.dirty || this.paused) return;
    this.dirty = false;
    this.trim(this.windowSeconds);
    this.drawStartedAt = performance.now();
    this.plot.setData([this.xs, ...this.ys]);
  }

  drew(u) {
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = "rgba(200, 40, 40, 0.15)";
    for (const gap of this.gaps) {
      const left = u.valToPos(gap.t0, "x", true), right = u.valToPos(gap.t1, "x", true);
      ctx.fillRect(left, u.bbox.top, Math.max(2, right - left), u.bbox.height);
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

  setWindow(seconds) { this.windowSeconds = seconds; this.dirty = true; }
  setPaused(paused) { this.paused = paused; this.dirty = true; }
  toggle(channel, show) {
    if (show) this.hidden.delete(channel); else this.hidden.add(channel);
    if (this.plot) this.plot.setSeries(channel + 1, { show: show });
  }
}
