"""Parse ``--faults SPEC`` into fault rules (pure).

Grammar (spaces around items are ignored)::

    SPEC  = ITEM *("," ITEM)
    ITEM  = KIND "=" PROB [":" PARAM]     ; fires on each line with probability PROB
          | KIND "@" N [":" PARAM]        ; fires at sample counter N
"""

import math
from dataclasses import dataclass

# Longest line a receiver must accept; an ``overlong`` line must be longer than this.
MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True)
class ParamRule:
    name: str  # as it appears in error messages, e.g. "byte count"
    is_integer: bool
    default: float
    low: float  # inclusive
    high: float  # inclusive
    range_text: str


def _count(name: str, default: int, low: int, high: int, note: str = "") -> ParamRule:
    return ParamRule(name, True, default, low, high, f"an integer from {low} to {high}{note}")


def _seconds(default: float) -> ParamRule:
    return ParamRule("seconds", False, default, 0.0, 3600.0, "a number > 0 and <= 3600")


# kind -> its PARAM (None: the kind takes no parameter). Order = order in messages.
FAULT_PARAMS: dict[str, ParamRule | None] = {
    "garbage": _count("byte count", 16, 1, 1_000_000),
    "truncated": None,
    "overlong": _count(
        "line length", 70_000, MAX_LINE_BYTES + 1, 16 * 1024 * 1024, " (more than 64 KiB)"
    ),
    "utf8": None,
    "badsum": None,
    "burst": _count("line count", 10, 1, 1_000_000),
    "pause": _seconds(1.0),
    "unplug": _seconds(1.0),
}
FAULT_KINDS = tuple(FAULT_PARAMS)
# Kinds that replace the line of their sample (and so consume its counter).
REPLACING_KINDS = ("truncated", "overlong", "utf8", "badsum")
# Kinds that only make sense for lines with an NMEA checksum.
CHECKSUM_KINDS = ("badsum",)


class FaultSpecError(ValueError):
    """A ``--faults`` value that does not follow the grammar; the message names the bad part."""


@dataclass(frozen=True)
class FaultRule:
    kind: str
    probability: float | None  # per line, or None for a scheduled rule
    at: int | None  # sample counter of a scheduled rule, or None
    param: int | float | None  # the PARAM, or its default; None for kinds without one
    item: str  # the item as written, for messages


def parse_fault_spec(spec: str) -> list[FaultRule]:
    if not spec.strip():
        raise FaultSpecError("empty fault spec")
    return [_parse_item(item.strip(), spec) for item in spec.split(",")]


def _parse_item(item: str, spec: str) -> FaultRule:
    if not item:
        raise FaultSpecError(f"empty fault item in {spec!r}")
    eq, at = item.find("="), item.find("@")
    if eq < 0 and at < 0:
        raise FaultSpecError(f"fault item {item!r} needs KIND=PROB or KIND@N")
    split = min(i for i in (eq, at) if i >= 0)
    kind, how, rest = item[:split], item[split], item[split + 1 :]
    if kind not in FAULT_PARAMS:
        raise FaultSpecError(
            f"unknown fault kind {kind!r} in {item!r} (kinds: {', '.join(FAULT_KINDS)})"
        )
    value, colon, param_text = rest.partition(":")
    probability = counter = None
    if how == "=":
        probability = _parse_probability(value, item)
    else:
        counter = _parse_counter(value, item)
    param = _parse_param(kind, param_text if colon else None, item)
    return FaultRule(kind, probability, counter, param, item)


def _parse_probability(text: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise FaultSpecError(
            f"fault probability must be a number from 0 to 1, got {text!r} in {item!r}"
        )
    return value


def _parse_counter(text: str, item: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise FaultSpecError(
            f"fault counter must be a non-negative integer, got {text!r} in {item!r}"
        )
    return int(text)


def _parse_param(kind: str, text: str | None, item: str) -> int | float | None:
    rule = FAULT_PARAMS[kind]
    if rule is None:
        if text is not None:
            raise FaultSpecError(f"{kind} takes no parameter, got {text!r} in {item!r}")
        return None
    if text is None:
        return int(rule.default) if rule.is_integer else rule.default
    value: int | float
    try:
        if rule.is_integer:
            if not (text.isascii() and text.isdigit()):
                raise ValueError(text)
            value = int(text)
        else:
            value = float(text)
    except ValueError:
        value = math.nan
    in_range = rule.low <= value <= rule.high and (rule.is_integer or value > rule.low)
    if not in_range:
        raise FaultSpecError(
            f"{kind} {rule.name} must be {rule.range_text}, got {text!r} in {item!r}"
        )
    return value
