import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.codec import Shape
from gateway.core.decimate import Break, Decimator, Drawing, Frame

CSV_SEQ = Shape("csv-seq", ("n", "t", "ch0", "ch1"), counter_field=0, time_field=1)
CSV = Shape("csv", ("t", "ch0", "ch1"), time_field=0)


def csv_seq(n: int, rate: float, *values: float) -> bytes:
    return b"%d,%.6f," % (n, n / rate) + b",".join(b"%.4f" % v for v in values)


def test_below_the_point_rate_every_sample_is_its_own_bucket():
    decimator = Decimator(Drawing.of(CSV_SEQ), points_per_second=500)
    decimator.add(10, [csv_seq(n, 100, n, -n) for n in range(5)], received_at=7.5)
    (frame,) = decimator.take_frames()
    assert (frame.first_seq, frame.last_seq, frame.samples) == (10, 14, 5)
    assert frame.times == [0.0, 0.01, 0.02, 0.03, 0.04]
    assert frame.mins == frame.maxs == [[0, 1, 2, 3, 4], [0, -1, -2, -3, -4]]
    assert frame.received_at == 7.5
    assert decimator.take_frames() == []


def test_a_one_sample_spike_survives_decimation():
    decimator = Decimator(1, points_per_second=10)  # 1 kHz into 10 buckets per second
    values = [0.0] * 1000
    values[437] = 99.0
    values[812] = -42.0
    decimator.add(0, [csv_seq(n, 1000, v) for n, v in enumerate(values)], received_at=0)
    (frame,) = decimator.take_frames()
    assert len(frame.times) == 10
    assert frame.maxs[0] == [0, 0, 0, 0, 99.0, 0, 0, 0, 0, 0]
    assert frame.mins[0] == [0, 0, 0, 0, 0, 0, 0, 0, -42.0, 0]
    assert frame.times[4] == pytest.approx(0.4)


def test_csv_records_have_no_counter():
    decimator = Decimator(Drawing.of(CSV), points_per_second=100)
    decimator.add(0, [b"0.500000,1.5,2.5"], received_at=1.0)
    (frame,) = decimator.take_frames()
    assert frame.times == [0.5] and frame.mins == [[1.5], [2.5]]


def test_a_seq_hole_starts_a_new_frame():
    decimator = Decimator(1, points_per_second=1000)
    decimator.add(0, [csv_seq(n, 100, 1) for n in range(3)], received_at=1)
    decimator.add(50, [csv_seq(n, 100, 1) for n in range(50, 52)], received_at=2)
    decimator.add(52, [csv_seq(52, 100, 1)], received_at=3)
    frames = decimator.take_frames()
    assert [(f.first_seq, f.last_seq, f.received_at) for f in frames] == [(0, 2, 1), (50, 52, 2)]


def test_a_device_gap_starts_a_frame_that_says_how_many_lines_were_lost():
    # seq goes on (lines never received get no seq); the device's counter skipped 750.
    decimator = Decimator(Drawing.of(CSV_SEQ), points_per_second=1000)
    rows = [csv_seq(n, 500, 1, 2) for n in (*range(0, 5), *range(755, 760))]
    decimator.add(0, rows, received_at=1.0, gaps=[(5, 750)])
    first, second = decimator.take_frames()
    assert (first.first_seq, first.last_seq, first.gap) == (0, 4, None)
    assert (second.first_seq, second.last_seq) == (5, 9)
    assert second.gap == Break(device_lines=750)
    assert second.times[0] == pytest.approx(1.51)
    assert "gap" not in first.as_message(2.0)
    assert second.as_message(2.0)["gap"] == {"device_lines": 750}


