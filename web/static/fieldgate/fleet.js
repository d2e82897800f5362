"use strict";
(function () {
  const table = document.getElementById("fleet");
  const offlineAfter = Number(table.dataset.offlineAfter);
  const state = document.getElementById("socket-state");
  let skew = 0; // browser clock minus server clock
  const rows = new Map();

  function mib(bytes) { return bytes == null || bytes === "" ? "–" : (bytes / 1048576).toFixed(0) + " MiB"; }
  function text(value, digits) { return value == null ? "–" : (digits == null ? String(value) : Number(value).toFixed(digits)); }
  function backlog(value) {
    if (value == null) return "–";
    if (typeof value === "object") return value.batches + " batches (" + mib(value.bytes) + ")";
    return String(value);
  }

  function rowFor(name) {
    let tr = table.querySelector('tr[data-name="' + CSS.escape(name) + '"]');
    if (!tr) {
      const none = table.querySelector("tr.none"); if (none) none.remove();
      tr = document.createElement("tr"); tr.dataset.name = name;
      for (const cls of ["name", "state", "alerts", "last_seen", "sample_rate", "rejects", "disk_free", "upload_backlog", "messages_rejected"]) {
        const td = document.createElement("td"); td.className = cls; tr.appendChild(td);
      }
      const a = document.createElement("a"); a.href = "/gateways/" + encodeURIComponent(name) + "/"; a.textContent = name;
      tr.querySelector("td.name").appendChild(a);
      table.tBodies[0].appendChild(tr);
    }
    return tr;
  }

  function render(row) {
    rows.set(row.name, row);
    const tr = rowFor(row.name);
    tr.querySelector(".last_seen").dataset.value = row.last_seen == null ? "" : row.last_seen;
    tr.querySelector(".sample_rate").textContent = row.sample_rate == null ? "–" : text(row.sample_rate, 0) + " /s";
    tr.querySelector(".rejects").textContent = text(row.rejects);
    tr.querySelector(".disk_free").textContent = mib(row.disk_free);
    tr.querySelector(".upload_backlog").textContent = backlog(row.upload_backlog);
    tr.querySelector(".messages_rejected").textContent = text(row.messages_rejected);
    tr.dataset.connected = row.online ? "1" : "0";
    tr.alerts = row.alerts || [];
    tr.dataset.revoked = row.revoked ? "1" : "0";
    tick();
  }

  // The server's alerts of a row; offline the page decides itself as the clock moves (the
  // rest came from a status that is no longer current, so offline shows alone).
  function showAlerts(tr, online) {
    const cell = tr.querySelector(".alerts"); if (!cell) return;
    let alerts = (tr.alerts || []).filter((a) => a.name !== "offline");
    if (tr.dataset.revoked === "1") alerts = [];
    else if (!online) alerts = [{name: "offline", label: "offline", severity: "critical", text: "offline: no message from the gateway"}];
    cell.replaceChildren(...alerts.map((a) => {
      const badge = document.createElement("span");
      badge.className = "badge alert " + a.severity; badge.dataset.alert = a.name;
      badge.title = a.text; badge.textContent = a.label || a.name;
      return badge;
    }));
  }

  // Ages and online/offline move with the clock, not only with messages.
  function tick() {
    const now = Date.now() / 1000 - skew;
    for (const tr of table.tBodies[0].rows) {
      const cell = tr.querySelector(".last_seen"); if (!cell) continue;
      const seen = cell.dataset.value === "" ? null : Number(cell.dataset.value);
      const age = seen == null ? null : now - seen;
      cell.textContent = age == null ? "never" : (age < 1 ? "just now" : age.toFixed(0) + " s ago");
      const connected = tr.dataset.connected ? tr.dataset.connected === "1" : tr.querySelector(".state").textContent.trim() === "online";
      const online = connected && age != null && age < offlineAfter;
      tr.querySelector(".state").textContent = online ? "online" : "offline";
      tr.className = online ? "online" : "offline";
      showAlerts(tr, online);
    }
  }
  // The rows the server drew, with their alerts, until the socket sends newer ones.
  for (const row of JSON.parse(document.getElementById("fleet-rows").textContent)) {
    const tr = rowFor(row.name);
    tr.alerts = row.alerts; tr.dataset.revoked = row.revoked ? "1" : "0";
  }
  setInterval(tick, 1000);
  tick();

  openViewerSocket("/ws/fleet/", (message) => {
    if (message.type === "gateways") {
      for (const row of message.rows) { skew = Date.now() / 1000 - row.server_time; render(row); }
    }
  }, (s) => { state.textContent = s === "open" ? "live" : "reconnecting…"; });
})();
