"""Bytes the reader has read when the port vanishes are kept (found by the soak campaign).

The port thread lets a trickle gather (then 20 ms; GATEWAY_GATHER_SECONDS now) before handing
it over. A device that vanished meanwhile used to take the bytes already read with it: the last
lines before an unplug were lost although they had left the kernel. Here a real PTY pair: lines
are written on the device side, the test waits until the reader has read them (the input queue
at the gateway end is empty), and closes the device side at once, inside the gather window.
"""

import os
import time
from pathlib import Path

from gateway.supervise import wait_for
from gateway.supervise.chain import read_status
from tests.support.batches import device_fields, read_rows


def tty_bytes_read(pid: int) -> int:
    """Bytes the process has read (rchar): in a reader between starts and cleanups, only the
    port's bytes (it writes its files; it reads none)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


def send(master: int, pid: int, lines: list[bytes]) -> None:
    """Write ``lines`` on the device side; return as soon as the reader has read them."""
    data = b"".join(line + b"\n" for line in lines)
    before = tty_bytes_read(pid)
    os.write(master, data)
    deadline = time.monotonic() + 5
    while tty_bytes_read(pid) - before < len(data):
        assert time.monotonic() < deadline, "the reader did not read the lines"
        time.sleep(0.0002)


def test_lines_read_just_before_the_port_vanishes_are_stored(processes, reader_env):
    lines = []
    counter = 0
    env = reader_env(batch_rows=100_000)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    for loss in range(5):
        master, slave = os.openpty()
        still_open = {master, slave}
        reader = processes.gateway(
            "reader", "--port", os.ttyname(slave), "--mode", "local", env=env
        )
        try:
            pid = reader.pid
            wait_for(
                lambda: (
                    (read_status(data_dir) or {}).get("pid") == pid  # noqa: B023
                    and (read_status(data_dir) or {}).get("port_open")
                ),
                20,
                message="the reader to open the PTY",
            )
            os.close(slave)  # the reader holds the gateway end now
            still_open.discard(slave)
            for pause in (0.1, 0):  # some lines handed over as usual, then the last ones
                batch = [b"%d,%d.000000,%d.5" % (n, n, n) for n in range(counter, counter + 3)]
                counter += 3
                lines += batch
                send(master, reader.pid, batch)
                time.sleep(pause)
            os.close(master)  # the device vanishes while the reader gathers its last read
            still_open.discard(master)
            wait_for(
                lambda: (read_status(data_dir) or {}).get("counters", {}).get("port_outages"),
                10,
                message=f"the reader to notice loss {loss}",
            )
            assert reader.stop() == 0
        finally:
            for fd in still_open:
                os.close(fd)
    stored = device_fields(read_rows(data_dir))
    assert stored == lines, f"{len(lines) - len(stored)} lines read before a loss were dropped"