def test_a_port_outage_marks_the_next_frame_even_across_calls_and_takes():
    decimator = Decimator(Drawing.of(CSV_SEQ), points_per_second=1000)
    decimator.add(0, [csv_seq(n, 500, 1, 2) for n in range(3)], received_at=1.0)
    assert [f.gap for f in decimator.take_frames()] == [None]
    decimator.port_outage(1.5)
    assert decimator.take_frames() == []  # nothing to draw yet: the break waits for a record
    decimator.add(3, [csv_seq(n, 500, 1, 2) for n in range(753, 756)], 2.6, gaps=[(0, 750)])
    decimator.add(6, [csv_seq(756, 500, 1, 2)], received_at=2.7)
    (frame,) = decimator.take_frames()
    assert (frame.first_seq, frame.last_seq) == (3, 6)  # one frame again after the break
    assert frame.gap == Break(device_lines=750, outage_seconds=1.5)
    assert frame.as_message(3.0)["gap"] == {"device_lines": 750, "outage_seconds": 1.5}


def test_a_change_in_channel_count_starts_a_new_frame():
    decimator = Decimator(1, points_per_second=1000)
    decimator.add(0, [csv_seq(0, 100, 1, 2), csv_seq(1, 100, 1)], received_at=1)
    frames = decimator.take_frames()
    assert [(f.first_seq, f.last_seq, f.channels) for f in frames] == [(0, 0, 2), (1, 1, 1)]


def test_unparsed_records_are_counted_and_covered_by_the_open_frame():
    decimator = Decimator(1, points_per_second=1000)
    records = [b"0,0.0,abc", csv_seq(1, 100, 1), b"2,0.02,inf", b"3", b"4,nan,1"]
    records.append(csv_seq(5, 100, 2))
    decimator.add(0, records, received_at=1)
    (frame,) = decimator.take_frames()
    assert (frame.first_seq, frame.last_seq, frame.samples) == (1, 5, 2)
    assert decimator.unparsed == 4
    assert decimator.samples_in == 6


def test_the_message_carries_the_seq_range_and_both_clocks():
    frame = Frame(3, 4, 10.25, times=[0.5], mins=[[1.0]], maxs=[[2.0]], samples=2)
    assert frame.as_message(sent_at=10.5) == {
        "type": "frame",
        "seq": [3, 4],
        "received_at": 10.25,
        "sent_at": 10.5,
        "samples": 2,
        "t": [0.5],
        "min": [[1.0]],
        "max": [[2.0]],
    }


def test_points_per_second_must_be_positive():
    with pytest.raises(ValueError, match="points_per_second must be above 0, got 0"):
        Decimator(1, 0)


@given(
    values=st.lists(
        st.tuples(
            st.integers(-1000, 1000), st.integers(-1000, 1000), st.integers(1, 5)
        ),  # two channels and a time step in ms
        min_size=1,
        max_size=300,
    ),
    cuts=st.lists(st.integers(0, 300), max_size=6),
    takes=st.lists(st.integers(0, 300), max_size=6),
    points_per_second=st.sampled_from([7, 50, 333, 5000]),
)
def test_frames_cover_every_seq_once_and_keep_every_extreme(values, cuts, takes, points_per_second):
    """Any split of the records into publishes, any frame timing: same coverage, same extremes."""
    t, records = 0, []
    for n, (a, b, step) in enumerate(values):
        t += step
        records.append(b"%d,%.6f,%d,%d" % (n, t / 1000, a, b))
    decimator = Decimator(1, points_per_second)
    frames: list[Frame] = []
    bounds = sorted({0, len(records), *(c for c in cuts if c < len(records))})
    for start, end in zip(bounds, bounds[1:], strict=False):
        decimator.add(start, records[start:end], received_at=float(start))
        if any(start <= take < end for take in takes):
            frames += decimator.take_frames()
    frames += decimator.take_frames()
    covered = [seq for f in frames for seq in range(f.first_seq, f.last_seq + 1)]
    assert covered == list(range(len(records)))
    assert sum(f.samples for f in frames) == len(records)
    for channel in (0, 1):
        column = [v[channel] for v in values]
        assert max(max(f.maxs[channel]) for f in frames) == max(column)
        assert min(min(f.mins[channel]) for f in frames) == min(column)
    for f in frames:
        assert len(f.times) == len(f.mins[0]) == len(f.maxs[1])
        assert all(low <= high for low, high in zip(f.mins[0], f.maxs[0], strict=True))
        span = math.floor(f.times[-1] * points_per_second) - math.floor(
            f.times[0] * points_per_second
        )
        assert len(f.times) <= span + 1


