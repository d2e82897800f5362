from hypothesis import given
from hypothesis import strategies as st

from gateway.core.not_stored import Cause, Episode
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


# -- device gaps the reader's ledgers explain --------------------------------------------------

DISK_FULL = "not stored: the disk was full"
READ_ONLY = "not stored: the data dir was read-only"
DISK_LIMIT = "not stored: refused by the disk-limit policy (GATEWAY_ON_FULL)"
OVERFLOW = "dropped: the reader fell behind and its hand-off overflowed"
UNKEPT = "rejected by the reader and not kept in the quarantine"
REJECTED = "rejected by the reader (see quarantine)"


def episode(cause, *spans, rows=None):
    """An episode whose spans are (first, last, next_seq)."""
    found = Episode(Cause(cause), 100.0, 200.0)
    for first, last, next_seq in spans:
        found.add_span(first, last, next_seq, last - first + 1, 150.0)
    if rows is not None:
        found.rows = rows
    return found


def test_a_full_disk_is_named_for_the_rows_it_cost_never_the_wire():
    """The issue's case: 1,000 rows not stored while the disk was full, between seq 4 and 5."""
    rows = [(seq, seq) for seq in range(5)] + [(5, 2000), (6, 2001)]
    report = reconcile(
        spans((0, 6)), None, device_rows=rows, not_stored=[episode("disk_full", (5, 1999, 5))]
    )
    assert [g for g in report.gaps if g.level == "device"] == [Gap("device", 5, 1999, DISK_FULL)]
    assert report.not_stored == {"disk_full": {"rows": 1995, "bytes": 0, "episodes": 1}}
    assert report.passed
    assert reconcile(
        spans((0, 6)),
        None,
        device_rows=rows,
        not_stored=[episode("disk_full", (5, 1999, 5))],
        strict=True,
    ).failures == ["device 5-1999: not stored: the disk was full"]


def test_one_gap_split_by_every_cause_that_touched_it():
    """Between seq 1 and 2: a rejected line, rows refused by the policy, rows lost on the wire
    while the disk was read-only, rows not stored, an overflow's hole; the rest at a restart."""
    rows = [(0, 0), (1, 1), (2, 30)]
    report = reconcile(
        spans((0, 2)),
        None,
        device_rows=rows,
        rejected_counters={2},
        restart_seqs={2},
        not_stored=[
            episode("disk_limit", (3, 9, 2)),
            episode("read_only", (12, 19, 2)),
            episode("handoff_overflow", (20, 24, 2)),
            episode("rejected_not_kept", (25, 25, None)),
        ],
    )
    assert report.gaps == [
        Gap("device", 2, 2, REJECTED),
        Gap("device", 3, 9, DISK_LIMIT),
        Gap("device", 10, 11, "the reader restarted"),
        Gap("device", 12, 19, READ_ONLY),
        Gap("device", 20, 24, OVERFLOW),
        Gap("device", 25, 25, UNKEPT),
        Gap("device", 26, 29, "the reader restarted"),
    ]


def test_a_span_is_held_only_by_the_gap_before_the_seq_it_names():
    """Counters repeat after a device restart: a span that fell before seq 9 does not explain
    a gap before seq 2 with the same counters; it is reported on its own."""
    rows = [(0, 0), (1, 1), (2, 10)]
    report = reconcile(
        spans((0, 2)), None, device_rows=rows, not_stored=[episode("disk_full", (2, 9, 9))]
    )
    assert report.gaps == [
        Gap("device", 2, 9, "lost on the wire"),
        Gap("device", 2, 9, DISK_FULL),
    ]


def test_rows_not_stored_before_the_first_stored_row_are_reported_too():
    """A reader that started on a full disk: counters 0-2910 were read before any was stored."""
    rows = [(0, 2911), (1, 2912)]
    report = reconcile(
        spans((0, 1)), None, device_rows=rows, not_stored=[episode("disk_full", (0, 2910, 0))]
    )
    assert report.gaps == [Gap("device", 0, 2910, DISK_FULL)]
    nothing_stored = reconcile(
        [], None, device_rows=[], not_stored=[episode("read_only", (0, 9, 0))]
    )
    assert nothing_stored.gaps == [Gap("device", 0, 9, READ_ONLY)]


def test_without_a_device_counter_the_ledger_still_gives_the_totals():
    report = reconcile(
        spans((0, 9)),
        None,
        not_stored=[episode("disk_full", rows=40), episode("disk_full", rows=2)],
    )
    assert report.gaps == []
    assert report.not_stored == {"disk_full": {"rows": 42, "bytes": 0, "episodes": 2}}


def test_a_huge_jump_is_attributed_without_walking_every_counter():
    rows = [(0, 0), (1, 10**15)]
    report = reconcile(
        spans((0, 1)),
        None,
        device_rows=rows,
        rejected_counters={5},
        not_stored=[episode("disk_full", (10, 10**12, 1))],
    )
    assert report.gaps == [
        Gap("device", 1, 4, "lost on the wire"),
        Gap("device", 5, 5, REJECTED),
        Gap("device", 6, 9, "lost on the wire"),
        Gap("device", 10, 10**12, DISK_FULL),
        Gap("device", 10**12 + 1, 10**15 - 1, "lost on the wire"),
    ]


FATES = ["stored", "rejected", "disk_full", "read_only", "disk_limit", "wire"]


@given(st.lists(st.sampled_from(FATES), min_size=1, max_size=200))
def test_every_missing_counter_is_attributed_to_what_befell_it(fates):
    """Each device line is stored, rejected, not stored for a cause, or lost on the wire. The
    reader's books (quarantine, ledger episodes from the reader's own accumulator) and the
    stored rows are enough to name each line's fate: the wire is blamed for its own only."""
    device_rows, rejected, episodes = [], set(), []
    open_episode = None
    for counter, fate in enumerate(fates):
        if fate == "stored":
            device_rows.append((len(device_rows), counter))
        elif fate == "rejected":
            rejected.add(counter)
        elif fate != "wire":
            if open_episode is None or open_episode.cause != fate:
                open_episode = Episode(Cause(fate), 0.0, 0.0)
                episodes.append(open_episode)
            open_episode.add_rows([counter], 1, len(device_rows), 0.0)
    report = reconcile(
        [Span(0, len(device_rows) - 1, "b")] if device_rows else [],
        None,
        device_rows=device_rows,
        rejected_counters=rejected,
        not_stored=episodes,
    )
    told = {}
    for gap in report.gaps:
        for counter in range(gap.first, gap.last + 1):
            assert counter not in told, f"counter {counter} attributed twice"
            told[counter] = gap.cause
    stored = [c for _, c in device_rows]
    names = {
        "rejected": REJECTED,
        "disk_full": DISK_FULL,
        "read_only": READ_ONLY,
        "disk_limit": DISK_LIMIT,
        "wire": "lost on the wire",
    }
    for counter, fate in enumerate(fates):
        inside = bool(stored) and stored[0] < counter < stored[-1]
        if fate == "stored":
            assert counter not in told
        elif inside or fate not in ("rejected", "wire"):
            assert told[counter] == names[fate], (counter, fate)
        else:  # before the first or after the last stored row: nothing to see it by
            assert counter not in told
