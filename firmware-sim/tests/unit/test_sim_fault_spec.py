"""``--faults SPEC`` parsing: the grammar, the defaults, and the exact error texts."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.fault_spec import FAULT_KINDS, FaultRule, FaultSpecError, parse_fault_spec


def test_probability_and_schedule_items_with_and_without_param():
    rules = parse_fault_spec("garbage=0.01:32, pause@100:0.25,truncated=1,unplug@7")
    assert rules == [
        FaultRule("garbage", 0.01, None, 32, "garbage=0.01:32"),
        FaultRule("pause", None, 100, 0.25, "pause@100:0.25"),
        FaultRule("truncated", 1.0, None, None, "truncated=1"),
        FaultRule("unplug", None, 7, 1.0, "unplug@7"),
    ]


@pytest.mark.parametrize(
    "kind, default",
    [
        ("garbage", 16),
        ("truncated", None),
        ("overlong", 70000),
        ("utf8", None),
        ("burst", 10),
        ("pause", 1.0),
        ("unplug", 1.0),
    ],
)
def test_defaults_of_each_kind(kind, default):
    (rule,) = parse_fault_spec(f"{kind}@3")
    assert rule.param == default
    assert type(rule.param) is type(default)


def test_a_scheduled_kind_may_repeat():
    rules = parse_fault_spec("unplug@10:0.5,unplug@20:2")
    assert [(r.at, r.param) for r in rules] == [(10, 0.5), (20, 2.0)]


def test_overlong_accepts_one_byte_more_than_64_kib():
    assert parse_fault_spec("overlong@0:65537")[0].param == 65537


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty fault spec"),
        ("  ", "empty fault spec"),
        ("garbage=0.1,,pause@3", "empty fault item in 'garbage=0.1,,pause@3'"),
        ("garbage", "fault item 'garbage' needs KIND=PROB or KIND@N"),
        (
            "junk=0.1",
            "unknown fault kind 'junk' in 'junk=0.1' "
            "(kinds: garbage, truncated, overlong, utf8, badsum, burst, pause, unplug)",
        ),
        (
            "Garbage@1",
            "unknown fault kind 'Garbage' in 'Garbage@1' " + f"(kinds: {', '.join(FAULT_KINDS)})",
        ),
        (
            "garbage=1.5",
            "fault probability must be a number from 0 to 1, got '1.5' in 'garbage=1.5'",
        ),
        (
            "garbage=-0.1",
            "fault probability must be a number from 0 to 1, got '-0.1' in 'garbage=-0.1'",
        ),
        (
            "garbage=nan",
            "fault probability must be a number from 0 to 1, got 'nan' in 'garbage=nan'",
        ),
        ("garbage=", "fault probability must be a number from 0 to 1, got '' in 'garbage='"),
        ("pause@-3", "fault counter must be a non-negative integer, got '-3' in 'pause@-3'"),
        ("pause@1.5", "fault counter must be a non-negative integer, got '1.5' in 'pause@1.5'"),
        ("truncated@3:5", "truncated takes no parameter, got '5' in 'truncated@3:5'"),
        ("utf8=0.1:", "utf8 takes no parameter, got '' in 'utf8=0.1:'"),
        (
            "garbage@3:0",
            "garbage byte count must be an integer from 1 to 1000000, got '0' in 'garbage@3:0'",
        ),
        (
            "overlong=0.1:1000",
            "overlong line length must be an integer from 65537 to 16777216 (more than 64 KiB), "
            "got '1000' in 'overlong=0.1:1000'",
        ),
        (
            "overlong@1:65536",
            "overlong line length must be an integer from 65537 to 16777216 (more than 64 KiB), "
            "got '65536' in 'overlong@1:65536'",
        ),
        (
            "burst@1:2.5",
            "burst line count must be an integer from 1 to 1000000, got '2.5' in 'burst@1:2.5'",
        ),
        ("pause@5:0", "pause seconds must be a number > 0 and <= 3600, got '0' in 'pause@5:0'"),
        ("unplug@5:x", "unplug seconds must be a number > 0 and <= 3600, got 'x' in 'unplug@5:x'"),
        (
            "unplug@5:inf",
            "unplug seconds must be a number > 0 and <= 3600, got 'inf' in 'unplug@5:inf'",
        ),
    ],
)
def test_bad_specs_are_refused_with_a_message_that_names_the_bad_part(spec, message):
    with pytest.raises(FaultSpecError) as error:
        parse_fault_spec(spec)
    assert str(error.value) == message


items = st.one_of(
    st.builds(
        lambda kind, p: f"{kind}={p!r}",
        st.sampled_from(FAULT_KINDS),
        st.floats(min_value=0, max_value=1),
    ),
    st.builds(lambda kind, n: f"{kind}@{n}", st.sampled_from(FAULT_KINDS), st.integers(0, 10**9)),
)


@given(st.lists(items, min_size=1, max_size=6))
def test_any_list_of_valid_items_parses_to_one_rule_per_item_in_order(item_list):
    rules = parse_fault_spec(",".join(item_list))
    assert [rule.item for rule in rules] == item_list
    for rule, item in zip(rules, item_list, strict=True):
        assert rule.kind == item.split("=")[0].split("@")[0]
        assert (rule.probability is None) == ("@" in item)
