import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.reader_state import (
    PORT_TRANSITIONS,
    STORAGE_TRANSITIONS,
    IllegalTransition,
    PortEvent,
    PortMachine,
    PortState,
    StorageEvent,
    StorageMachine,
    StorageState,
)

P, PE = PortState, PortEvent
S, SE = StorageState, StorageEvent

# Written out here, apart from the module's tables, so a change to a table must be made twice.
EXPECTED_PORT = {
    (P.WAITING_FOR_PORT, PE.OPENED): P.READING,
    (P.WAITING_FOR_PORT, PE.CLOSED): P.STOPPING,
    (P.READING, PE.LOST): P.PORT_LOST,
    (P.READING, PE.CLOSED): P.STOPPING,
    (P.PORT_LOST, PE.OPENED): P.READING,
    (P.PORT_LOST, PE.CLOSED): P.STOPPING,
    (P.STOPPING, PE.FINISHED): P.STOPPED,
}
EXPECTED_STORAGE = {
    (S.RECOVERING, SE.RECOVERED): S.STORING,
    (S.RECOVERING, SE.WRITE_FAILED): S.RECOVERING,
    (S.STORING, SE.DISK_LIMIT_REACHED): S.REFUSING,
    (S.STORING, SE.DISK_LIMIT_CLEARED): S.STORING,
    (S.STORING, SE.WRITE_FAILED): S.FAILING,
    (S.STORING, SE.ROWS_STORED): S.STORING,
    (S.FAILING, SE.DISK_LIMIT_REACHED): S.REFUSING_AND_FAILING,
    (S.FAILING, SE.DISK_LIMIT_CLEARED): S.FAILING,
    (S.FAILING, SE.WRITE_FAILED): S.FAILING,
    (S.FAILING, SE.DISK_WRITABLE): S.STORING,
    (S.REFUSING, SE.DISK_LIMIT_REACHED): S.REFUSING,
    (S.REFUSING, SE.DISK_LIMIT_CLEARED): S.STORING,
    (S.REFUSING, SE.WRITE_FAILED): S.REFUSING_AND_FAILING,
    (S.REFUSING_AND_FAILING, SE.DISK_LIMIT_REACHED): S.REFUSING_AND_FAILING,
    (S.REFUSING_AND_FAILING, SE.DISK_LIMIT_CLEARED): S.FAILING,
    (S.REFUSING_AND_FAILING, SE.WRITE_FAILED): S.REFUSING_AND_FAILING,
    (S.REFUSING_AND_FAILING, SE.DISK_WRITABLE): S.REFUSING,
}


def port_in(state):
    machine = PortMachine()
    machine.state = state
    return machine


def storage_in(state):
    machine = StorageMachine(stores_files=True)
    machine.state = state
    return machine


def moves_as_expected(machine, event, expected):
    """Process ``event``: it moves as ``expected`` says, or raises and leaves the state."""
    before = machine.state
    if (before, event) in expected:
        transition = machine.process(event)
        assert (transition.before, transition.after) == (before, expected[before, event])
        assert machine.state is expected[before, event]
    else:
        with pytest.raises(IllegalTransition):
            machine.process(event)
        assert machine.state is before


@pytest.mark.parametrize("state, event", list(itertools.product(PortState, PortEvent)))
def test_every_port_state_and_event_moves_as_written_or_raises_unchanged(state, event):
    moves_as_expected(port_in(state), event, EXPECTED_PORT)


@pytest.mark.parametrize("state, event", list(itertools.product(StorageState, StorageEvent)))
def test_every_storage_state_and_event_moves_as_written_or_raises_unchanged(state, event):
    moves_as_expected(storage_in(state), event, EXPECTED_STORAGE)


def test_the_tables_name_every_state():
    assert set(PORT_TRANSITIONS) == set(PortState)
    assert set(STORAGE_TRANSITIONS) == set(StorageState)


def test_machines_start_waiting_for_the_port_and_recovering_unless_the_mode_stores_nothing():
    assert PortMachine().state is P.WAITING_FOR_PORT
    assert StorageMachine(stores_files=True).state is S.RECOVERING
    assert StorageMachine(stores_files=False).state is S.NOT_STORING


def test_an_illegal_event_says_which_machine_event_and_state():
    machine = PortMachine()
    with pytest.raises(IllegalTransition) as raised:
        machine.process(PE.LOST)
    assert str(raised.value) == "the port machine cannot handle LOST in state WAITING_FOR_PORT"
    assert machine.state is P.WAITING_FOR_PORT


def test_a_port_that_opened_is_not_opened_again_without_a_loss():
    machine = port_in(P.READING)
    with pytest.raises(IllegalTransition, match="cannot handle OPENED in state READING"):
        machine.process(PE.OPENED)
    assert machine.state is P.READING


