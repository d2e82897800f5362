"""The live view's history and the site's CSV export, from the gateway's own batches. No I/O.

The store reads batches newest first (:func:`gateway.store.history.batches_newest_first`);
these functions choose the rows and turn them into what the site sends:

- :func:`history_frames`: the ``span`` seconds of device time just before ``before_seq`` (the
  oldest ``seq`` the viewer holds), as ``frame`` messages of the stream protocol, so the viewer
  draws them as it draws live frames and the joint has no gap. Device gaps come from the
  device's counter as the reader counts them (:class:`gateway.core.intake.CounterTracker`);
  buckets are coarser for a longer span (``max_buckets`` in all).
- :func:`export_rows`: the rows received in ``[start, end)`` (the gateway's clock), as a CSV
  with one header; rows of another shape end the export (a CSV has one header), said in
  :attr:`Export.stopped`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from gateway.core.batchfile import header_columns
from gateway.core.codec import Shape
from gateway.core.decimate import Decimator, Drawing
from gateway.core.intake import CounterTracker, DeviceGap
from gateway.core.records import CODECS, counter_field, time_field

MAX_SPAN_SECONDS = 3600.0  # security limit: one request reads at most an hour of rows
MAX_BUCKETS = 12_000  # per request: a minute at 200 points a second, an hour at 3.3
MAX_POINTS_PER_SECOND = 500.0  # the stream's default bucket rate: history no finer than live


@dataclass(frozen=True, slots=True)
class BatchRows:
    """One batch's rows as stored: ``columns`` from its header (``seq``, ``received_at``, the
    device's), ``rows`` each ``seq,received_at,<device fields>`` without its newline."""

    columns: tuple[str, ...]
    rows: list[bytes]
    header: bytes = b""  # the header row as stored (quoting kept), without its newline


def batch_rows(data: bytes) -> BatchRows | None:
    """A batch file's bytes as :class:`BatchRows` (its last line dropped unless it ended in a
    newline: the open batch's row being written); None if it has no header."""
    header, _, body = data.partition(b"\n")
    if not header:
        return None
    lines = body.split(b"\n")
    lines.pop()  # after the last newline: empty, or a row the reader is still writing
    try:
        columns = header_columns(header)
    except ValueError:
        return None
    return BatchRows(columns, lines, header)


@dataclass
class History:
    frames: list[dict] = field(default_factory=list)
    first_seq: int | None = None  # of the rows read (None: none before before_seq)
    last_seq: int | None = None
    points_per_second: float = 0.0
    rows: int = 0
    exhausted: bool = False  # the oldest batch there is was read: nothing older is kept


def shape_of(columns: tuple[str, ...], line_format: str) -> Shape:
    """The shape of stored rows: their device columns, and where the counter and time are for
    ``line_format`` (the data dir's identity)."""
    names = tuple(columns[2:])
    codec = CODECS.get(line_format)
    if codec is None:  # a format this code does not know: draw what parses, from field 0
        return Shape(line_format, names)
    counter, time = counter_field(line_format), time_field(line_format)
    record_type = bool(codec.record_type)
    return Shape(
        line_format, names, counter_field=counter, time_field=time, record_type=record_type
    )


def _split(row: bytes) -> tuple[int, float, bytes]:
    seq, received_at, record = row.split(b",", 2)
    return int(seq), float(received_at), record


def _device_time(record: bytes, index: int | None, received_at: float) -> float:
    if index is None:
        return received_at
    try:
        return float(record.split(b",", index + 1)[index])
    except (ValueError, IndexError):
        return received_at


