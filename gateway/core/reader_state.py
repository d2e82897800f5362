"""The reader's two state machines as tables: the life of its port and the life of its storage.

Sans-I/O, in h11's manner: the service tells a machine what happened (``process(event)``) and
gets back the :class:`Transition`. The tables below are the whole truth about which transitions
can happen. An event a table does not list for the current state is a bug in the caller:
``process`` raises :class:`IllegalTransition` and leaves the state as it was. Many events keep
the state (a self-loop: one more failed write while failing); the service logs only the ones
that change it, so each log line says something new.

The port machine follows the port thread's hand-off events (opened, lost) and the service's stop.
The storage machine follows the disk: the recovery of the data dir at start, the limit cleanup
enforces (``GATEWAY_ON_FULL=stop-accepting``) and the writes the disk refuses. It starts in
``RECOVERING``: leftover ``.part`` files are sealed and the start recorded before any row is
stored; on a full or read-only disk that waits, rows are counted, and the service retries
after each probe write the disk takes. A refused write makes it ``FAILING``: no write is
tried (rows are counted by cause) until a probe goes through (``DISK_WRITABLE``), a few hundred
milliseconds later, not at cleanup's next check. The limit and a failure can hold at once (a
full disk makes a write fail, and cleanup's check then finds the limit), hence
``REFUSING_AND_FAILING``: each clears on its own, in either order.
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
    RECOVERING = enum.auto()  # started; the data dir is not recovered yet (or the disk refused)
    STORING = enum.auto()
    REFUSING = enum.auto()  # a disk limit, on_full=stop-accepting: rows are counted, not stored
    FAILING = enum.auto()  # the disk refused a write (full, read-only, I/O error): probing
    REFUSING_AND_FAILING = enum.auto()  # both at once; each clears on its own
    NOT_STORING = enum.auto()  # mode demo: no files at all


class StorageEvent(enum.Enum):
    RECOVERED = enum.auto()  # leftovers sealed, the start recorded: rows may be stored
    DISK_LIMIT_REACHED = enum.auto()  # cleanup may not delete enough: store no more rows
    DISK_LIMIT_CLEARED = enum.auto()  # cleanup finds the limits kept (told before each append)
    WRITE_FAILED = enum.auto()  # recovery, an append, seal, fsync or quarantine entry failed
    DISK_WRITABLE = enum.auto()  # a probe write went through: try storing again
    ROWS_STORED = enum.auto()  # an append went through


# Only STORING appends, so ROWS_STORED elsewhere is a bug in the caller; probes run only while
# a write failed, and the limit is not asked while recovering (no row can be stored anyway).
STORAGE_TRANSITIONS: dict[StorageState, dict[StorageEvent, StorageState]] = {
    StorageState.RECOVERING: {
        StorageEvent.RECOVERED: StorageState.STORING,
        StorageEvent.WRITE_FAILED: StorageState.RECOVERING,
    },
    StorageState.STORING: {
        StorageEvent.DISK_LIMIT_REACHED: StorageState.REFUSING,
        StorageEvent.DISK_LIMIT_CLEARED: StorageState.STORING,
        StorageEvent.WRITE_FAILED: StorageState.FAILING,
        StorageEvent.ROWS_STORED: StorageState.STORING,
    },
    StorageState.FAILING: {
        StorageEvent.DISK_LIMIT_REACHED: StorageState.REFUSING_AND_FAILING,
        StorageEvent.DISK_LIMIT_CLEARED: StorageState.FAILING,
        StorageEvent.WRITE_FAILED: StorageState.FAILING,
        StorageEvent.DISK_WRITABLE: StorageState.STORING,
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
        StorageEvent.DISK_WRITABLE: StorageState.REFUSING,
    },
    StorageState.NOT_STORING: {},
}

#: States in which the disk refused a write: the service probes it, and tries no other write.
DISK_REFUSING = frozenset(
    {StorageState.RECOVERING, StorageState.FAILING, StorageState.REFUSING_AND_FAILING}
)

State = TypeVar("State", PortState, StorageState)
Event = TypeVar("Event", PortEvent, StorageEvent)


@dataclass(frozen=True, slots=True)
class Transition(Generic[State]):
    before: State
    after: State

    @property
    def changed(self) -> bool:
        """False for a self-loop: nothing new to say."""
        return self.before is not self.after


class StateMachine(Generic[State, Event]):
    """A state and its table; :meth:`process` is the only way to change the state."""

    def __init__(self, name: str, table: dict[State, dict[Event, State]], initial: State) -> None:
        self.name = name
        self.state = initial
        # Built once: the reader processes events for every append, so this allocates nothing.
        self._transitions = {
            before: {event: Transition(before, after) for event, after in row.items()}
            for before, row in table.items()
        }

    def process(self, event: Event) -> Transition[State]:
        try:
            transition = self._transitions[self.state][event]
        except KeyError:
            raise IllegalTransition(
                f"{self.name} cannot handle {event.name} in state {self.state.name}"
            ) from None
        self.state = transition.after
        return transition


class PortMachine(StateMachine[PortState, PortEvent]):
    def __init__(self) -> None:
        super().__init__("the port machine", PORT_TRANSITIONS, PortState.WAITING_FOR_PORT)


class StorageMachine(StateMachine[StorageState, StorageEvent]):
    def __init__(self, stores_files: bool) -> None:
        initial = StorageState.RECOVERING if stores_files else StorageState.NOT_STORING
        super().__init__("the storage machine", STORAGE_TRANSITIONS, initial)
