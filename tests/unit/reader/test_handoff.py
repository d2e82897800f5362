import threading
import time

from gateway.reader.handoff import COALESCE_MAX_BYTES, Data, Handoff, Overflow, PortLost, coalesce


def test_a_full_hand_off_drops_counts_and_marks_the_hole():
    handoff = Handoff(max_bytes=10)
    assert handoff.put_data(1.0, b"12345678")
    assert not handoff.put_data(2.0, b"abcdef")
    assert not handoff.put_data(3.0, b"ghi")
    assert (handoff.overflow_bytes, handoff.overflow_events) == (9, 1)
    assert [i.data for i in handoff.take(0)] == [b"12345678"]
    assert handoff.put_data(4.0, b"xy")
    assert handoff.take(0) == [Overflow(4.0, dropped_bytes=9), Data(4.0, b"xy")]


def test_a_short_wait_lets_the_writer_make_room_first():
    handoff = Handoff(max_bytes=10)
    handoff.put_data(1.0, b"12345678")
    taker = threading.Timer(0.05, lambda: handoff.take(0))
    taker.start()
    started = time.monotonic()
    assert handoff.put_data(2.0, b"abcdef", wait=2.0)
    assert time.monotonic() - started < 1.0
    assert handoff.overflow_bytes == 0
    taker.join()


def test_coalesce_joins_runs_of_data_but_keeps_events_in_place():
    events = [
        Data(1.0, b"a"),
        Data(2.0, b"b"),
        PortLost(3.0, error="x"),
        Data(4.0, b"c"),
    ]
    assert coalesce(events) == [
        Data(2.0, b"ab"),
        PortLost(3.0, error="x"),
        Data(4.0, b"c"),
    ]


def test_coalesce_bounds_each_run_by_its_own_bytes_not_those_before_an_event():
    half = b"x" * (COALESCE_MAX_BYTES // 2)
    events = [Data(1.0, half + half), PortLost(2.0, "x"), Data(3.0, half), Data(4.0, half)]
    joined = coalesce(events)
    assert [(type(e).__name__, e.at) for e in joined] == [
        ("Data", 1.0),
        ("PortLost", 2.0),
        ("Data", 4.0),  # both halves after the event, in one piece
    ]
    assert len(joined[2].data) == COALESCE_MAX_BYTES


def test_a_bounded_take_returns_the_oldest_items_that_fit_and_frees_their_room():
    handoff = Handoff(max_bytes=10)
    handoff.put_data(1.0, b"aaaa")
    handoff.put_event(PortLost(2.0, "gone"))
    handoff.put_data(3.0, b"bbbb")
    handoff.put_data(4.0, b"cc")
    assert not handoff.put_data(5.0, b"d")  # full: 10 bytes queued
    first = handoff.take(0, max_bytes=5)
    assert first == [Data(1.0, b"aaaa"), PortLost(2.0, "gone")]
    assert handoff.queued_bytes == 6
    assert handoff.put_data(6.0, b"eeee")  # the room the take freed
    rest = handoff.take(0, max_bytes=1)  # at least one item, even when it is bigger
    assert [i.data for i in rest] == [b"bbbb"]
    assert handoff.take(0) == [Data(4.0, b"cc"), Overflow(6.0, dropped_bytes=1), Data(6.0, b"eeee")]
    assert handoff.queued_bytes == 0


def test_wake_never_blocks_even_where_a_signal_handler_finds_the_lock_taken():
    """The reader's SIGTERM handler calls wake() in the main thread, which may be inside
    take() holding the lock: waiting for it there was a deadlock (a reader that ignored
    SIGTERM until systemd killed it)."""
    handoff = Handoff(max_bytes=10)
    done = threading.Event()

    def handler_inside_take():
        with handoff._ready:  # where take() holds it
            handoff.wake()
        done.set()

    thread = threading.Thread(target=handler_inside_take, daemon=True)
    thread.start()
    assert done.wait(2), "wake() blocked on a lock its own thread holds"
    # And it still wakes a taker that waits.
    taker_started, result = threading.Event(), []
    taker = threading.Thread(target=lambda: (taker_started.set(), result.append(handoff.take(10))))
    taker.start()
    taker_started.wait(2)
    time.sleep(0.05)
    started = time.monotonic()
    handoff.wake()
    taker.join(2)
    assert result == [[]] and time.monotonic() - started < 1


def test_past_the_catch_up_level_a_put_waits_for_the_writer_to_take_first():
    handoff = Handoff(max_bytes=100, catch_up_bytes=10)
    assert handoff.put_data(1.0, b"12345678", wait=2.0)  # under the level: no wait
    taker = threading.Timer(0.05, lambda: handoff.take(0))
    taker.start()
    started = time.monotonic()
    assert handoff.put_data(2.0, b"abcdef", wait=2.0)
    assert 0.04 < time.monotonic() - started < 1.0
    assert (handoff.queued_bytes, handoff.high_water_bytes) == (6, 8)
    taker.join()


def test_a_writer_that_does_not_take_still_has_the_whole_bound_before_a_drop():
    handoff = Handoff(max_bytes=20, catch_up_bytes=10)
    assert handoff.put_data(1.0, b"12345678", wait=0.01)
    assert handoff.put_data(2.0, b"abcdefgh", wait=0.01)  # waited, then queued over the level
    assert not handoff.put_data(3.0, b"ijklmn", wait=0.01)  # over max_bytes: dropped, counted
    assert (handoff.queued_bytes, handoff.overflow_bytes) == (16, 6)
    assert Handoff(max_bytes=8).catch_up_bytes == 8  # never above the bound
