import errno

from gateway.core.not_stored import MAX_SPANS, Cause, Episode, cause_of, record_counters


def test_a_failed_write_names_its_cause_by_errno():
    assert cause_of(OSError(errno.ENOSPC, "full")) is Cause.DISK_FULL
    assert cause_of(OSError(errno.EDQUOT, "quota")) is Cause.DISK_FULL
    assert cause_of(OSError(errno.EROFS, "ro")) is Cause.READ_ONLY
    assert cause_of(OSError(errno.EIO, "io")) is Cause.DISK_ERROR


def test_counters_make_spans_that_break_at_a_jump_or_a_new_seq():
    episode = Episode(Cause.DISK_FULL, 1.0, 1.0)
    episode.add_rows([5, 6, 7], 3, 100, 2.0)
    episode.add_rows([8, 10], 2, 100, 3.0)
    episode.add_rows([11], 1, 101, 4.0)  # a row was stored between: the next seq moved on
    assert [s.as_list() for s in episode.spans] == [[5, 8, 100], [10, 10, 100], [11, 11, 101]]
    assert (episode.rows, episode.end) == (6, 4.0)


def test_an_episode_keeps_at_most_max_spans_and_widens_the_last():
    episode = Episode(Cause.DISK_LIMIT, 0.0, 0.0)
    episode.add_rows(range(0, 4 * MAX_SPANS, 2), 2 * MAX_SPANS, 0, 1.0)
    assert len(episode.spans) == MAX_SPANS and episode.spans_merged == MAX_SPANS
    assert episode.spans[-1].last == 4 * MAX_SPANS - 2


def test_a_records_counter_is_read_from_its_field_quoted_or_not():
    assert record_counters([b"17,0.5,1", b"18,0.6,2"], 0) == [17, 18]
    assert record_counters([b'"a,b",41,x'], 1) == [41]
