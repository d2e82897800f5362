from hypothesis import given
from hypothesis import strategies as st

from gateway.core.reconcile import Duplicate, Gap, Span, reconcile


def spans(*ranges, touched=False, where="b"):
    return [Span(a, b, f"{where}{a}", touched) for a, b in ranges]


def test_everything_local_and_uploaded_passes():
    local = spans((0, 9), (10, 19), touched=True)
    report = reconcile(local, spans((0, 9), (10, 19), where="k"))
    assert report.passed and report.gaps == [] and report.duplicates == []
    assert (report.seq_first, report.seq_last, report.rows_local, report.rows_in_s3) == (
        0,
        19,
        20,
        20,
    )


def test_cleaned_up_after_upload_is_fine_missing_everywhere_is_not():
    report = reconcile(spans((20, 29)), spans((0, 9), where="k"))
    assert report.gaps == [Gap("seq", 10, 19, "missing: no batch, object or loss record")]
    assert report.failures == ["seq 10-19 missing without a recorded reason"]
    assert report.pending_upload == spans((20, 29))


def test_dropped_by_cleanup_is_a_reported_loss_not_a_failure():
    report = reconcile(spans((10, 19)), [], dropped=spans((0, 9), where="cleanup "))
    assert report.gaps == [Gap("seq", 0, 9, "dropped by cleanup before upload (cleanup 0)")]
    assert report.passed


def test_marked_uploaded_but_missing_in_s3_fails():
    report = reconcile(spans((0, 9), touched=True), [])
    assert report.gaps == [Gap("seq", 0, 9, "marked uploaded but missing in S3 (b0)")]
    assert not report.passed


def test_overlapping_objects_are_duplicates():
    report = reconcile([], [Span(0, 9, "a.csv.gz"), Span(5, 14, "b.csv.gz")])
    assert report.duplicates == [Duplicate("object", 5, 9, ("a.csv.gz", "b.csv.gz"))]
    assert not report.passed


def test_device_gaps_are_split_by_cause():
    rows = [(0, 0), (1, 1), (2, 5), (3, 6), (4, 9), (5, 0)]
    report = reconcile(
        spans((0, 5)), None, device_rows=rows, rejected_counters={3}, restart_seqs={4}
    )
    assert report.gaps == [
        Gap("device", 2, 2, "lost on the wire"),
        Gap("device", 3, 3, "rejected by the reader (see quarantine)"),
        Gap("device", 4, 4, "lost on the wire"),
        Gap("device", 7, 8, "the reader restarted"),
    ]
    assert report.device_counter_resets == 1
    assert report.passed
    assert not reconcile(spans((0, 5)), None, device_rows=rows, strict=True).passed


def test_rows_not_side_by_side_are_not_compared():
    report = reconcile(spans((0, 1), (5, 6)), None, device_rows=[(0, 0), (1, 1), (5, 50), (6, 51)])
    assert [g for g in report.gaps if g.level == "device"] == []


@given(st.lists(st.integers(1, 20), min_size=1, max_size=20), st.data())
def test_any_missing_batch_is_found_and_nothing_else(sizes, data):
    bounds, start = [], 0
    for size in sizes:
        bounds.append((start, start + size - 1))
        start += size
    # Interior batches only: a missing first or last batch leaves no trace to find it by.
    missing = data.draw(
        st.sets(st.integers(1, len(bounds) - 2)) if len(bounds) > 2 else st.just(set())
    )
    local = [Span(a, b, f"b{a}") for i, (a, b) in enumerate(bounds) if i not in missing]
    report = reconcile(local, None)
    found = {(g.first, g.last) for g in report.gaps}
    expected_holes = set()
    index = 1
    while index < len(bounds):
        if index in missing:
            run_start = bounds[index][0]
            while index in missing:
                index += 1
            expected_holes.add((run_start, bounds[index - 1][1]))
        index += 1
    assert found == expected_holes
    assert report.passed == (not expected_holes)
