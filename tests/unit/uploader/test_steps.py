"""Validate and Process on a data dir: typed results, and a processing record kept per batch."""

import datetime as dt
import gzip
import hashlib
import json
from pathlib import Path

from gateway.core.batching import BatchPolicy
from gateway.store.batchstore import BatchStore
from gateway.store.layout import DataDir
from gateway.store.ledgers import ClockStepRecord, RunRecord, clock_steps, runs
from gateway.store.seals import read_seal, seal_path
from gateway.uploader import steps
from gateway.uploader.copies import CompressedCopies
from gateway.uploader.results import BatchStatus, Processed
from tests.support.uploads import write_batches


def relpath_of(data_dir, path):
    return path.relative_to(data_dir / "batches").as_posix()


def destination(data_dir, compression="gzip"):
    return steps.Destination(str(data_dir), "gw", "bucket", "raw", compression, 8 << 20)


def test_a_valid_batch_becomes_a_gzipped_object_with_its_manifest_as_metadata(tmp_path):
    (path,) = write_batches(tmp_path, 1, 10)
    validated = steps.validate(str(tmp_path), relpath_of(tmp_path, path))
    assert validated.status is BatchStatus.VALID and validated.manifest.rows == 10
    processed = steps.process(destination(tmp_path), validated)
    assert processed.key == "raw/gw/2024/05/01/000000000000-000000000009.csv.gz"
    assert processed.content_type == "application/gzip"
    with open(processed.upload_path, "rb") as file:
        assert gzip.decompress(file.read()) == path.read_bytes()
    assert processed.metadata["rows"] == "10"
    assert processed.metadata["csv-sha256"] == processed.csv_sha256
    assert steps.process(destination(tmp_path), validated) == processed  # kept, reused


def test_an_invalid_batch_goes_as_it_is_under_the_quarantine_prefix_with_its_reason(tmp_path):
    (path,) = write_batches(tmp_path, 1, 10)
    path.write_bytes(path.read_bytes()[:-3])
    validated = steps.validate(str(tmp_path), relpath_of(tmp_path, path))
    assert validated.status is BatchStatus.INVALID
    assert validated.problem.startswith("row 10 is incomplete")
    processed = steps.process(destination(tmp_path), validated)
    assert processed.key == "raw/quarantine/gw/2024/05/01/000000000000-000000000009.csv"
    assert processed.upload_path == str(path) and processed.content_type == "text/csv"
    assert processed.metadata == {"reason": validated.problem}


def test_a_batch_gone_since_the_scan_is_missing_and_not_processed(tmp_path):
    (path,) = write_batches(tmp_path, 1, 10)
    relpath = relpath_of(tmp_path, path)
    validated = steps.validate(str(tmp_path), relpath)
    path.unlink()
    assert steps.process(destination(tmp_path), validated) is None
    missing = steps.validate(str(tmp_path), relpath)
    assert missing.status is BatchStatus.MISSING
    assert steps.process(destination(tmp_path), missing) is None


def test_a_copy_that_memory_cannot_take_is_written_to_the_workspace(tmp_path):
    small, bigger = write_batches(tmp_path, 2, 200)
    copies = CompressedCopies(budget_bytes=20_000, most_bytes=bigger.stat().st_size - 1)
    validated = [steps.validate(str(tmp_path), relpath_of(tmp_path, p)) for p in (small, bigger)]
    kept, too_big = (steps.process(destination(tmp_path), v, copies) for v in validated)
    assert copies.holds(kept.upload_path) and not Path(kept.upload_path).exists()
    assert gzip.decompress(copies.take(kept.upload_path)) == small.read_bytes()
    assert not copies.holds(too_big.upload_path)  # the batch is over most_bytes
    assert all(copies.keep(f"other-{i}", b"x" * 1000) for i in range(19))
    assert kept.digest.size > copies.budget_bytes - copies.held_bytes
    over_budget = steps.process(destination(tmp_path), validated[0], copies)
    assert over_budget == kept and not copies.holds(kept.upload_path)
    for made, path in ((too_big, bigger), (over_budget, small)):
        with open(made.upload_path, "rb") as file:
            assert gzip.decompress(file.read()) == path.read_bytes()


