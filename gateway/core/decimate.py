"""Live-view downsampling: accepted records in, min/max frames out. No I/O.

A frame covers a contiguous ``seq`` range. Its samples fall into buckets of
``1 / points_per_second`` seconds of device time (``t``); each bucket keeps the minimum and
the maximum of every channel, so a one-sample spike survives any amount of decimation. Below
``points_per_second`` samples per second every bucket holds one sample (min == max).

Records are the reader's accepted records (docs/formats.md): the device's fields joined by
commas; a :class:`Drawing` says which field is the device time ``t`` (or that the read's time
stands in, for devices that send none) and where the values begin. A record whose
fields do not parse as numbers is counted in ``unparsed`` and left out of the buckets: inside
an open frame its ``seq`` is covered by the frame's range (stored, just not drawable), before
the first drawable record it shows to the viewer as a gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.core.codec import Shape

MAX_CHANNELS = 64


@dataclass(frozen=True, slots=True)
class Drawing:
    """Where a record's device time and values are: ``time_index`` None takes the time its read
    returned instead; values are the fields from ``first_value`` on; a shape whose rows carry
    record types of their own (NMEA) has nothing to draw as one waveform."""

    time_index: int | None
    first_value: int
    drawable: bool = True

    @classmethod
    def of(cls, shape: Shape) -> Drawing:
        if shape.record_type:
            return cls(None, 0, drawable=False)
        skip = [index for index in (shape.counter_field, shape.time_field) if index is not None]
        return cls(shape.time_field, max(skip) + 1 if skip else 0)

    def channel_names(self, shape: Shape) -> list[str]:
        return list(shape.names[self.first_value :]) if self.drawable else []


@dataclass(slots=True)
class Frame:
    """Buckets of one contiguous seq range. ``mins[c][i]``: channel c, bucket i."""

    first_seq: int
    last_seq: int
    received_at: float  # when the reader read the oldest sample in the frame
    times: list[float] = field(default_factory=list)  # device t of each bucket's first sample
    mins: list[list[float]] = field(default_factory=list)
    maxs: list[list[float]] = field(default_factory=list)
    samples: int = 0  # samples drawn (unparsed records excluded)

    @property
    def channels(self) -> int:
        return len(self.mins)

    def as_message(self, sent_at: float) -> dict:
        """The ingest protocol's ``frame`` message (docs/stream-protocol.md)."""
        return {
            "type": "frame",
            "seq": [self.first_seq, self.last_seq],
            "received_at": round(self.received_at, 6),
            "sent_at": round(sent_at, 6),
            "samples": self.samples,
            "t": self.times,
            "min": self.mins,
            "max": self.maxs,
        }


class Decimator:
    """Feed ``add(first_seq, records, received_at)``; ``take_frames()`` at the frame rate.

    A new frame starts wherever ``seq`` is not contiguous (records dropped upstream) or the
    number of channels changes, so a frame never hides a hole.
    """

    def __init__(self, drawing: Drawing | int, points_per_second: float) -> None:
        if points_per_second <= 0:
            raise ValueError(f"points_per_second must be above 0, got {points_per_second}")
        self.drawing = drawing if isinstance(drawing, Drawing) else Drawing(drawing, drawing + 1)
        self.points_per_second = points_per_second
        self.samples_in = 0
        self.unparsed = 0
        self._frames: list[Frame] = []
        self._bucket: float | None = None  # bucket number of the open frame's last bucket
        self._new_frame = False  # the drawing changed: the next record opens a frame

    def draw(self, drawing: Drawing) -> None:
        """Records from here on are drawn this way (a new shape): no frame spans the change."""
        if drawing != self.drawing:
            self.drawing = drawing
            self._new_frame = True

    def add(self, first_seq: int, records: Sequence[bytes], received_at: float) -> None:
        time_index, first_channel = self.drawing.time_index, self.drawing.first_value
        drawable = self.drawing.drawable
        scale = self.points_per_second
        isfinite, floor = math.isfinite, math.floor
        frame = self._frames[-1] if self._frames and not self._new_frame else None
        self._new_frame = False
        if frame is not None and frame.last_seq + 1 != first_seq:
            frame = None
        channels = frame.channels if frame is not None else 0
        bucket_of_frame = self._bucket
        self.samples_in += len(records)
        for seq, record in enumerate(records, first_seq):
            fields = record.split(b",")
            try:
                t = received_at if time_index is None else float(fields[time_index])
                values = list(map(float, fields[first_channel:])) if drawable else []
            except (ValueError, IndexError):
                values = []
            if (
                not values
                or len(values) > MAX_CHANNELS
                or not isfinite(t)
                or not all(map(isfinite, values))
            ):
                self.unparsed += 1
                if frame is None and not drawable:
                    # Rows with record types (NMEA) still arrive: a frame without buckets
                    # says which seq reached the site, so the viewer sees no false gap.
                    frame = Frame(seq, seq, received_at)
                    self._frames.append(frame)
                    channels = 0
                if frame is not None:
                    frame.last_seq = seq
                continue
            if frame is None or len(values) != channels:
                frame = Frame(seq, seq, received_at, mins=[[] for _ in values])
                frame.maxs = [[] for _ in values]
                self._frames.append(frame)
                channels = len(values)
                bucket_of_frame = None
            frame.last_seq = seq
            frame.samples += 1
            bucket = floor(t * scale)
            if bucket == bucket_of_frame:
                for low, high, value in zip(frame.mins, frame.maxs, values, strict=True):
                    if value < low[-1]:
                        low[-1] = value
                    elif value > high[-1]:
                        high[-1] = value
            else:
                bucket_of_frame = bucket
                frame.times.append(t)
                for low, high, value in zip(frame.mins, frame.maxs, values, strict=True):
                    low.append(value)
                    high.append(value)
        self._bucket = bucket_of_frame

    def take_frames(self) -> list[Frame]:
        """Everything added since the last call, as frames (possibly none)."""
        frames, self._frames = self._frames, []
        self._bucket = None
        return frames
