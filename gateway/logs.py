"""Structured logs: one line per event, ``key=value`` pairs (logfmt), to stderr.

journald adds its own time stamp, so under systemd (``JOURNAL_STREAM`` set) the line starts
with the level; elsewhere it starts with an ISO time.
"""

from __future__ import annotations

import logging
import os
import sys
import time

_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/-+@")


def _value(value) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    if text and set(text) <= _PLAIN:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def log_event(logger: logging.Logger, level: int, event: str, **fields) -> None:
    """Log one event with its fields: ``log_event(log, INFO, "batch_sealed", rows=10)``."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})


class LogfmtFormatter(logging.Formatter):
    def __init__(self, with_time: bool) -> None:
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if self.with_time:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            parts.append(f"time={stamp}.{int(record.msecs):03d}Z")
        parts.append(f"level={record.levelname.lower()}")
        parts.append(f"logger={record.name}")
        parts.append(f"event={_value(record.getMessage())}")
        for key, value in getattr(record, "fields", {}).items():
            if value is not None:
                parts.append(f"{key}={_value(value)}")
        if record.exc_info:
            parts.append(f"error={_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


def configure_logging(level: str = "info", stream=None) -> None:
    """Send every gateway log to stderr as logfmt lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogfmtFormatter(with_time="JOURNAL_STREAM" not in os.environ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
