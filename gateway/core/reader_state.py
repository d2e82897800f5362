"""The reader's two state machines as tables: the life of its port and the life of its storage.

Sans-I/O, in h11's manner: the service tells a machine what happened (``process(event)``) and
gets back the change, which says what to log or count (a reconnect, storing resumed). The
tables below are the whole truth about which changes can happen. An event a table does not list
for the current state is a bug in the caller: ``process`` raises :class:`IllegalTransition` and
leaves the state as it was.

The port machine follows the port thread's hand-off events (opened, lost) and the service's stop.
The storage machine follows the disk: the limit cleanup enforces (``GATEWAY_ON_FULL=
stop-accepting``) and the writes the disk refuses. Both can hold at once (a full disk makes a
write fail, and cleanup's check then finds the limit), hence ``REFUSING_AND_FAILING``: when the
limit clears, storing resumes, and the first write that goes through ends the failure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, TypeVar


class IllegalTransition(Exception):
    """An event the table does not allow in the current state; the state is unchanged."""


class PortState(enum.Enum):
    WAITING_FOR_PORT = enum.auto()  # started; the port has not opened yet
    READING = enum.auto()  # the port is open
    PORT_LOST = enum.auto()  # it was open and went away; the port thread retries
    STOPPING = enum.auto()  # the port thread has closed the port for good; sealing what is open
    STOPPED = enum.auto()  # sealed and reported; nothing more happens


class PortEvent(enum.Enum):
    OPENED = enum.auto()  # the port thread opened the port
    LOST = enum.auto()  # the port went away: an unplugged adapter, an I/O error
    CLOSED = enum.auto()  # asked to stop, the port thread closed the port and ended
    FINISHED = enum.auto()  # the open batch is sealed (or there was none)


PORT_TRANSITIONS: dict[PortState, dict[PortEvent, PortState]] = {
    PortState.WAITING_FOR_PORT: {
        PortEvent.OPENED: PortState.READING,
        PortEvent.CLOSED: PortState.STOPPING,
    },
    PortState.READING: {
        PortEvent.LOST: PortState.PORT_LOST,
        PortEvent.CLOSED: PortState.STOPPING,
    },
    PortState.PORT_LOST: {
        PortEvent.OPENED: PortState.READING,
        PortEvent.CLOSED: PortState.STOPPING,
    },
    PortState.STOPPING: {PortEvent.FINISHED: PortState.STOPPED},
    PortState.STOPPED: {},
}


class StorageState(enum.Enum):
    STORING = enum.auto()
    REFUSING = enum.auto()  # a disk limit, on_full=stop-accepting: rows are counted, not stored
    FAILING = enum.auto()  # the disk refused the last write (ENOSPC, an I/O error)
    REFUSING_AND_FAILING = enum.auto()  # both: the limit clears first, then a write must succeed
    NOT_STORING = enum.auto()  # mode demo: no files at all

    @property
    def refuses_rows(self) -> bool:
        return self in (StorageState.REFUSING, StorageState.REFUSING_AND_FAILING)

    @property
    def failing(self) -> bool:
        return self in (StorageState.FAILING, StorageState.REFUSING_AND_FAILING)


class StorageEvent(enum.Enum):
    DISK_LIMIT_REACHED = enum.auto()  # cleanup may not delete enough: store no more rows
    DISK_LIMIT_CLEARED = enum.auto()  # cleanup finds the limits kept (told before each append)
    WRITE_FAILED = enum.auto()  # an append, seal, fsync or quarantine entry failed
    ROWS_STORED = enum.auto()  # an append went through


_STORING_TABLE = {
    StorageEvent.DISK_LIMIT_REACHED: StorageState.REFUSING,
    StorageEvent.DISK_LIMIT_CLEARED: StorageState.STORING,
    StorageEvent.WRITE_FAILED: StorageState.FAILING,
    StorageEvent.ROWS_STORED: StorageState.STORING,
}
# Refusing, the reader appends nothing, so ROWS_STORED there is a bug in the caller.
STORAGE_TRANSITIONS: dict[StorageState, dict[StorageEvent, StorageState]] = {
    StorageState.STORING: _STORING_TABLE,
    StorageState.FAILING: {
        **_STORING_TABLE,
        StorageEvent.DISK_LIMIT_REACHED: StorageState.REFUSING_AND_FAILING,
        StorageEvent.DISK_LIMIT_CLEARED: StorageState.FAILING,
    },
    StorageState.REFUSING: {
        StorageEvent.DISK_LIMIT_REACHED: StorageState.REFUSING,
        StorageEvent.DISK_LIMIT_CLEARED: StorageState.STORING,
        StorageEvent.WRITE_FAILED: StorageState.REFUSING_AND_FAILING,
    },
    StorageState.REFUSING_AND_FAILING: {
        StorageEvent.DISK_LIMIT_REACHED: StorageState.REFUSING_AND_FAILING,
        StorageEvent.DISK_LIMIT_CLEARED: StorageState.FAILING,
        StorageEvent.WRITE_FAILED: StorageState.REFUSING_AND_FAILING,
    },
    StorageState.NOT_STORING: {},
}

State = TypeVar("State", PortState, StorageState)
Event = TypeVar("Event", PortEvent, StorageEvent)


class _Machine(Generic[State, Event]):
    def __init__(self, name: str, table: dict[State, dict[Event, State]], initial: State) -> None:
        self._name = name
        self._table = table
        self.state = initial

    def _step(self, event: Event) -> tuple[State, State]:
        before = self.state
        try:
            after = self._table[before][event]
        except KeyError:
            raise IllegalTransition(
                f"{self._name} cannot handle {event.name} in state {before.name}"
            ) from None
        self.state = after
        return before, after


@dataclass(frozen=True, slots=True)
class PortChange:
    before: PortState
    after: PortState

    @property
    def first_open(self) -> bool:
        """The first open of this run: the unfinished line a clean stop left may resume."""
        return self.before is PortState.WAITING_FOR_PORT and self.after is PortState.READING

    @property
    def reconnect(self) -> bool:
        """The port is back after a loss: an outage ends."""
        return self.before is PortState.PORT_LOST and self.after is PortState.READING


class PortMachine(_Machine[PortState, PortEvent]):
    def __init__(self) -> None:
        super().__init__("the port machine", PORT_TRANSITIONS, PortState.WAITING_FOR_PORT)

    def process(self, event: PortEvent) -> PortChange:
        return PortChange(*self._step(event))


@dataclass(frozen=True, slots=True)
class StorageChange:
    before: StorageState
    after: StorageState

    @property
    def stopped_storing(self) -> bool:
        """The disk limit was just reached (say so once, not for every refused row)."""
        return self.after.refuses_rows and not self.before.refuses_rows

    @property
    def resumed_storing(self) -> bool:
        return self.before.refuses_rows and not self.after.refuses_rows

    @property
    def began_failing(self) -> bool:
        """The first failed write since the last one that worked (say so once)."""
        return self.after.failing and not self.before.failing

    @property
    def recovered(self) -> bool:
        return self.before.failing and not self.after.failing


class StorageMachine(_Machine[StorageState, StorageEvent]):
    def __init__(self, stores_files: bool) -> None:
        initial = StorageState.STORING if stores_files else StorageState.NOT_STORING
        super().__init__("the storage machine", STORAGE_TRANSITIONS, initial)

    def process(self, event: StorageEvent) -> StorageChange:
        return StorageChange(*self._step(event))
