"""The in-memory compressed copies stay within their budget and hand each copy over once."""

from gateway.uploader.copies import CompressedCopies


def test_a_copy_is_taken_once_and_its_bytes_leave_the_budget():
    copies = CompressedCopies(budget_bytes=100, most_bytes=60)
    assert copies.keep("a", b"x" * 60) and copies.keep("b", b"y" * 40)
    assert copies.held_bytes == 100 and copies.holds("a")
    assert copies.take("a") == b"x" * 60 and copies.take("a") is None
    assert not copies.holds("a") and copies.held_bytes == 40


def test_a_copy_too_big_or_over_the_budget_is_refused_and_nothing_is_held_for_it():
    copies = CompressedCopies(budget_bytes=100, most_bytes=60)
    assert not copies.keep("big", b"x" * 61)
    assert copies.keep("a", b"x" * 60)
    assert not copies.keep("b", b"y" * 41)  # 101 bytes in all
    assert not copies.holds("big") and not copies.holds("b") and copies.held_bytes == 60
    assert copies.keep("b", b"y" * 40)


def test_keeping_a_path_again_replaces_its_copy_and_a_refusal_drops_the_old_one():
    copies = CompressedCopies(budget_bytes=100, most_bytes=100)
    assert copies.keep("a", b"x" * 70) and copies.keep("a", b"z" * 90)  # not 160 bytes
    assert copies.take("a") == b"z" * 90 and copies.held_bytes == 0
    assert copies.keep("a", b"x" * 70) and not copies.keep("a", b"x" * 101)
    assert not copies.holds("a") and copies.held_bytes == 0  # the stale copy is not sent
    copies.keep("b", b"1")
    copies.clear()
    assert len(copies) == 0 and copies.held_bytes == 0
