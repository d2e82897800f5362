// A viewer socket that reconnects and acknowledges what it received (the server's flow
// control: it holds back, then drops the oldest, when a viewer has `window` messages unacked).
"use strict";
function openViewerSocket(path, onMessage, onState) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  let received = 0, acked = 0, ackEvery = 8, delay = 500, socket = null;
  function connect() {
    socket = new WebSocket(scheme + location.host + path);
    received = 0; acked = 0;
    socket.onopen = () => { delay = 500; onState("open"); };
    socket.onmessage = (event) => {
      received += 1;
      const message = JSON.parse(event.data);
      if (message.type === "hello") ackEvery = message.ack_every;
      onMessage(message);
      if (received - acked >= ackEvery) {
        acked = received;
        socket.send(JSON.stringify({ type: "ack", received: received }));
      }
    };
    socket.onclose = (event) => {
      onState("closed", event);
      // CLOSE_NOT_LOGGED_IN (gateway/core/stream_protocol.py): the session is gone.
      if (event.code === 4402) { location.href = "/accounts/login/?next=" + encodeURIComponent(location.pathname); return; }
      if (event.code === 4404) return;
      setTimeout(connect, delay * (0.5 + Math.random()));
      delay = Math.min(delay * 2, 10000);
    };
  }
  connect();
  return { close: () => socket && socket.close() };
}
