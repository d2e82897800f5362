// The gateway page: one viewer socket feeding the chart, plus the controls.
"use strict";
(function () {
  const element = document.getElementById("chart");
  const name = element.dataset.gateway;
  const namesScript = document.getElementById("channel-names");
  const names = (namesScript && JSON.parse(namesScript.textContent)) || [];
  const saved = (key, fallback) => { try { return localStorage.getItem("fieldgate." + key) || fallback; } catch (e) { return fallback; } };
  const save = (key, value) => { try { localStorage.setItem("fieldgate." + key, value); } catch (e) { /* private mode */ } };
  const modeSelect = document.getElementById("mode"), clockSelect = document.getElementById("clock");
  modeSelect.value = saved("mode", "shared"); clockSelect.value = saved("clock", "utc");
  const chart = new FieldgateChart(element, {
    windowSeconds: 10, names: names.slice(-64), mode: modeSelect.value, clock: clockSelect.value,
  });
  const state = document.getElementById("state");
  const lagging = document.getElementById("lagging");
  const stats = document.getElementById("stats");
  const losses = document.getElementById("losses");
  const readerCounts = document.getElementById("reader-counts");
  const eventsList = document.getElementById("events"), eventCount = document.getElementById("event-count");
  const pause = document.getElementById("pause");
  const channelsBox = document.getElementById("channels");
  let dropped = 0, lostUpstream = 0, lastDropAt = 0, lastFrameAt = 0, eventsShown = 0;
  let latency = null, baseline = Infinity, online = state.textContent.trim() === "online";
  window.fieldgate = { chart: chart, stats: chart.stats };

  document.getElementById("window").addEventListener("change", (e) => chart.setWindow(Number(e.target.value)));
  modeSelect.addEventListener("change", () => { chart.setMode(modeSelect.value); save("mode", modeSelect.value); });
  clockSelect.addEventListener("change", () => { chart.setClock(clockSelect.value); save("clock", clockSelect.value); showEvents(true); });
  pause.addEventListener("click", () => {
    const back = document.getElementById("live");
    if (chart.keepSeconds !== null && back) { back.click(); return; } // history shown: go live
    chart.setPaused(!chart.paused);
    pause.textContent = chart.paused ? "Resume" : "Pause";
  });

  chart.onZoom = () => { // a zoomed view stays put until Resume
    if (!chart.paused) { chart.setPaused(true); pause.textContent = "Resume"; }
  };

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

  const count = (n, one, many) => n + " " + (n === 1 ? one : many);
  function showReaderCounts(row) {
    if (row.device_lines_lost == null) return;
    readerCounts.textContent = "The gateway's reader counted " + count(row.device_gaps || 0, "device gap", "device gaps") +
      " (" + row.device_lines_lost + " samples lost) and " + count(row.port_outages || 0, "port outage", "port outages") +
      " since it started" + (row.last_seen == null ? "" : " (its status of " + fieldgateClock(row.last_seen, chart.clock) + ")") + ".";
  }

  // Every gap since the page opened, newest first, with the gateway's clock.
  function showEvents(all) {
    const events = chart.events;
    if (all) { eventsList.textContent = ""; eventsShown = 0; }
    for (const event of events.slice(eventsShown)) {
      const item = document.createElement("li");
      item.className = "gap " + event.kind;
      const when = event.wall === null ? "t " + event.t0.toFixed(3) + " s" : fieldgateClock(event.wall, chart.clock, true);
      item.textContent = when + ": " + FieldgateChart.gapLabel(event) +
        (event.kind === "device" ? " (the gateway's count)" : event.kind === "delivery" ? " (between the gateway and this page)" : " (device time jumped)");
      eventsList.insertBefore(item, eventsList.firstChild);
    }
    eventsShown = events.length;
    eventCount.textContent = String(chart.stats.gaps);
  }

  // Rows with record types (NMEA 0183): one type is drawn at a time, its numeric fields as
  // channels; every frame still goes to the chart (its seq range keeps the gap count right).
  const typeBox = document.getElementById("record-type-box"), typeSelect = document.getElementById("record-type");
  let recordType = saved("record-type." + name, null);
  const typeFields = new Map(); // record type -> its fields' positions
  typeSelect.addEventListener("change", () => {
    recordType = typeSelect.value; save("record-type." + name, recordType);
    chart.clear(fieldNames(recordType)); channelsBox.textContent = "";
  });
  function fieldNames(kind) { return (typeFields.get(kind) || []).map((f) => kind + " field " + (f + 1)); }
  function ofType(message) {
    for (const [kind, series] of Object.entries(message.types)) {
      const known = typeFields.get(kind);
      if (known && known.join() !== series.fields.join()) { // a field became a number: redraw
        typeFields.set(kind, series.fields);
        if (kind === recordType) { chart.clear(fieldNames(kind)); channelsBox.textContent = ""; }
      }
      if (!known) {
        typeFields.set(kind, series.fields);
        const option = document.createElement("option"); option.value = option.textContent = kind;
        typeSelect.appendChild(option); typeBox.hidden = false;
        if (recordType === kind) { typeSelect.value = kind; chart.clear(fieldNames(kind)); channelsBox.textContent = ""; }
      }
    }
    if (!typeFields.has(recordType)) { // none chosen yet, or the one remembered is not sent
      recordType = Object.keys(message.types)[0]; typeSelect.value = recordType;
      chart.clear(fieldNames(recordType)); channelsBox.textContent = "";
    }
    const series = message.types[recordType];
    return { ...message, t: series ? series.t : [], min: series ? series.min : [], max: series ? series.max : [] };
  }

  function onMessage(message) {
    const now = Date.now() / 1000;
    if (message.type === "frame") {
      chart.addFrame(message.types ? ofType(message) : message);
      channelToggles(chart.channels);
      lastFrameAt = now;
      // Clocks of gateway and browser may differ: compare with the best latency seen lately.
      latency = now - message.sent_at;
      baseline = Math.min(baseline, latency);
      if (chart.events.length !== eventsShown) showEvents(false);
    } else if (message.type === "dropped") {
      dropped = message.frames; lostUpstream = message.lost_upstream; lastDropAt = now;
    } else if (message.type === "status" || message.type === "hello") {
      const row = message.type === "hello" ? message.gateway : message;
      setOnline(row.online);
      showReaderCounts(row);
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

  function lossText(s) {
    if (!s.gaps) return "No samples missing since this page opened.";
    const parts = [];
    parts.push(count(s.deviceGaps, "device gap", "device gaps") + " (" + s.deviceLinesLost + " samples lost)");
    parts.push(count(s.outages, "port outage", "port outages") + " (" + s.outageSeconds.toFixed(2) + " s)");
    if (s.deliveryGaps) parts.push(count(s.deliveryGaps, "gap", "gaps") + " in delivery (" + s.deliveryMissing + " samples)");
    if (s.silences) parts.push(count(s.silences, "silence", "silences") + " without a count");
    return "Since this page opened: " + parts.join(", ") + ".";
  }
  setInterval(() => {
    const s = chart.stats;
    const times = s.frameTimes.slice().sort((a, b) => a - b);
    const median = times.length ? times[times.length >> 1].toFixed(1) : "–";
    stats.textContent = s.frames + " frames, " + s.samples + " samples, " + count(s.gaps, "gap", "gaps") + " (" +
      s.missing + " samples missing), " + dropped + " frames dropped for this view" +
      (lostUpstream ? " (" + lostUpstream + " upstream)" : "") + ", draw " + median + " ms" +
      (latency === null ? "" : ", latency " + Math.max(0, (latency - baseline) * 1000).toFixed(0) + " ms above best");
    losses.textContent = lossText(s);
    losses.className = "losses" + (s.gaps ? " some" : "");
    baseline += 0.001; // let the baseline follow a clock that drifts
  }, 1000);

  // History read back from the gateway's batches (history.json), in front of the live data.
  const historyButton = document.getElementById("history");
  if (historyButton) {
    const liveButton = document.getElementById("live"), historyState = document.getElementById("history-state");
    const span = document.getElementById("history-span"), windowSelect = document.getElementById("window");
    historyButton.addEventListener("click", async () => {
      // Nothing is trimmed while the answer is on its way, so it joins what is held.
      const holding = chart.keepSeconds; chart.keepSeconds = Infinity;
      const seconds = Number(span.value), before = chart.oldestSeq();
      historyButton.disabled = true; historyState.textContent = "reading the gateway's batches…";
      try {
        const query = "?seconds=" + seconds + (before === null ? "" : "&before_seq=" + before);
        const response = await fetch("/gateways/" + encodeURIComponent(name) + "/history.json" + query, { credentials: "same-origin" });
        const answer = await response.json();
        if (!response.ok) throw new Error(answer.error || response.statusText);
        const held = chart.xs.length ? chart.xs[chart.xs.length - 1] - chart.xs[0] : 0;
        chart.prependFrames(answer.frames.map((f) => f.types ? ofType(f) : f));
        chart.showHistory(seconds + held);
        pause.textContent = "Resume"; liveButton.hidden = false;
        const wall = (t) => chart.wallOffset === null ? "" : fieldgateClock(t + chart.wallOffset, chart.clock);
        const first = answer.frames.length ? answer.frames[0].t[0] : null;
        historyState.textContent = answer.rows ? answer.rows.toLocaleString("en-US") + " rows read back from " +
          (first === null ? "" : wall(first)) + " (seq " + answer.first_seq + "–" + answer.last_seq + ", " +
          (answer.points_per_second >= 1 ? answer.points_per_second.toFixed(0) + " points/s" : "a point per " + (1 / answer.points_per_second).toFixed(1) + " s") + ")" +
          (answer.exhausted ? "; nothing older is kept on the gateway" : "") : "nothing stored before what is shown";
        window.fieldgate.history = answer;
      } catch (error) {
        chart.keepSeconds = holding;
        historyState.textContent = "history could not be read: " + error.message;
      } finally { historyButton.disabled = false; }
    });
    liveButton.addEventListener("click", () => {
      chart.live(Number(windowSelect.value)); liveButton.hidden = true; pause.textContent = "Pause";
      historyState.textContent = "";
    });
  }

  // Export: the last 10 minutes by default, or the range the chart shows.
  const exportForm = document.getElementById("export");
  if (exportForm) {
    const isoUtc = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 19);
    const now = Date.now() / 1000;
    exportForm.elements.from.value = isoUtc(now - 600); exportForm.elements.to.value = isoUtc(now);
    document.getElementById("export-view").addEventListener("click", () => {
      if (!chart.plot || chart.wallOffset === null) return;
      const x = chart.plot.scales.x;
      exportForm.elements.from.value = isoUtc(Math.floor(x.min + chart.wallOffset));
      exportForm.elements.to.value = isoUtc(Math.ceil(x.max + chart.wallOffset));
    });
  }

  const socket = openViewerSocket("/ws/live/" + encodeURIComponent(name) + "/", onMessage, (s) => {
    if (s !== "open") lagging.hidden = false;
  });
  window.fieldgate.messages = socket.counts;
})();
