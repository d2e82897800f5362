"""The arithmetic of what a cut lost (tests/powercut/accounting.py): pure, no file system."""

from tests.powercut.accounting import (
    Bound,
    Held,
    Rows,
    SeqBook,
    complete_prefix,
    is_row_prefix,
    layer_of,
    lost_rows,
    pending_by_layer,
    rejected_line_counters,
    split_rows,
    unexplained_wire_gaps,
)

BATCH = b"seq,received_at,f0,f1\n5,100.5,41,x\n6,101.0,42,y\n7,101.25,44,z\n"


def test_rows_split_into_header_complete_rows_and_a_torn_tail():
    header, rows, tail = split_rows(BATCH + b"8,102.0,4")
    assert header == b"seq,received_at,f0,f1\n"
    assert rows == [b"5,100.5,41,x\n", b"6,101.0,42,y\n", b"7,101.25,44,z\n"]
    assert tail == b"8,102.0,4"
    assert complete_prefix(BATCH + b"8,102.0,4") == BATCH


def test_a_kept_file_is_a_row_prefix_only_when_it_ends_at_a_row_of_what_was_written():
    assert is_row_prefix(BATCH[:35], BATCH)
    assert is_row_prefix(b"", BATCH)
    assert not is_row_prefix(BATCH[:30], BATCH)  # torn inside a row
    assert not is_row_prefix(BATCH[:35].replace(b"41", b"40"), BATCH)  # other bytes


def test_lost_rows_are_the_complete_rows_written_beyond_what_survived():
    survived = BATCH[: BATCH.index(b"6,")] + b"6,101.0,4"  # torn: row 6 is not whole
    lost = lost_rows(BATCH, survived)
    assert lost == [b"6,101.0,42,y\n", b"7,101.25,44,z\n"]
    facts = Rows.of(lost, counter_index=0)
    assert (facts.count, facts.first_seq, facts.last_seq) == (2, 6, 7)
    assert (facts.earliest, facts.latest, facts.counters) == (101.0, 101.25, (42, 44))


def test_paths_belong_to_layers():
    assert layer_of("batches/2026/01/02/000000000005.part") == "open batch"
    assert layer_of("batches/2026/01/02/000000000005-000000000007.csv") == "sealed batch"
    assert layer_of("batches/2026/01/02/000000000005-000000000007.csv.touched.part") == "marks"
    assert layer_of("quarantine/2026-01-02.jsonl") == "quarantine"
    assert layer_of("quarantine/recovered/000000000005.part.tail") == "recovered tails"
    assert layer_of("state/uploader/work/2026/01/02/x.csv.gz") == "uploader work"
    assert layer_of("state/reader.status.json.part") == "status"
    assert layer_of("state/reader.runs.jsonl") == "runs ledger"
    report = {
        "files": [{"path": "data/state/reader.runs.jsonl", "pending_bytes": 90}],
        "dir_ops": [{"kind": "rename", "path": "data/x.part", "target": "data/state/seq.json"}],
    }
    assert pending_by_layer(report, "data") == {
        "runs ledger": {"files": 1, "bytes": 90, "dir_ops": 0},
        "seq floor": {"files": 0, "bytes": 0, "dir_ops": 1},
    }


def test_the_seq_book_finds_holes_reuse_and_rewritten_bytes():
    book = SeqBook()
    assert book.see(Held(0, 9, "a", "0-9.csv")) is None
    assert book.see(Held(0, 9, "a", "key 0-9")) is None  # the same batch in S3
    assert book.see(Held(10, 19, "b", "10-19.csv")) is None
    assert book.problems() == []
    assert "other bytes" in book.see(Held(10, 19, "c", "key 10-19"))
    book.see(Held(15, 24, "d", "15-24.csv"))
    book.see(Held(30, 31, "e", "30-31.csv"))
    problems = book.problems()
    assert "seq 15-24 (15-24.csv) overlaps 10-19 (10-19.csv): seq reused" in problems
    assert "seq 25-29 held nowhere: a hole" in problems
    assert book.next_seq == 32


def test_the_bound_is_the_fsync_period_plus_one_loop():
    bound = Bound(1.0, 0.5)
    assert bound.seconds == 1.5
    assert bound.explain().startswith("GATEWAY_FSYNC_SECONDS 1 s + 0.5 s slack")


def test_wire_gaps_of_rejected_lines_whose_quarantine_record_was_lost_are_explained():
    lines = [
        b'{"at": 1.0, "reason": "bad_field", "line": "18372,1.5,x"}',
        b'{"at": 1.0, "reason": "bad_utf8", "line_b64": "MTgzNzUsMS41LP8="}',  # 18375,1.5,\xff
        b'{"at": 1.0, "reason": "garbage", "line": "%%%"}',
    ]
    lost = rejected_line_counters(lines, "csv-seq")
    assert lost == {18372, 18375}
    report = {
        "gaps": [
            {
                "level": "device",
                "first": 18372,
                "last": 18372,
                "cause": "lost on the wire",
                "count": 1,
            },
            {
                "level": "device",
                "first": 18380,
                "last": 18381,
                "cause": "lost on the wire",
                "count": 2,
            },
            {"level": "device", "first": 9, "last": 9, "cause": "the reader restarted", "count": 1},
        ]
    }
    unexplained, covered = unexplained_wire_gaps(report, lost)
    assert covered == 1
    assert [gap["first"] for gap in unexplained] == [18380]
