"""Structured logs: one line per event, ``key=value`` pairs (logfmt), to stderr.

Under systemd, when stderr is the journal (``JOURNAL_STREAM`` names its device and inode),
each line starts with an sd-daemon priority prefix (``<4>`` for a warning, sd-daemon(3)), so
``journalctl -p warning`` finds the warnings; journald adds its own time stamp. Elsewhere the
line starts with an ISO time.
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


# sd-daemon(3) priorities: SD_CRIT, SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG.
JOURNAL_PRIORITIES = {
    logging.CRITICAL: "<2>",
    logging.ERROR: "<3>",
    logging.WARNING: "<4>",
    logging.INFO: "<6>",
    logging.DEBUG: "<7>",
}


def writes_to_journal(stream) -> bool:
    """Whether ``stream`` is the journal systemd connected (``JOURNAL_STREAM=dev:inode``).

    A child whose stderr was redirected elsewhere inherits the variable too, so the stream's
    own device and inode must match, as systemd.exec(5) advises.
    """
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        stat = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return expected == f"{stat.st_dev}:{stat.st_ino}"


def journal_priority(levelno: int) -> str:
    for level in sorted(JOURNAL_PRIORITIES, reverse=True):
        if levelno >= level:
            return JOURNAL_PRIORITIES[level]
    return JOURNAL_PRIORITIES[logging.DEBUG]


class LogfmtFormatter(logging.Formatter):
    def __init__(self, with_time: bool, journal: bool = False) -> None:
        super().__init__()
        self.with_time = with_time
        self.journal = journal

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
        line = " ".join(parts)
        return journal_priority(record.levelno) + line if self.journal else line


def configure_logging(level: str = "info", stream=None) -> None:
    """Send every gateway log to stderr as logfmt lines."""
    stream = stream or sys.stderr
    journal = writes_to_journal(stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter(with_time=not journal, journal=journal))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