def test_no_port_event_after_the_port_is_closed_for_good():
    for event in (PE.OPENED, PE.LOST, PE.CLOSED):
        machine = port_in(P.STOPPING)
        with pytest.raises(IllegalTransition):
            machine.process(event)
        assert machine.state is P.STOPPING


def test_rows_stored_while_refusing_is_a_bug_in_the_caller():
    machine = storage_in(S.REFUSING)
    with pytest.raises(IllegalTransition) as raised:
        machine.process(SE.ROWS_STORED)
    assert str(raised.value) == "the storage machine cannot handle ROWS_STORED in state REFUSING"
    assert machine.state is S.REFUSING


def test_a_reader_that_stores_nothing_takes_no_storage_event():
    for event in StorageEvent:
        machine = StorageMachine(stores_files=False)
        with pytest.raises(IllegalTransition):
            machine.process(event)
        assert machine.state is S.NOT_STORING


def test_an_open_after_a_loss_is_told_from_the_first_by_the_state_before():
    machine = PortMachine()
    assert machine.process(PE.OPENED).before is P.WAITING_FOR_PORT
    machine.process(PE.LOST)
    assert machine.process(PE.OPENED).before is P.PORT_LOST


def test_a_full_disk_then_a_disk_limit_change_the_state_once_each_way():
    """The reader logs on a change only: store_failed, storing_stopped_disk_limit,
    disk_limit_cleared, store_recovered, each once, however many writes and rows come between."""
    machine = StorageMachine(stores_files=True)
    machine.process(SE.RECOVERED)
    changes = []
    for event in [
        SE.DISK_LIMIT_CLEARED,
        SE.ROWS_STORED,
        SE.WRITE_FAILED,
        SE.DISK_LIMIT_CLEARED,
        SE.WRITE_FAILED,
        SE.DISK_LIMIT_REACHED,
        SE.WRITE_FAILED,  # a seal fails while refusing
        SE.DISK_LIMIT_REACHED,
        SE.DISK_LIMIT_CLEARED,
        SE.WRITE_FAILED,
        SE.DISK_WRITABLE,  # a probe write went through
        SE.ROWS_STORED,
        SE.ROWS_STORED,
    ]:
        if machine.process(event).changed:
            changes.append(event)
    assert changes == [
        SE.WRITE_FAILED,
        SE.DISK_LIMIT_REACHED,
        SE.DISK_LIMIT_CLEARED,
        SE.DISK_WRITABLE,
    ]
    assert machine.state is S.STORING


def test_the_limit_and_a_failure_clear_in_either_order():
    for first, then, between in [
        (SE.DISK_LIMIT_CLEARED, SE.DISK_WRITABLE, S.FAILING),
        (SE.DISK_WRITABLE, SE.DISK_LIMIT_CLEARED, S.REFUSING),
    ]:
        machine = storage_in(S.REFUSING_AND_FAILING)
        assert machine.process(first).after is between
        assert machine.process(then).after is S.STORING


def test_a_start_on_a_disk_that_refuses_waits_in_recovering_and_stores_nothing():
    """On a full or read-only disk the data dir's recovery fails and waits: rows are counted,
    no append is tried, the disk limit is not asked (nothing could be stored anyway)."""
    machine = StorageMachine(stores_files=True)
    assert machine.process(SE.WRITE_FAILED).changed is False  # recovery failed: still waiting
    for event in (SE.ROWS_STORED, SE.DISK_LIMIT_REACHED, SE.DISK_WRITABLE):
        with pytest.raises(
            IllegalTransition, match=f"cannot handle {event.name} in state RECOVERING"
        ):
            machine.process(event)
    assert machine.process(SE.RECOVERED).after is S.STORING
    with pytest.raises(IllegalTransition):
        machine.process(SE.RECOVERED)  # recovery happens once


def test_rows_are_appended_only_while_storing():
    for state in (S.RECOVERING, S.FAILING, S.REFUSING, S.REFUSING_AND_FAILING):
        machine = storage_in(state)
        with pytest.raises(IllegalTransition):
            machine.process(SE.ROWS_STORED)
        assert machine.state is state


@given(st.lists(st.sampled_from(PortEvent), max_size=40))
def test_any_port_events_move_per_the_table_or_raise_leaving_the_state(events):
    machine = PortMachine()
    for event in events:
        moves_as_expected(machine, event, EXPECTED_PORT)


@given(st.booleans(), st.lists(st.sampled_from(StorageEvent), max_size=40))
def test_any_storage_events_move_per_the_table_or_raise_leaving_the_state(stores, events):
    machine = StorageMachine(stores_files=stores)
    for event in events:
        moves_as_expected(machine, event, EXPECTED_STORAGE)
