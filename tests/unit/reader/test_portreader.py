"""A port that cannot be opened: the reader says why, loudly, and counts every attempt."""

import errno
import logging

import serial

from gateway.commands.status import _reader_lines
from gateway.reader.handoff import Handoff
from gateway.reader.portreader import PortReader

PORT = "/dev/monitor"


def refusal(code: int) -> serial.SerialException:
    """What pyserial raises when open(2) fails: SerialException(errno, text)."""
    text = f"could not open port {PORT}: [Errno {code}] {errno.errorcode[code]}: '{PORT}'"
    return serial.SerialException(code, text)


def run_until_exhausted(outcomes: list[int]) -> PortReader:
    """A port thread whose opens fail with ``outcomes`` (errno values) in turn, then stop."""
    reader = None

    def open_port():
        code = outcomes.pop(0)
        if not outcomes:
            reader.stop()
        raise refusal(code)

    reader = PortReader(
        open_port, Handoff(1 << 20), name=PORT, first_backoff=0.0001, max_backoff=0.001
    )
    reader.start()
    reader.join(10)
    assert not reader.is_alive()
    return reader


def port_logs(caplog):
    return [r for r in caplog.records if r.name == "gateway.reader.port"]


def said(record) -> str:
    """The logfmt line's event and fields, as they are written."""
    fields = " ".join(f"{key}={value}" for key, value in record.fields.items())
    return f"event={record.getMessage()} {fields}"


def test_a_device_policy_refusal_is_an_error_with_a_hint_and_every_attempt_counts(caplog):
    caplog.set_level(logging.INFO, logger="gateway.reader.port")
    reader = run_until_exhausted([errno.EPERM] * 5)
    assert reader.open_failures == 5
    (record,) = port_logs(caplog)
    assert record.levelno == logging.ERROR
    message = said(record)
    assert "event=port_unavailable" in message and "errno=EPERM" in message
    assert "attempts=1" in message and "modules-load.d" in message
    status = reader.open_error_status()
    assert status["errno"] == "EPERM" and status["attempts"] == 5
    assert "DeviceAllow" in status["hint"]


def test_a_new_reason_is_said_again(caplog):
    """Missing at start, then refused once plugged in: the refusal is not hidden behind the
    first warning (what a flashed card did: retried forever, saying nothing)."""
    caplog.set_level(logging.INFO, logger="gateway.reader.port")
    reader = run_until_exhausted([errno.ENOENT] * 3 + [errno.EPERM] * 3)
    records = port_logs(caplog)
    assert [r.levelno for r in records] == [logging.WARNING, logging.ERROR]
    assert "errno=ENOENT" in said(records[0]) and "udev" in said(records[0])
    assert "errno=EPERM" in said(records[1]) and "attempts=4" in said(records[1])
    assert reader.open_failures == 6
    assert reader.open_error_status()["errno"] == "EPERM"


def test_status_names_the_refusal_and_its_hint():
    reader = run_until_exhausted([errno.EPERM] * 2)
    lines = _reader_lines({"state": "running", "port_error": reader.open_error_status()})
    assert len(lines) == 1 and lines[0].startswith("    PORT NOT OPEN (EPERM since ")
    assert "2 attempts" in lines[0] and "modules-load.d" in lines[0]
