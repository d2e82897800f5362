"""One batch file's bytes -> a :class:`~gateway.core.report.BatchResult` (pandas, numpy).

This is the work a Dask worker does per batch; it reads nothing itself (the bytes are given).
Statistics are exact (see :mod:`gateway.core.report`): each channel's values are read as
the decimals the device wrote, ``v / 10**d`` with integer ``v``, and summed as integers. (Each
value is the shortest decimal that reads back as the same double: the device's text for up to
15 significant digits.)
"""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import pandas as pd

from gateway.core.batchfile import header_columns
from gateway.core.records import counter_field, stored_format, time_field
from gateway.core.report import BatchResult, Bucket, ChannelStats, CounterJump

_INT64_LIMIT = 2**63
_FLOAT_EXACT = 2**53  # integers below this are exact in a float64
_MAX_DECIMALS = 15
# Numbers read correctly rounded, so every machine gets the same doubles: pandas 3 does it by
# default (and deprecates the option); pandas 2's default parser may be off by one ulp.
_PRECISE = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


class BatchProblem(ValueError):
    """The bytes are not a batch this report can read; the message says why."""


def summarize_batch(
    data: bytes,
    name: str,
    line_format: str,
    buckets: int,
    expected_seqs: tuple[int, int] | None = None,
) -> BatchResult:
    """Everything the report needs from one batch; a batch that cannot be read comes back
    with ``problem`` set instead of raising, so one bad object does not stop a fleet report."""
    try:
        return _summarize(data, name, line_format, buckets, expected_seqs)
    except (BatchProblem, UnicodeDecodeError, pd.errors.ParserError) as error:
        return BatchResult(name, problem=str(error) or type(error).__name__)
    except pd.errors.EmptyDataError:
        return BatchResult(name, problem="empty file")


