"""Reading the bucket back: every object in seq order, every device-counter jump explained."""

import gzip

from tests.soak.follow import Jump, S3Follower, explain_jumps
from tests.support.s3 import (  # noqa: F401 (fixture: moto)
    BUCKET,
    moto_fixture,
)

UNPLUG = {"fault": "unplug", "n": 500, "lines_lost": 100, "first_lost": 500, "last_lost": 599}


def test_every_jump_is_attributed_to_the_fault_that_explains_it():
    jumps = [
        Jump(10, 11, 11),  # a rejected line
        Jump(20, 30, 31),  # lost at a reader restart (seq 20 began a run)
        Jump(400, 500, 599),  # the unplug's range
        Jump(700, 800, 802),  # nothing explains it
    ]
    explained, unexplained = explain_jumps(jumps, rejected={11}, restarts={0, 20}, faults=[UNPLUG])
    assert (explained.rejected_lines, explained.restart_gaps, explained.restart_lines) == (1, 1, 2)
    assert explained.unplug_lines == 100
    assert unexplained == [
        "device lines 800-802 (3) missing before seq 700: no injected fault explains them"
    ]


def test_lines_the_reader_never_read_before_an_unplug_count_as_the_unplug():
    unread = {**UNPLUG, "unread_bytes": 200}  # about ten 20-byte lines before sample 500
    assert explain_jumps([Jump(400, 492, 599)], set(), set(), [unread])[1] == []
    assert explain_jumps([Jump(400, 492, 599)], set(), set(), [UNPLUG])[1] != []


def put(s3, key: str, rows: list[str]) -> None:
    body = "seq,received_at,f0,f1\n" + "".join(row + "\n" for row in rows)
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(body.encode()))


def test_objects_are_read_in_seq_order_as_they_appear_and_holes_wait(moto):
    follower = S3Follower(moto.client, BUCKET, "raw/gw/")
    day = "raw/gw/2026/11/28"
    put(moto.client, f"{day}/000000000003-000000000004.csv.gz", ["3,1.0,13,0", "4,1.0,14,0"])
    follower.poll()
    assert (follower.next_seq, follower.objects) == (0, 0)  # seq 0-2 not there yet
    put(
        moto.client,
        f"{day}/000000000000-000000000002.csv.gz",
        ["0,1.0,10,0", "1,1.0,11,0", "2,1.0,12,0"],
    )
    follower.poll()
    assert (follower.next_seq, follower.rows, follower.jumps, follower.problems) == (5, 5, [], [])
    put(moto.client, f"{day}/000000000005-000000000006.csv.gz", ["5,1.0,20,0", "7,1.0,21,0"])
    follower.poll()
    assert follower.jumps == [Jump(5, 15, 19)]
    key = f"{day}/000000000005-000000000006.csv.gz"
    assert follower.problems == [
        f"{key}: seq 7 where 6 was due",
        f"{key}: rows end at seq 7, its name says 6",
    ]