_CELLS = st.one_of(
    st.floats(-1e6, 1e6).map(lambda v: b"%r" % v),
    st.sampled_from([b"1e308", b"-1e308", b"inf", b"nan", b"", b"x", b" 2.5", b"-0.0"]),
)


@given(
    rows=st.lists(
        st.tuples(st.integers(0, 4), st.lists(_CELLS, min_size=0, max_size=4)),
        min_size=1,
        max_size=120,
    ),
    cuts=st.lists(st.integers(0, 120), max_size=5),
    points_per_second=st.sampled_from([3, 500, 1000]),
)
def test_each_bucket_is_the_min_and_max_of_its_run_of_drawable_records(
    rows, cuts, points_per_second
):
    """The definition, against any records (garbage, inf, NaN, sums that overflow, channel
    counts that change) cut into any publishes: a frame's buckets are its drawable records
    grouped where floor(t * points_per_second) stays the same, each the first t and every
    channel's min and max; a change in channel count starts a frame."""
    t, records = 0, []
    for step, cells in rows:
        t += step
        records.append(b"%.4f," % (t / 1000) + b",".join(cells))
    decimator = Decimator(Drawing.of(CSV), points_per_second)
    bounds = sorted({0, len(records), *(c for c in cuts if c < len(records))})
    for start, end in zip(bounds, bounds[1:], strict=False):
        decimator.add(start, records[start:end], received_at=float(start))
    frames = decimator.take_frames()

    def drawable(record: bytes) -> tuple[float, list[float]] | None:
        time, *cells = record.split(b",")
        try:
            values = [float(cell) for cell in cells]
        except ValueError:
            return None
        finite = values and all(math.isfinite(v) for v in values)
        return (float(time), values) if finite else None

    expected = []  # (times, mins, maxs) per frame
    for record in records:
        found = drawable(record)
        if found is None:
            continue
        time, values = found
        bucket = math.floor(time * points_per_second)
        if not expected or len(values) != len(expected[-1][1]):
            expected.append(([], [[] for _ in values], [[] for _ in values], [None]))
        times, mins, maxs, last = expected[-1]
        if bucket == last[0]:
            for low, high, value in zip(mins, maxs, values, strict=True):
                low[-1], high[-1] = min(low[-1], value), max(high[-1], value)
        else:
            last[0] = bucket
            times.append(time)
            for low, high, value in zip(mins, maxs, values, strict=True):
                low.append(value)
                high.append(value)
    assert [(f.times, f.mins, f.maxs) for f in frames] == [e[:3] for e in expected]
    assert sum(f.samples for f in frames) + decimator.unparsed == len(records)


def test_a_device_without_a_time_field_is_drawn_at_the_time_of_its_reads():
    keyvalue = Shape("keyvalue", ("temp", "rh"))
    decimator = Decimator(Drawing.of(keyvalue), points_per_second=100)
    decimator.add(0, [b"21.5,40.0", b"21.6,40.5"], received_at=3.0)
    decimator.add(2, [b"21.4,41.0"], received_at=3.5)
    (frame,) = decimator.take_frames()
    assert frame.times == [3.0, 3.5]
    assert frame.mins == [[21.5, 21.4], [40.0, 41.0]] and frame.maxs[0] == [21.6, 21.4]
    assert Drawing.of(keyvalue).channel_names(keyvalue) == ["temp", "rh"]