def _summarize(
    data: bytes,
    name: str,
    line_format: str,
    buckets: int,
    expected_seqs: tuple[int, int] | None,
) -> BatchResult:
    frame = pd.read_csv(io.BytesIO(data), engine="c", na_filter=False, **_PRECISE)
    columns = [str(c) for c in frame.columns]
    if columns[:2] != ["seq", "received_at"] or len(columns) < 3:
        raise BatchProblem("header does not start with seq,received_at and a device field")
    if frame.empty:
        raise BatchProblem("no rows")
    seq = _integers(frame["seq"], "seq")
    rows = len(seq)
    first_seq, last_seq = int(seq[0]), int(seq[-1])
    if rows > 1 and not np.all(np.diff(seq) == 1):
        raise BatchProblem(f"seq is not contiguous from {first_seq}")
    if expected_seqs is not None and (first_seq, last_seq) != tuple(expected_seqs):
        raise BatchProblem(
            f"rows hold seq {first_seq}-{last_seq}, the name says "
            f"{expected_seqs[0]}-{expected_seqs[1]}"
        )
    received = _floats(frame["received_at"], "received_at")
    device = columns[2:]
    if line_format == "auto":  # nothing said how the rows were read: the rows say it
        line_format = format_of(data)
    counter_index = counter_field(line_format)
    t_index = time_field(line_format)
    skipped = {counter_index, t_index}
    if t_index is not None and t_index >= len(device):
        raise BatchProblem(f"{line_format} rows need a device time field; header has {device}")
    if line_format == "nmea0183":
        channels: tuple[str, ...] = ()  # each record type has fields of its own: none to plot
    else:
        channels = tuple(name for i, name in enumerate(device) if i not in skipped)

    jumps: tuple[CounterJump, ...] = ()
    first_counter = last_counter = None
    counter = None
    if counter_index is not None:
        name = device[counter_index]
        counter = _integers(frame[name], f"device counter {name}")
        first_counter, last_counter = int(counter[0]), int(counter[-1])
        steps = np.diff(counter)
        where = np.flatnonzero(steps != 1)
        jumps = tuple(
            CounterJump(
                int(seq[i + 1]), int(counter[i]), int(counter[i + 1]), float(received[i + 1])
            )
            for i in where
        )
    device_time = frame[device[t_index]] if t_index is not None else frame["received_at"]
    device_rate = _device_rate(device_time, counter, rows)

    values = [_numbers(frame[channel]) for channel in channels]
    stats = tuple(_exact_stats(x) for x in values)

    count = max(1, min(buckets, rows))
    bounds = [rows * i // count for i in range(count + 1)]
    starts = np.array(bounds[:-1], dtype=np.intp)
    earliest = np.minimum.reduceat(received, starts).tolist()
    latest = np.maximum.reduceat(received, starts).tolist()
    lows = [np.fmin.reduceat(x, starts).tolist() for x in values]
    highs = [np.fmax.reduceat(x, starts).tolist() for x in values]
    slices = tuple(
        Bucket(
            first_seq + bounds[i],
            bounds[i + 1] - bounds[i],
            earliest[i],
            latest[i],
            tuple(low[i] for low in lows),
            tuple(high[i] for high in highs),
        )
        for i in range(count)
    )
    return BatchResult(
        name,
        first_seq,
        last_seq,
        rows,
        float(received[0]),
        float(received[-1]),
        float(received.min()),
        float(received.max()),
        first_counter,
        last_counter,
        device_rate,
        channels,
        stats,
        slices,
        jumps,
    )


def format_of(data: bytes) -> str:
    """The format a batch's rows were read in, from its header and first rows (for a batch
    whose data dir is not at hand to say it)."""
    lines = data.split(b"\n", 9)
    device = header_columns(lines[0])[2:]
    rows = [row.split(b",", 2)[2] for row in lines[1:9] if row.count(b",") >= 2]
    return stored_format(device, rows)


def _integers(column: pd.Series, what: str) -> np.ndarray:
    if column.dtype.kind not in "iu":
        raise BatchProblem(f"{what} is not a whole number in every row")
    return column.to_numpy()


def _floats(column: pd.Series, what: str) -> np.ndarray:
    if column.dtype.kind not in "iuf":
        raise BatchProblem(f"{what} is not a number in every row")
    return column.to_numpy(dtype=np.float64)


def _numbers(column: pd.Series) -> np.ndarray:
    """float64 values; NaN where a field is not a finite number (text fields)."""
    if column.dtype.kind in "iuf":
        x = column.to_numpy(dtype=np.float64, copy=True)
    else:
        x = pd.to_numeric(column.astype(str), errors="coerce").to_numpy(dtype=np.float64, copy=True)
    x[~np.isfinite(x)] = np.nan
    return x


def _device_rate(t_column: pd.Series, counter: np.ndarray | None, rows: int) -> float | None:
    """Samples per second of device time: counter span (or rows) over the t span."""
    if t_column.dtype.kind not in "iuf" or rows < 2:
        return None
    t = t_column.to_numpy(dtype=np.float64)
    span = float(t[-1] - t[0])
    if counter is not None:
        if np.any(np.diff(counter) < 1):  # the device restarted inside: t started over
            return None
        samples = int(counter[-1] - counter[0])
    else:
        samples = rows - 1
    return samples / span if span > 0 else None


def _exact_stats(x: np.ndarray) -> ChannelStats:
    finite = x[~np.isnan(x)]
    non_numeric = len(x) - len(finite)
    if len(finite) == 0:
        return ChannelStats(non_numeric=non_numeric)
    found = _as_decimals(finite)
    if found is None:  # too many digits for one scale in int64: each value's shortest decimal
        return ChannelStats.of_values((repr(v) for v in finite.tolist()), non_numeric)
    v, decimals = found
    scale = 10**decimals
    return ChannelStats(
        len(v),
        Fraction(_int_sum(v), scale),
        Fraction(_int_sum_of_squares(v), scale * scale),
        Fraction(int(v.min()), scale),
        Fraction(int(v.max()), scale),
        non_numeric,
    )


def _as_decimals(x: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Integers ``v`` and the fewest decimals ``d`` with ``v / 10**d == x`` for every value.

    ``v / 10**d`` is then the decimal the device wrote (for fields of up to 15 significant
    digits: no two such decimals read as the same double).
    """
    for decimals in range(_MAX_DECIMALS + 1):
        scale = 10.0**decimals
        v = np.rint(x * scale)
        if np.abs(v).max() >= _FLOAT_EXACT:
            return None
        if np.array_equal(v / scale, x):
            return v.astype(np.int64), decimals
    return None


def _int_sum(v: np.ndarray) -> int:
    biggest = int(np.abs(v).max())
    if biggest * len(v) < _INT64_LIMIT:
        return int(v.sum())
    return sum(v.tolist())


def _int_sum_of_squares(v: np.ndarray) -> int:
    biggest = int(np.abs(v).max())
    square = biggest * biggest
    if square * len(v) < _INT64_LIMIT:
        return int((v * v).sum())
    if square < _INT64_LIMIT:  # exact in int64 piece by piece
        step = max(1, (_INT64_LIMIT - 1) // square)
        return sum(int((piece * piece).sum()) for piece in np.array_split(v, -(-len(v) // step)))
    return sum(i * i for i in v.tolist())
