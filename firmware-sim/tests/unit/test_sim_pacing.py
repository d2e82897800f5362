"""Pacing: the absolute schedule, and the runner's timing driven by a fake clock and port.

The runner is the I/O shell, but its clock, waits and port are injected, so its timing
rules (write what is due, batch at high rates, bursts, pauses, unplugs, drain) are checked
exactly here; tests/integration checks them again over a real PTY.
"""

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.cli import build_device
from firmware_sim.options import parse_options
from firmware_sim.pacing import Schedule
from firmware_sim.runner import DRAIN_SETTLE, MIN_SLEEP, READER_GRACE, Runner


@given(
    rate=st.floats(0.5, 1e6),
    start=st.floats(0, 1e6),
    n=st.integers(0, 10**7),
)
def test_line_n_is_due_n_over_rate_after_the_start(rate, start, n):
    schedule = Schedule(rate, start)
    assert schedule.due_time(n) == pytest.approx(start + n / rate)
    assert schedule.is_due(n, schedule.due_time(n))


def test_delay_moves_every_later_line_and_restart_re_anchors():
    schedule = Schedule(10, 100.0)
    schedule.delay(2.5)
    assert schedule.due_time(4) == pytest.approx(102.9)
    schedule.restart(50, 200.0)
    assert schedule.due_time(50) == 200.0
    assert schedule.due_time(60) == pytest.approx(201.0)


def test_a_rate_must_be_positive():
    with pytest.raises(ValueError) as error:
        Schedule(0, 0.0)
    assert str(error.value) == "rate must be > 0 lines per second, got 0"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeWaiter:
    def __init__(self, clock):
        self.clock = clock

    def check(self):
        pass

    def wait(self, timeout):
        self.clock.now += timeout

    def wait_writable(self, fd, timeout):
        if self.full:
            self.clock.now += timeout
        return not self.full

    full = False


class FakeLink:
    """Records each write with the (fake) time; the reader reads instantly unless told not to."""

    link = "/fake/port"
    device_fd = 99

    def __init__(self, clock, never_read=False, capacity=None):
        self.clock = clock
        self.never_read = never_read
        self.capacity = capacity  # bytes the port takes before it is full (None: no limit)
        self.plugged = False
        self.events = []
        self.writes = []
        self.unread = 0

    def plug(self):
        self.plugged = True
        self.events.append(("plug", self.clock.now))

    def unplug(self):
        self.plugged = False
        self.events.append(("unplug", self.clock.now))

    def write_some(self, view):
        if self.capacity is not None:
            view = view[: max(self.capacity - self.unread, 0)]
        if not view:
            return 0
        self.writes.append((self.clock.now, bytes(view)))
        if self.never_read:
            self.unread += len(view)
        return len(view)

    def check_alive(self):
        pass

    def unread_bytes(self):
        return self.unread

    def take_unread(self):
        taken, self.unread = self.unread, 0
        return taken


def run(*args, never_read=False, drain_timeout=1.0, capacity=None):
    options = parse_options(["--link", "/fake/port", *args])
    clock = FakeClock()
    link = FakeLink(clock, never_read, capacity)
    waiter = FakeWaiter(clock)
    if capacity is not None:
        waiter.full = True  # once the capacity is used up, nobody ever makes room
    log = io.StringIO()
    device = build_device(options, 1, None)
    runner = Runner(device, link, waiter, options.rate, drain_timeout, log, [].append, clock)
    unread = runner.run()
    faults = [json.loads(line) for line in log.getvalue().splitlines()]
    return runner, link, unread, faults


def line_times(link):
    """(time written, counter) of every line, from the csv-seq text."""
    return [
        (t, int(line.split(b",")[0]))
        for t, data in link.writes
        for line in data.split(b"\n")[:-1]
        if line[:1].isdigit()
    ]


def test_at_low_rates_each_line_is_written_exactly_when_due():
    runner, link, unread, _ = run("--rate", "100", "--samples", "50")
    assert unread == 0
    assert len(link.writes) == 50
    for t, n in line_times(link):
        assert t == pytest.approx(READER_GRACE + n / 100)


def test_at_high_rates_lines_go_out_in_batches_never_early_and_at_most_a_tick_late():
    runner, link, _, _ = run("--rate", "10000", "--samples", "20000")
    times = line_times(link)
    assert [n for _, n in times] == list(range(20000))
    for t, n in times:
        due = READER_GRACE + n / 10000
        assert due - 1e-9 <= t <= due + MIN_SLEEP + 1e-9
    assert len(link.writes) <= 2100  # about one write per millisecond, not one per line
    assert runner.bytes_sent == sum(len(data) for _, data in link.writes)


def test_a_pause_delays_every_later_line_by_its_seconds():
    _, link, _, faults = run("--rate", "10", "--samples", "6", "--faults", "pause@3:2.5")
    times = dict((n, t) for t, n in line_times(link))
    assert times[2] == pytest.approx(READER_GRACE + 0.2)
    assert times[3] == pytest.approx(READER_GRACE + 0.3 + 2.5)
    assert times[5] == pytest.approx(READER_GRACE + 0.5 + 2.5)
    assert faults[0]["at"] == pytest.approx(0.3)


def test_a_burst_sends_its_lines_in_one_write_then_keeps_the_schedule():
    _, link, _, faults = run("--rate", "10", "--samples", "12", "--faults", "burst@2:5")
    burst_write = [data for t, data in link.writes if data.startswith(b"2,")]
    assert burst_write[0].count(b"\n") == 5
    times = dict((n, t) for t, n in line_times(link))
    assert times[2] == times[6] == pytest.approx(READER_GRACE + 0.2)
    assert times[7] == pytest.approx(READER_GRACE + 0.7)
    assert faults == [
        {
            "fault": "burst",
            "n": 2,
            "at": pytest.approx(0.2),
            "lines": 5,
            "last": 6,
            "lines_lost": 0,
            "first_lost": None,
            "last_lost": None,
            "rejected": 0,
        }
    ]


def test_an_unplug_drains_removes_the_port_waits_and_resumes_after_the_lost_lines():
    _, link, _, faults = run("--rate", "10", "--samples", "30", "--faults", "unplug@10:1.5")
    assert [event for event, _ in link.events] == ["plug", "unplug", "plug"]
    (_, unplugged), (_, replugged) = link.events[1:]
    assert unplugged == pytest.approx(READER_GRACE + 1.0 + DRAIN_SETTLE, abs=0.002)
    assert replugged == pytest.approx(unplugged + 1.5)
    times = dict((n, t) for t, n in line_times(link))
    assert sorted(times) == list(range(10)) + list(range(25, 30))
    assert times[25] == pytest.approx(replugged + READER_GRACE)
    assert times[29] == pytest.approx(times[25] + 0.4)
    assert faults[0]["unread_bytes"] == 0 and faults[0]["lines_lost"] == 15


def test_the_tail_nobody_reads_is_counted_after_the_drain_timeout():
    runner, link, unread, _ = run("--rate", "1000", "--samples", "100", never_read=True)
    assert unread == runner.bytes_sent > 0


def test_a_port_nobody_reads_ends_the_run_after_the_drain_timeout():
    runner, link, unread, _ = run(
        "--rate", "1000", "--samples", "100000", never_read=True, capacity=4000, drain_timeout=2
    )  # fmt: skip
    assert runner.stalled
    assert unread == runner.bytes_sent == 4000
    last_write = link.writes[-1][0]
    assert runner.end - last_write == pytest.approx(2.0, abs=MIN_SLEEP + 1e-9)