def test_rows_with_record_types_are_drawn_per_type_with_the_fields_that_are_numbers():
    nmea = Shape("nmea0183", ("record_type", "fields"), record_type=True)
    decimator = Decimator(Drawing.of(nmea), points_per_second=1)
    decimator.add(
        0,
        [
            b'GPGGA,"123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"',
            b'GPRMC,"123519,A"',
            b'GPGGA,"123519.5,,N,01131.000,E,0,08,0.9,548.1,M,46.9,M,,"',  # no fix: no latitude
            b"GPTXT,hello",  # nothing that is a number: counted, not drawn
        ],
        received_at=10.25,
    )
    decimator.add(4, [b'GPGGA,"123520,4807.040,N,01131.000,E,1,08,0.9,546.0,M,46.9,M,,"'], 11.5)
    (frame,) = decimator.take_frames()
    assert (frame.first_seq, frame.last_seq, frame.samples, frame.channels) == (0, 4, 4, 0)
    assert decimator.unparsed == 1
    message = frame.as_message(12.0)
    assert message["t"] == [] and set(message["types"]) == {"GPGGA", "GPRMC"}
    gga = message["types"]["GPGGA"]
    assert gga["fields"] == [0, 1, 3, 5, 6, 7, 8, 10]
    assert gga["t"] == [10.25, 11.5]  # the read's time: one bucket per second here
    assert gga["min"][1] == [4807.038, 4807.04]  # the empty latitude is left out of the min
    assert gga["min"][6] == [545.4, 546.0] and gga["max"][6] == [548.1, 546.0]
    assert message["types"]["GPRMC"] == {"fields": [0], "t": [10.25], "min": [[123519.0]],
                                         "max": [[123519.0]]}  # fmt: skip
    assert Drawing.of(nmea).channel_names(nmea) == []


def test_a_field_that_becomes_a_number_later_is_drawn_from_then_on():
    nmea = Shape("nmea0183", ("record_type", "fields"), record_type=True)
    decimator = Decimator(Drawing.of(nmea), points_per_second=1)
    decimator.add(0, [b'GPGGA,"120000,,N,,E,0,00"'], received_at=1.0)  # no fix yet
    decimator.add(1, [b'GPGGA,"120001,4807.038,N,01131.000,E,1,08"'], received_at=2.0)
    (frame,) = decimator.take_frames()
    gga = frame.as_message(3.0)["types"]["GPGGA"]
    assert gga["fields"] == [0, 1, 3, 5, 6]
    assert gga["min"] == [[120000.0, 120001.0], [None, 4807.038], [None, 1131.0], [0.0, 1.0],
                          [0.0, 8.0]]  # fmt: skip


def test_a_field_that_is_not_a_number_in_a_bucket_of_its_own_is_null():
    nmea = Shape("nmea0183", ("record_type", "fields"), record_type=True)
    decimator = Decimator(Drawing.of(nmea), points_per_second=1)
    decimator.add(0, [b'GPGSV,"3,1,10,23,38,230,44"'], received_at=1.0)
    decimator.add(1, [b'GPGSV,"3,2,10,23,38,230,"'], received_at=2.0)  # no signal: empty SNR
    (frame,) = decimator.take_frames()
    assert frame.as_message(3.0)["types"]["GPGSV"]["min"][6] == [44.0, None]


def test_a_new_shape_starts_a_new_frame_even_where_seq_goes_on():
    decimator = Decimator(Drawing.of(CSV_SEQ), points_per_second=100)
    decimator.add(0, [csv_seq(0, 100, 1.0, 2.0)], received_at=1.0)
    decimator.draw(Drawing.of(CSV))
    decimator.add(1, [b"0.020000,5.0,6.0"], received_at=1.1)
    first, second = decimator.take_frames()
    assert (first.first_seq, first.last_seq, second.first_seq, second.last_seq) == (0, 0, 1, 1)
    assert second.mins == [[5.0], [6.0]]
