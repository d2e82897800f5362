// The fleet page: the server renders every row (formatted, web/fleet/display.py); this keeps
// them live through /ws/fleet/ and ticks ages and online/offline as the clock moves. The
// formatting here mirrors display.py (the browser test compares the two).
"use strict";
(function () {
  const table = document.getElementById("fleet");
  const offlineAfter = Number(table.dataset.offlineAfter);
  const state = document.getElementById("socket-state");
  const summary = document.getElementById("fleet-summary");
  const SPARK_WIDTH = 80, SPARK_HEIGHT = 18, NONE = "–", MIB = 1048576, GIB = 1073741824;
  let skew = 0; // browser clock minus server clock
  state.textContent = "connecting…";

  const isNumber = (v) => typeof v === "number" && isFinite(v);
  const grouped = (v, digits) => v.toLocaleString("en-US", { minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0 });
  function size(bytes) {
    if (!isNumber(bytes)) return NONE;
    if (bytes >= 10 * GIB) return grouped(bytes / GIB) + " GiB";
    if (bytes >= GIB) return (bytes / GIB).toFixed(1) + " GiB";
    return grouped(bytes / MIB) + " MiB";
  }
  function disk(free, total) {
    const text = size(free);
    return text !== NONE && isNumber(total) && total > 0 ? text + " (" + (100 * free / total).toFixed(0) + "%)" : text;
  }
  const rate = (v) => isNumber(v) ? grouped(v) + " /s" : NONE;
  const count = (v) => Number.isInteger(v) ? grouped(v) : NONE;
  function duration(s) {
    if (!isNumber(s)) return NONE;
    if (s < 90) return s.toFixed(0) + " s";
    if (s < 5400) return (s / 60).toFixed(0) + " min";
    if (s < 129600) return (s / 3600).toFixed(0) + " h";
    return (s / 86400).toFixed(0) + " d";
  }
  function backlog(v) {
    if (!v || typeof v !== "object" || !Number.isInteger(v.batches)) return NONE;
    if (v.batches === 0) return "none";
    let text = grouped(v.batches) + (v.batches === 1 ? " batch (" : " batches (") + size(v.bytes) + ")";
    if (isNumber(v.age_seconds) && v.age_seconds > 0) text += ", oldest " + duration(v.age_seconds);
    return text;
  }
  function sparkline(rates) {
    const values = (rates || []).filter(isNumber);
    if (!rates || rates.length < 2 || !values.length) return "";
    const top = Math.max(...values) || 1, step = SPARK_WIDTH / (rates.length - 1), path = [];
    let drawing = false;
    rates.forEach((v, i) => {
      if (!isNumber(v)) { drawing = false; return; }
      const x = Math.round(i * step * 10) / 10, y = Math.round((SPARK_HEIGHT - 1 - (SPARK_HEIGHT - 2) * Math.max(0, v) / top) * 10) / 10;
      path.push((drawing ? "L" : "M") + x + " " + y); drawing = true;
    });
    return path.join(" ");
  }

  function rowFor(name) {
    let tr = table.querySelector('tr[data-name="' + CSS.escape(name) + '"]');
    if (!tr) {
      const none = table.querySelector("tr.none"); if (none) none.remove();
      tr = document.createElement("tr"); tr.dataset.name = name;
      for (const cls of ["name", "state", "alerts", "last_seen", "sample_rate", "rates", "rejects", "disk_free", "upload_backlog", "messages_rejected"]) {
        const td = document.createElement("td"); td.className = cls; tr.appendChild(td);
      }
      const a = document.createElement("a"); a.href = "/gateways/" + encodeURIComponent(name) + "/"; a.textContent = name;
      tr.querySelector("td.name").appendChild(a);
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("class", "spark"); svg.setAttribute("viewBox", "0 0 " + SPARK_WIDTH + " " + SPARK_HEIGHT);
      svg.setAttribute("width", SPARK_WIDTH); svg.setAttribute("height", SPARK_HEIGHT);
      svg.appendChild(document.createElementNS("http://www.w3.org/2000/svg", "path"));
      tr.querySelector("td.rates").appendChild(svg);
      table.tBodies[0].appendChild(tr);
    }
    return tr;
  }

  function render(row) {
    const tr = rowFor(row.name);
    tr.querySelector(".last_seen").dataset.value = row.last_seen == null ? "" : row.last_seen;
    tr.querySelector(".sample_rate").textContent = rate(row.sample_rate);
    tr.querySelector(".rates path").setAttribute("d", sparkline(row.rates));
    tr.querySelector(".rejects").textContent = count(row.rejects);
    tr.querySelector(".disk_free").textContent = disk(row.disk_free, row.disk_total);
    tr.querySelector(".upload_backlog").textContent = backlog(row.upload_backlog);
    tr.querySelector(".messages_rejected").textContent = count(row.messages_rejected);
    tr.dataset.connected = row.online ? "1" : "0";
    tr.alerts = row.alerts || [];
    tr.dataset.revoked = row.revoked ? "1" : "0";
    tr.alertsKey = null; // its badges are drawn again
    tickRow(tr, Date.now() / 1000 - skew);
  }

  // The server's alerts of a row; offline the page decides itself as the clock moves (the
  // rest came from a status that is no longer current, so offline shows alone).
  function showAlerts(tr, online) {
    const cell = tr.querySelector(".alerts"); if (!cell) return [];
    let alerts = (tr.alerts || []).filter((a) => a.name !== "offline");
    if (tr.dataset.revoked === "1") alerts = [];
    else if (!online) alerts = [{name: "offline", label: "offline", severity: "critical", text: "offline: no message from the gateway"}];
    const key = alerts.map((a) => a.name + ":" + a.severity + ":" + a.text).join("|");
    if (tr.alertsKey === key) return alerts; // unchanged: no DOM work
    tr.alertsKey = key;
    cell.replaceChildren(...alerts.map((a) => {
      const badge = document.createElement("span");
      badge.className = "badge alert " + a.severity; badge.dataset.alert = a.name;
      badge.title = a.text; badge.textContent = a.label || a.name;
      return badge;
    }));
    return alerts;
  }

  // Ages and online/offline move with the clock, not only with messages: every row once a
  // second (a row's own update redraws only that row, so 100 gateways stay cheap).
  function tickRow(tr, now) {
    const cell = tr.querySelector(".last_seen"); if (!cell) return null;
    const seen = cell.dataset.value === "" ? null : Number(cell.dataset.value);
    const age = seen == null ? null : now - seen;
    const ageText = age == null ? "never" : (age < 1 ? "just now" : duration(age) + " ago");
    if (cell.textContent !== ageText) cell.textContent = ageText;
    const revoked = tr.dataset.revoked === "1";
    const online = tr.dataset.connected === "1" && age != null && age < offlineAfter;
    const stateText = revoked ? "revoked" : online ? "online" : "offline";
    const stateCell = tr.querySelector(".state");
    if (stateCell.textContent !== stateText) stateCell.textContent = stateText;
    tr.className = online ? "online" : "offline";
    return { online: online, revoked: revoked, severities: new Set(showAlerts(tr, online).map((a) => a.severity)) };
  }

  function tick() {
    const now = Date.now() / 1000 - skew;
    const totals = { gateways: 0, online: 0, offline: 0, critical: 0, warning: 0 };
    for (const tr of table.tBodies[0].rows) {
      const found = tickRow(tr, now); if (!found) continue;
      totals.gateways += 1; if (found.online) totals.online += 1; else if (!found.revoked) totals.offline += 1;
      if (found.severities.has("critical")) totals.critical += 1; else if (found.severities.has("warning")) totals.warning += 1;
    }
    if (summary) {
      summary.textContent = totals.gateways + (totals.gateways === 1 ? " gateway: " : " gateways: ") + totals.online + " online, " +
        totals.offline + " offline, " + totals.critical + " with a critical alert, " + totals.warning + " with a warning";
    }
  }
  // The rows the server drew, with their alerts, until the socket sends newer ones.
  for (const row of JSON.parse(document.getElementById("fleet-rows").textContent)) {
    const tr = rowFor(row.name);
    tr.alerts = row.alerts; tr.dataset.revoked = row.revoked ? "1" : "0";
    tr.dataset.connected = row.online ? "1" : "0";
    skew = Date.now() / 1000 - row.server_time;
  }
  setInterval(tick, 1000);
  tick();

  openViewerSocket("/ws/fleet/", (message) => {
    if (message.type === "gateways") {
      for (const row of message.rows) { skew = Date.now() / 1000 - row.server_time; render(row); }
    }
  }, (s) => { state.textContent = s === "open" ? "live" : "reconnecting…"; });
  window.fieldgateFleet = { size: size, disk: disk, rate: rate, count: count, backlog: backlog, duration: duration, sparkline: sparkline };
})();
