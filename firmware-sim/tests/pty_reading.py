"""Reading the simulator's port with pyserial, as a gateway would (for the integration tests).

Like reference_receiver, it owes nothing to firmware_sim or gateway.
"""

import time

import pytest
import serial

READ_TIMEOUT = 15.0


def read_lines(port: serial.Serial, lines: int, timeout: float = READ_TIMEOUT):
    """Bytes read until ``lines`` newlines arrived; (data, arrival time of each newline)."""
    data = bytearray()
    arrivals: list[float] = []
    deadline = time.monotonic() + timeout
    while len(arrivals) < lines and time.monotonic() < deadline:
        chunk = port.read(max(1, port.in_waiting))
        now = time.monotonic()
        data += chunk
        arrivals += [now] * chunk.count(b"\n")
    return bytes(data), arrivals


def read_until_exit(sim, timeout: float = READ_TIMEOUT) -> tuple[bytes, int]:
    """Everything the simulator sends until it exits, reopening the port whenever it vanishes
    and comes back; (bytes, number of connections)."""
    connections = read_connections(sim, timeout)
    return b"".join(connections), len(connections)


def read_connections(sim, timeout: float = READ_TIMEOUT) -> list[bytes]:
    """What each connection read until the simulator exits (the port is reopened whenever it
    vanishes and comes back)."""
    connections: list[bytes] = []
    deadline = time.monotonic() + timeout
    while sim.process.poll() is None and time.monotonic() < deadline:
        try:
            port = serial.Serial(sim.port, timeout=0.1)
        except serial.SerialException:  # not there (unplugged): try again
            time.sleep(0.005)
            continue
        data = bytearray()
        try:
            while time.monotonic() < deadline:
                chunk = port.read(max(1, port.in_waiting))
                data += chunk
                if not chunk and sim.process.poll() is not None:
                    break
        except serial.SerialException:  # the port vanished under us
            pass
        finally:
            port.close()
            connections.append(bytes(data))
    return connections


def assert_same_bytes(got: bytes, expected: bytes) -> None:
    if got != expected:
        at = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), None)
        at = min(len(got), len(expected)) if at is None else at
        pytest.fail(
            f"{len(got)} bytes received, {len(expected)} expected; first difference at {at}: "
            f"{got[at - 20 : at + 20]!r} vs {expected[at - 20 : at + 20]!r}"
        )