def test_a_batch_processed_again_after_a_crash_becomes_the_same_object(tmp_path):
    """A chunk that crashed before its processed.json is processed again: the batch must
    become the very object the first run may have uploaded (its key, bytes and digest)."""
    (path,) = write_batches(tmp_path, 1, 500)
    validated = steps.validate(str(tmp_path), relpath_of(tmp_path, path))
    first = steps.process(destination(tmp_path), validated)
    sent = Path(first.upload_path).read_bytes()
    Path(first.upload_path).write_bytes(sent[:100])  # the crash cut the copy short
    again = steps.process(destination(tmp_path), validated)
    assert again == first and Path(again.upload_path).read_bytes() == sent
    assert Processed.from_json(json.loads(json.dumps(again.to_json()))) == again


def _processed_clock(data_dir, run_synced, steps_after_start=()):
    """The ``clock`` metadata of a 10-row batch received from 2024-05-01 01:00 UTC, by a run that
    began an hour earlier with the clock ``run_synced`` and saw the given steps."""
    (path,) = write_batches(data_dir, 1, 10)
    store = DataDir(data_dir)
    start = dt.datetime(2024, 5, 1, tzinfo=dt.UTC).timestamp()
    if run_synced != "no run":
        runs(store).append(RunRecord(at=start, pid=7, first_seq=0, clock_synced=run_synced))
    for offset, step, synced in steps_after_start:
        record = ClockStepRecord(at=start + offset + step, step_seconds=step, synced=synced, pid=7)
        clock_steps(store).append(record)
    validated = steps.validate(str(data_dir), relpath_of(data_dir, path))
    return steps.process(destination(data_dir), validated).metadata["clock"]


def test_an_objects_metadata_says_whether_its_rows_were_stamped_on_a_synchronized_clock(tmp_path):
    assert _processed_clock(tmp_path / "a", True) == "synced"
    assert _processed_clock(tmp_path / "b", False) == "unsynced"
    assert _processed_clock(tmp_path / "c", None) == "unknown"
    assert _processed_clock(tmp_path / "d", "no run") == "unknown"
    # NTP's first answer a minute into the run moved the clock 30 s on: the rows, an hour in,
    # were stamped after it; not so when the step left the clock unsynchronized.
    assert _processed_clock(tmp_path / "e", False, [(60.0, 30.0, True)]) == "synced"
    assert _processed_clock(tmp_path / "f", False, [(60.0, 30.0, False)]) == "unsynced"
    # A step of a day forward: every row of the batch (stamped the day before) came before it.
    assert _processed_clock(tmp_path / "g", False, [(60.0, 86_400.0, True)]) == "unsynced"


def test_the_clock_ledgers_are_read_again_once_the_reader_adds_to_them(tmp_path):
    """They are read once per version, not per batch: a step the reader records between two
    batches counts for the second."""
    first, second = write_batches(tmp_path, 2, 10)
    store = DataDir(tmp_path)
    start = dt.datetime(2024, 5, 1, tzinfo=dt.UTC).timestamp()
    runs(store).append(RunRecord(at=start, pid=7, first_seq=0, clock_synced=False))

    def clock(path):
        validated = steps.validate(str(tmp_path), relpath_of(tmp_path, path))
        return steps.process(destination(tmp_path), validated).metadata["clock"]

    assert clock(first) == "unsynced"
    clock_steps(store).append(ClockStepRecord(at=start + 90, step_seconds=30, synced=True, pid=7))
    assert clock(second) == "synced"


# -- seal records: the reader's word for the rows, confirmed by the bytes' SHA-256 ------------

T0 = dt.datetime(2024, 5, 1, 1, tzinfo=dt.UTC).timestamp()


def events(caplog, name):
    return [r.fields for r in caplog.records if r.getMessage() == name]


