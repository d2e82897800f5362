"""What the steps tell the uploader service as they go, one small class per event.

The steps call the runtime's ``emit`` with one of these, from the pipelines' threads; the
service matches on the class (counters, retries, logs, the watchdog's sign of progress).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sent:
    """An upload created its object (not yet verified)."""

    data_dir: str
    batch: str
    size: int  # object bytes


@dataclass(frozen=True)
class AlreadyThere:
    """The key held this batch already: a retry after a crash or a lost answer."""

    data_dir: str
    batch: str
    key: str


@dataclass(frozen=True)
class Failed:
    """An attempt failed (upload, conflict or verify); the batch is tried again later."""

    data_dir: str
    batch: str
    key: str
    error: str  # worded for the operator


@dataclass(frozen=True)
class Uploaded:
    """The object was verified and the batch marked touched."""

    data_dir: str
    batch: str
    key: str
    size: int  # object bytes verified


@dataclass(frozen=True)
class Quarantined:
    """An invalid batch was uploaded under the quarantine prefix and moved to quarantine/."""

    data_dir: str
    batch: str
    key: str
    size: int
    reason: str


Event = Sent | AlreadyThere | Failed | Uploaded | Quarantined