def history_frames(
    batches: Iterable[BatchRows],
    *,
    before_seq: int,
    span: float,
    line_format: str,
    max_buckets: int = MAX_BUCKETS,
) -> History:
    """Frames of the ``span`` seconds of device time before ``before_seq``, from ``batches``
    newest first. A device that restarted (its time went back) ends the span there."""
    span = min(max(span, 0.001), MAX_SPAN_SECONDS)
    chosen: list[tuple[tuple[str, ...], list[bytes]]] = []
    oldest_t: float | None = None  # device time of the oldest row taken so far
    newest_t: float | None = None
    exhausted = True
    for batch in batches:
        t_index = shape_of(batch.columns, line_format).time_field
        rows = batch.rows
        if rows and not _complete(rows[-1]):  # only the open batch's newest row may be torn
            rows = rows[:-1]
        if rows and _seq(rows[-1]) >= before_seq:
            rows = [row for row in rows if _seq(row) < before_seq]
        if not rows:
            continue
        if newest_t is None:
            newest_t = _row_time(rows[-1], t_index)
        first_t, last_t = _row_time(rows[0], t_index), _row_time(rows[-1], t_index)
        restarted = oldest_t is not None and last_t > oldest_t
        if restarted or first_t < newest_t - span or first_t > last_t:
            # The span (or a restart of the device) begins in this batch: find where, row by
            # row from its newest; the batches before it are not read.
            keep = 0
            previous = oldest_t
            for row in reversed(rows):
                t = _row_time(row, t_index)
                if (previous is not None and t > previous) or t < newest_t - span:
                    break
                previous = t
                keep += 1
            if keep:
                chosen.append((batch.columns, rows[len(rows) - keep :]))
            exhausted = False
            break
        chosen.append((batch.columns, rows))
        oldest_t = first_t
    chosen.reverse()
    result = History(exhausted=exhausted)
    if not chosen:
        return result
    result.points_per_second = min(MAX_POINTS_PER_SECOND, max_buckets / span)
    decimator: Decimator | None = None
    tracker = CounterTracker()
    for columns, rows in chosen:
        shape = shape_of(columns, line_format)
        if decimator is None:
            decimator = Decimator(Drawing.of(shape), result.points_per_second)
        else:
            decimator.draw(Drawing.of(shape))
        counter_index = shape.counter_field
        for first_seq, received_at, records in _runs(rows):
            gaps = []
            if counter_index is not None:
                gaps = _counter_gaps(tracker, records, counter_index)
            decimator.add(first_seq, records, received_at, gaps)
    assert decimator is not None
    result.frames = [frame.as_message(frame.received_at) for frame in decimator.take_frames()]
    result.first_seq, result.last_seq = _seq(chosen[0][1][0]), _seq(chosen[-1][1][-1])
    result.rows = sum(len(rows) for _, rows in chosen)
    return result


def _complete(row: bytes) -> bool:
    """A row with seq, received_at and a device field (not the torn end of an open batch)."""
    return row.count(b",", 0, 64) >= 2


def _received_at(row: bytes) -> float:
    return float(row.split(b",", 2)[1])


def _seq(row: bytes) -> int:
    return int(row[: row.index(b",")])


def _row_time(row: bytes, t_index: int | None) -> float:
    seq_end = row.index(b",")
    at_end = row.index(b",", seq_end + 1)
    received_at = float(row[seq_end + 1 : at_end])
    return _device_time(row[at_end + 1 :], t_index, received_at)


def _runs(rows: list[bytes]) -> Iterator[tuple[int, float, list[bytes]]]:
    """Runs of rows with contiguous seq and one read time (what the reader published at once):
    ``(first_seq, received_at, records)``."""
    run_seq = run_at = None
    records: list[bytes] = []
    for row in rows:
        seq_text, at_text, record = row.split(b",", 2)
        seq = int(seq_text)
        if run_seq is None or at_text != run_at or seq != run_seq + len(records):
            if records:
                yield run_seq, float(run_at), records
            run_seq, run_at, records = seq, at_text, []
        records.append(record)
    if records:
        yield run_seq, float(run_at), records


def _counter_gaps(
    tracker: CounterTracker, records: list[bytes], index: int
) -> list[tuple[int, int]]:
    counters = []
    for record in records:
        try:
            counters.append(int(record.split(b",", index + 1)[index]))
        except (ValueError, IndexError):
            return []  # a record without a readable counter: say nothing rather than guess
    return [
        (event.index, event.missing)
        for event in tracker.observe(counters)
        if isinstance(event, DeviceGap)
    ]


# -- export ------------------------------------------------------------------------------------


@dataclass
class Export:
    """What :func:`export_rows` wrote: the rows, and why it stopped early (None: it did not)."""

    rows: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    stopped: str | None = None


def export_rows(
    batches: Iterable[BatchRows], start: float, end: float, export: Export
) -> Iterator[bytes]:
    """CSV bytes (header once, then rows, each ending in a newline) of the rows received in
    ``[start, end)``, from ``batches`` oldest first. Fills ``export`` as it goes."""
    header: tuple[str, ...] | None = None
    for batch in batches:
        rows = batch.rows
        if rows and not _complete(rows[-1]):
            rows = rows[:-1]
        if not rows:
            continue
        # Rows are stored in the order they were read: a batch whose first and last rows are
        # both before the range, or both after it, is skipped unparsed (not ended on: the
        # clock may have stepped back).
        first_at, last_at = _received_at(rows[0]), _received_at(rows[-1])
        if (last_at < start and first_at < start) or (first_at >= end and last_at >= end):
            continue
        chunk: list[bytes] = []
        for row in rows:
            try:
                seq, received_at, _ = _split(row)
            except ValueError:
                continue  # a torn last line of the open batch
            if not start <= received_at < end:
                continue
            if header is None:
                header = batch.columns
                yield (batch.header or ",".join(header).encode()) + b"\n"
            elif batch.columns != header:
                export.stopped = (
                    f"the columns changed at seq {seq} ({','.join(header[2:])} -> "
                    f"{','.join(batch.columns[2:])}); export again from there"
                )
                if chunk:
                    yield b"".join(chunk)
                return
            if export.first_seq is None:
                export.first_seq = seq
            export.last_seq = seq
            export.rows += 1
            chunk.append(row + b"\n")
        if chunk:
            yield b"".join(chunk)
