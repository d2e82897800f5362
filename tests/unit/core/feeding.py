"""Drive a LineIntake the way the reader does and keep everything that comes out."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.core.codec import Codec, Rejection, Shape
from gateway.core.framing import LineFramer
from gateway.core.intake import (
    CounterReset,
    CounterTracker,
    DeviceGap,
    Event,
    FormatDetected,
    Intake,
    LineIntake,
    ShapeChanged,
    ShapeLearned,
)
from gateway.core.records import make_codec


@dataclass
class Row:
    received_at: float | None
    shape: Shape
    record: bytes


@dataclass
class Feeder:
    intake: LineIntake
    rows: list[Row] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        codec: Codec | str,
        *,
        fragment: bytes = b"",
        last: int | None = None,
        max_line_bytes: int = 4096,
        terminator: bytes = b"\n",
        **limits,
    ) -> Feeder:
        if isinstance(codec, str):
            codec = make_codec(codec)
        intake = LineIntake(
            LineFramer(terminator, max_line_bytes), codec, CounterTracker(last), **limits
        )
        intake.port_opened(fragment)
        return cls(intake)

    def take(self, result: Intake) -> Intake:
        for run in result.runs:
            self.rows += [Row(run.received_at, run.shape, record) for record in run.records]
        self.rejections += result.rejections
        self.events += result.events
        return result

    def feed(self, data: bytes, at: float = 0.0) -> Intake:
        return self.take(self.intake.feed(data, at))

    def flush(self, at: float = 0.0) -> Intake:
        return self.take(self.intake.flush(at))

    @property
    def records(self) -> list[bytes]:
        return [row.record for row in self.rows]

    @property
    def reasons(self) -> list[tuple[str, str]]:
        return [(r.reason, r.detail) for r in self.rejections]

    def of(self, kind: type) -> list:
        return [event for event in self.events if isinstance(event, kind)]

    @property
    def shape_events(self) -> list:
        kinds = (FormatDetected, ShapeLearned, ShapeChanged)
        return [event for event in self.events if isinstance(event, kinds)]

    @property
    def counter_events(self) -> list:
        return [event for event in self.events if isinstance(event, DeviceGap | CounterReset)]
