// A viewer socket that reconnects and acknowledges what it received (the server's flow
// control: it holds back, then drops the oldest, when a viewer has `window` messages unacked).
"use strict";
// A binary frame (docs/stream-protocol.md, "Binary frames") as the JSON frame's object:
// "FGF1", the header's length (uint32 LE), the header (the frame's JSON without t/min/max,
// padded to 8 bytes), then t, every channel's min and every channel's max (float64 LE).
function decodeBinaryFrame(buffer) {
  const view = new DataView(buffer);
  const magic = String.fromCharCode(...new Uint8Array(buffer, 0, 4));
  if (magic !== "FGF1") throw new Error("not a binary frame: " + magic);
  const size = view.getUint32(4, true);
  const frame = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, size)));
  let offset = 8 + size;
  const doubles = () => {
    const values = new Array(frame.buckets);
    for (let i = 0; i < values.length; i += 1, offset += 8) values[i] = view.getFloat64(offset, true);
    return values;
  };
  frame.t = doubles();
  frame.min = Array.from({ length: frame.channels }, doubles);
  frame.max = Array.from({ length: frame.channels }, doubles);
  delete frame.buckets; delete frame.channels;
  return frame;
}
function openViewerSocket(path, onMessage, onState) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  let received = 0, acked = 0, ackEvery = 8, delay = 500, socket = null;
  const counts = { text: 0, binary: 0 }; // messages of each encoding, for the page's stats
  function connect() {
    socket = new WebSocket(scheme + location.host + path);
    socket.binaryType = "arraybuffer";
    received = 0; acked = 0;
    socket.onopen = () => { delay = 500; onState("open"); };
    socket.onmessage = (event) => {
      received += 1;
      const text = typeof event.data === "string";
      counts[text ? "text" : "binary"] += 1;
      const message = text ? JSON.parse(event.data) : decodeBinaryFrame(event.data);
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
  return { close: () => socket && socket.close(), counts: counts };
}
