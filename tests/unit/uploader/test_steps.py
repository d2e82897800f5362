"""Validate and Process on a data dir: typed results, and a processing record kept per batch."""

import datetime as dt
import gzip
import json

from gateway.store.layout import DataDir
from gateway.store.ledgers import ClockStepRecord, RunRecord, clock_steps, runs
from gateway.uploader import steps
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


def test_a_processing_record_an_earlier_version_left_is_made_again(tmp_path):
    (path,) = write_batches(tmp_path, 1, 10)
    relpath = relpath_of(tmp_path, path)
    record = steps.workspace(str(tmp_path)).record_path(relpath)
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"batch": relpath, "status": "valid", "upload_path": str(path)}))
    validated = steps.validate(str(tmp_path), relpath)
    processed = steps.process(destination(tmp_path, compression="none"), validated)
    assert processed.validated == validated
    assert Processed.from_json(json.loads(record.read_text())) == processed


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
