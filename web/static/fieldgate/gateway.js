// The gateway page: one viewer socket feeding the chart, plus the controls.
"use strict";
(function () {
  const element = document.getElementById("chart");
  const name = element.dataset.gateway;
  const namesScript = document.getElementById("channel-names");
  const names = (namesScript && JSON.parse(namesScript.textContent)) || [];
  const chart = new FieldgateChart(element, { windowSeconds: 10, names: names.slice(-64) });
  const state = document.getElementById("state");
  const lagging = document.getElementById("lagging");
  const stats = document.getElementById("stats");
  const pause = document.getElementById("pause");
  const channelsBox = document.getElementById("channels");
  let dropped = 0, lostUpstream = 0, lastDropAt = 0, lastFrameAt = 0;
  let latency = null, baseline = Infinity, online = state.textContent.trim() === "online";
  window.fieldgate = { chart: chart, stats: chart.stats };

  document.getElementById("window").addEventListener("change", (e) => chart.setWindow(Number(e.target.value)));
  pause.addEventListener("click", () => {
    chart.setPaused(!chart.paused);
    pause.textContent = chart.paused ? "Resume" : "Pause";
  });

  function channelToggles(count) {
    if (channelsBox.childElementCount === count) return;
    channelsBox.textContent = "";
    for (let c = 0; c < count; c++) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox"; box.checked = !chart.hidden.has(c); box.dataset.channel = c;
      box.addEventListener("change", () => chart.toggle(c, box.checked));
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + (chart.names[c] || "ch" + c)));
      channelsBox.appendChild(label);
    }
  }

  function setOnline(value) {
    online = value;
    state.textContent = value ? "online" : "offline";
    state.className = "badge " + (value ? "online" : "offline");
  }
  setOnline(online);

  function onMessage(message) {
    const now = Date.now() / 1000;
    if (message.type === "frame") {
      chart.addFrame(message);
      channelToggles(chart.channels);
      lastFrameAt = now;
      // Clocks of gateway and browser may differ: compare with the best latency seen lately.
      latency = now - message.sent_at;
      baseline = Math.min(baseline, latency);
    } else if (message.type === "dropped") {
      dropped = message.frames; lostUpstream = message.lost_upstream; lastDropAt = now;
    } else if (message.type === "status" || message.type === "hello") {
      const row = message.type === "hello" ? message.gateway : message;
      setOnline(row.online);
      if (row.channels && row.channels.length && !chart.names.length) {
        chart.names = row.channels.slice(-64);
      }
    }
  }

  function render() {
    chart.draw();
    const now = Date.now() / 1000;
    const behind = latency !== null && latency - baseline > 1.0;
    const silent = online && lastFrameAt > 0 && now - lastFrameAt > 2;
    lagging.hidden = !(now - lastDropAt < 3 || behind || silent);
    requestAnimationFrame(render);
  }
  requestAnimationFrame(render);
  setInterval(() => {
    const s = chart.stats;
    const times = s.frameTimes.slice().sort((a, b) => a - b);
    const median = times.length ? times[times.length >> 1].toFixed(1) : "–";
    stats.textContent = s.frames + " frames, " + s.samples + " samples, " + s.gaps + " gaps (" +
      s.missing + " samples missing), " + dropped + " frames dropped for this view" +
      (lostUpstream ? " (" + lostUpstream + " upstream)" : "") + ", draw " + median + " ms" +
      (latency === null ? "" : ", latency " + Math.max(0, (latency - baseline) * 1000).toFixed(0) + " ms above best");
    baseline += 0.001; // let the baseline follow a clock that drifts
  }, 1000);

  openViewerSocket("/ws/live/" + encodeURIComponent(name) + "/", onMessage, (s) => {
    if (s !== "open") lagging.hidden = false;
  });
})();
