"""A stateful model of the batch store: appends, seals, crashes at any byte, recoveries.

Whatever the order, every sealed row survives, ``seq`` over all sealed batches is exactly
0..N-1 once recovery has run, no ``.part`` is left, and recovery may itself be interrupted.
A seal record, wherever one is left (a power cut may tear it, or leave it before the rename it
precedes), says exactly what validating its batch row by row finds.
"""

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import gateway.store.batchstore as batchstore_module
import gateway.store.recovery as recovery_module
from gateway.core.batchfile import check_batch
from gateway.core.batching import BatchPolicy
from gateway.store.batchstore import BatchStore
from gateway.store.layout import DataDir
from gateway.store.recovery import sealed_batches
from gateway.store.seals import read_seal, seal_path

T0 = 1_764_300_000.0  # a Unix time; only its day matters to the store


class Interrupted(Exception):
    pass


class StoreModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="store-model-"))
        self.data_dir = DataDir(self.root)
        self.now = 0.0
        self.sealed_content: dict[Path, bytes] = {}  # what sealing promised, byte for byte
        self.next_value = 0
        self.store = self._start()

    def teardown(self):
        if self.store and self.store._open:
            os.close(self.store._open.fd)
        shutil.rmtree(self.root)

    def _start(self):
        store = BatchStore(self.data_dir, BatchPolicy(5, 200, 30), fsync_seconds=1)
        store.recover()
        store.use_columns(["f0", "f1"], self.now)
        return store

    def _remember(self, sealed):
        for batch in sealed:
            self.sealed_content[batch.path] = batch.path.read_bytes()

    @rule(count=st.integers(1, 12), wide=st.booleans(), clock_back=st.booleans())
    def append(self, count, wide, clock_back):
        records = []
        for _ in range(count):
            value = b"x" * 60 if wide else b"%d" % self.next_value
            records.append(b"%d,%s" % (self.next_value, value))
            self.next_value += 1
        self.now += 0.5
        received_at = T0 + self.now - (100.25 if clock_back else 0)  # a clock stepped back
        self._remember(self.store.append(records, received_at, self.now))

    @rule()
    def age_out(self):
        self.now += 31
        self._remember(self.store.tick(self.now))

    @rule()
    def clean_stop(self):
        self._remember(self.store.close(self.now))
        self.store = self._start()

    @precondition(lambda self: self.store._open is not None)
    @rule(data=st.data())
    def crash(self, data):
        """Power cut: the open .part keeps any prefix of what was written."""
        part = self.store._open.path
        os.close(self.store._open.fd)
        self.store._open = None
        size = part.stat().st_size
        cut = data.draw(st.integers(0, size), label="bytes kept")
        os.truncate(part, cut)
        self.store = self._start()

    @precondition(lambda self: self.store._open is not None)
    @rule(data=st.data())
    def crash_then_crash_during_recovery(self, data):
        part = self.store._open.path
        os.close(self.store._open.fd)
        self.store._open = None
        os.truncate(part, data.draw(st.integers(0, part.stat().st_size), label="bytes kept"))
        real_commit = recovery_module.commit

        def commit_then_die(*args):
            if data.draw(st.booleans(), label="die after rename"):
                real_commit(*args)
            raise Interrupted

        recovery_module.commit = commit_then_die
        try:
            self._start()
        except Interrupted:
            pass
        finally:
            recovery_module.commit = real_commit
        self.store = self._start()

    @precondition(lambda self: self.store._open is not None)
    @rule(data=st.data())
    def power_cut_while_sealing(self, data):
        """The batch is fsynced and its seal record written (any prefix of it on disk), but
        the rename that seals it is not."""
        real_commit = batchstore_module.commit

        def cut_before_rename(part, final):
            record = seal_path(final)
            if record.exists():
                kept = data.draw(st.integers(0, record.stat().st_size), label="record bytes kept")
                os.truncate(record, kept)
            raise Interrupted

        batchstore_module.commit = cut_before_rename
        try:
            self.store.close(self.now)
        except Interrupted:
            pass
        finally:
            batchstore_module.commit = real_commit
        self.store = self._start()

    @invariant()
    def a_seal_record_says_what_validation_finds(self):
        for batch in sealed_batches(self.data_dir):
            record = read_seal(batch.path)
            if record is None:  # recovered by a restart, or torn: validated row by row
                continue
            data = batch.path.read_bytes()
            assert record.sha256 == hashlib.sha256(data).hexdigest()
            assert record.as_check() == check_batch(data, expected_first_seq=batch.name.first_seq)

    @invariant()
    def sealed_rows_are_never_lost(self):
        for path, content in self.sealed_content.items():
            assert path.read_bytes() == content, f"{path} changed after it was sealed"

    @invariant()
    def seq_is_gap_free_and_unique_over_sealed_batches(self):
        expected = 0
        for batch in sealed_batches(self.data_dir):
            check = check_batch(batch.path.read_bytes(), expected_first_seq=expected)
            assert check.ok, f"{batch.path}: {check.problem}"
            assert (check.first_seq, check.last_seq) == (batch.name.first_seq, batch.name.last_seq)
            expected = check.last_seq + 1
        opened = self.store._open
        assert self.store.next_seq == expected + (opened.rows if opened else 0)

    @invariant()
    def no_part_is_left_but_the_open_one(self):
        parts = list(self.data_dir.batches.rglob("*.part"))
        opened = self.store._open
        assert parts == ([opened.path] if opened else [])

    @invariant()
    def every_row_holds_the_value_it_was_given(self):
        for batch in sealed_batches(self.data_dir):
            for row in batch.path.read_bytes().splitlines()[1:]:
                seq, _, f0, f1 = row.split(b",")
                assert f1 in (b"x" * 60, f0), row


TestStoreModel = StoreModel.TestCase
TestStoreModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