def sealed_by_the_reader(data_dir, rows=10):
    """One batch sealed by the reader's own store (with its seal record), quoted fields too."""
    store = BatchStore(DataDir(data_dir), BatchPolicy(rows, 1 << 20, 3600))
    store.recover()
    store.use_columns(["f0", "note"], 0.0)
    records = [b'%d,"a, b ""%d"""' % (i, i) for i in range(rows)]
    (sealed,) = store.append(records[:3], T0 + 5, 0.0) + store.append(records[3:], T0, 0.0)
    return sealed.path


def test_a_batch_with_its_seal_record_is_taken_at_the_records_word_and_matches_a_full_check(
    tmp_path,
):
    path = sealed_by_the_reader(tmp_path)
    relpath = relpath_of(tmp_path, path)
    assert read_seal(path) is not None
    trusted = steps.validate(str(tmp_path), relpath)
    checked = steps.validate(str(tmp_path), relpath, trust_seal=False)
    assert trusted.sealed_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert checked.sealed_sha256 is None
    assert trusted.manifest == checked.manifest and trusted.manifest.earliest == T0
    processed = steps.process(destination(tmp_path), trusted)
    assert processed.validated == trusted and processed.csv_sha256 == trusted.sealed_sha256


def test_a_batch_changed_after_its_seal_is_validated_row_by_row_and_said_loudly(tmp_path, caplog):
    path = sealed_by_the_reader(tmp_path)
    relpath = relpath_of(tmp_path, path)
    trusted = steps.validate(str(tmp_path), relpath)
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"a, b ""9"""', b'"a, b ""8"""'))  # a flipped bit, same size
    with caplog.at_level("WARNING", logger="gateway.uploader"):
        processed = steps.process(destination(tmp_path), trusted)
    (doubt,) = events(caplog, "batch_differs_from_seal")
    assert "SHA-256" in doubt["found"] and "fsck" in doubt["hint"]
    assert processed.validated.status is BatchStatus.VALID  # its rows still parse: uploaded
    assert processed.validated.sealed_sha256 is None
    assert processed.csv_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with open(processed.upload_path, "rb") as file:
        assert gzip.decompress(file.read()) == path.read_bytes()  # the bytes there now

    steps.forget_processed(str(tmp_path), relpath)
    path.write_bytes(data[:-5])  # cut short: the record's size disagrees before any hashing
    caplog.clear()
    with caplog.at_level("WARNING", logger="gateway.uploader"):
        cut = steps.validate(str(tmp_path), relpath)
    (doubt,) = events(caplog, "batch_differs_from_seal")
    assert "5 bytes after the last good row" in doubt["found"]
    assert cut.status is BatchStatus.INVALID and "incomplete" in cut.problem


def test_a_torn_or_foreign_seal_record_only_means_a_row_by_row_check(tmp_path):
    path = sealed_by_the_reader(tmp_path)
    relpath = relpath_of(tmp_path, path)
    expected = steps.validate(str(tmp_path), relpath, trust_seal=False)
    record = seal_path(path)
    whole = record.read_bytes()
    for torn in (whole[: len(whole) // 2], b"", b'{"version": 99}', b"[1]"):
        record.write_bytes(torn)
        assert steps.validate(str(tmp_path), relpath) == expected
    # another batch's record (other seq): its facts disagree with the name
    record.write_bytes(whole.replace(b'"first_seq": 0', b'"first_seq": 1'))
    assert steps.validate(str(tmp_path), relpath) == expected


def test_the_reader_seals_a_batch_even_when_its_record_cannot_be_written(tmp_path, caplog):
    store = BatchStore(DataDir(tmp_path), BatchPolicy(2, 1 << 20, 3600))
    store.recover()
    store.use_columns(["f0"], 0.0)
    day = tmp_path / "batches" / "2024" / "05" / "01"
    day.mkdir(parents=True)
    (day / "000000000000-000000000001.csv.seal").mkdir()  # where the record would go
    with caplog.at_level("WARNING", logger="gateway.store"):
        (sealed,) = store.append([b"1", b"2"], T0, 0.0)
    (failure,) = events(caplog, "seal_record_not_written")
    assert sealed.path.exists() and "row by row" in failure["hint"]
    validated = steps.validate(str(tmp_path), relpath_of(tmp_path, sealed.path))
    assert validated.status is BatchStatus.VALID and validated.sealed_sha256 is None
