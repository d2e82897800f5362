"""Command-line options of ``firmware-sim`` and their checks (pure: no file or clock access).

A bad value ends the program the argparse way: usage, ``firmware-sim: error: argument
--NAME: <what is wrong, with the value>`` on stderr, exit status 2.
"""

import argparse
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from firmware_sim.fault_spec import CHECKSUM_KINDS, FaultRule, FaultSpecError, parse_fault_spec
from firmware_sim.line_formats import (
    DEFAULT_FORMAT,
    DEFAULT_SENTENCE,
    FORMATS,
    SENTENCE_PATTERN,
    TERMINATORS,
)
from firmware_sim.nmea0183 import DEFAULT_PROPRIETARY, DEFAULT_TALKER, PROPRIETARY, TALKERS
from firmware_sim.recording import HEADER_MODES
from firmware_sim.tabular import (
    DEFAULT_DELIMITER,
    DEFAULT_KV_ASSIGN,
    DEFAULT_KV_SEPARATOR,
    DELIMITERS,
    KV_ASSIGNS,
    KV_SEPARATORS,
    NAME_RULE,
    TIME_NAME,
    default_names,
    is_valid_name,
)
from firmware_sim.waveforms import DEFAULT_WAVEFORM, WAVEFORMS, WaveformSettings

MAX_RATE = 1_000_000
MAX_CHANNELS = 64
MAX_DECIMALS = 9
DEFAULT_RATE = 250.0
DEFAULT_DRAIN_TIMEOUT = 10.0
# The formats of real devices, besides ours (docs/formats.md, "Real-device dialects").
DIALECTS = ("nmea0183", "keyvalue", "delimited", "raw")
ALL_FORMATS = FORMATS + DIALECTS
# NMEA 0183 mandates CR LF; Arduino's Serial.println ends its lines with CR LF.
DEFAULT_TERMINATOR = {"nmea0183": "crlf", "keyvalue": "crlf"}
# Formats whose lines carry an NMEA checksum (for the badsum fault).
CHECKSUM_FORMATS = ("nmea", "nmea0183")
# Formats whose device prints something at power-on (--boot-header); on by default for these.
BOOT_FORMATS = ("delimited", "keyvalue", "nmea0183", "raw")
BOOT_HEADER_BY_DEFAULT = ("delimited",)
# Options of one format or a few: the formats that use each.
FORMAT_OPTIONS = {
    "sentence": ("nmea",),
    "talker": ("nmea0183",),
    "proprietary": ("nmea0183",),
    "ais": ("nmea0183",),
    "kv_separator": ("keyvalue",),
    "kv_assign": ("keyvalue",),
    "delimiter": ("delimited",),
    "names": ("keyvalue", "delimited"),
    "time_column": ("keyvalue", "delimited"),
    "boot_header": BOOT_FORMATS,
    "reboot_on_replug": BOOT_FORMATS,
}
WAVEFORM_OPTIONS = (
    "waveform",
    "channels",
    "amplitude",
    "offset",
    "noise",
    "frequency",
    "heart_rate",
    "decimals",
)
# Options that shape generated lines; a replay sends the file's own lines instead.
GENERATOR_OPTIONS = (*WAVEFORM_OPTIONS, "format", *FORMAT_OPTIONS)


@dataclass(frozen=True)
class SimulatorOptions:
    link: str
    rate: float = DEFAULT_RATE
    samples: int | None = None  # None: until SIGINT/SIGTERM
    waveform: WaveformSettings = WaveformSettings()
    decimals: int = 4
    line_format: str = DEFAULT_FORMAT
    terminator: bytes = b"\n"
    terminator_given: bool = False  # --terminator was given (a replay then rewrites terminators)
    sentence: str = DEFAULT_SENTENCE
    # nmea0183
    talker: str = DEFAULT_TALKER
    proprietary: str = DEFAULT_PROPRIETARY
    ais: bool = False
    # keyvalue and delimited
    names: tuple[str, ...] = ()  # one per channel (ch0, ch1, ... unless --names)
    time_column: bool = False
    kv_separator: bytes = KV_SEPARATORS[DEFAULT_KV_SEPARATOR]
    kv_assign: bytes = DEFAULT_KV_ASSIGN.encode()
    delimiter: bytes = DELIMITERS[DEFAULT_DELIMITER]
    # delimited, keyvalue, nmea0183 and raw
    boot_header: bool = False
    reboot_on_replug: bool = False
    seed: int | None = None  # None: the shell picks one and prints it
    replay: str | None = None
    replay_header: str = "auto"
    faults: tuple[FaultRule, ...] = ()
    fault_log: str | None = None
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    wait_for_reader: bool = True


def _number(expected: str, ok: Callable[[float], bool], integer: bool = False):
    """An argparse ``type``: a number for which ``ok`` holds, else "must be <expected>"."""

    def convert(raw: str) -> float:
        try:
            value: float = int(raw) if integer else float(raw)
        except ValueError:
            value = math.nan
        if math.isnan(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {raw!r}")
        return value

    return convert


def _integer(expected: str, ok: Callable[[float], bool]):
    return _number(expected, ok, integer=True)


def _choice(choices: Sequence[str]):
    """An argparse ``type`` for one of ``choices`` (its message does not vary by Python version)."""

    def convert(raw: str) -> str:
        if raw not in choices:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    return convert


def _choices_metavar(choices: Sequence[str]) -> str:
    return "{" + ",".join(choices) + "}"


def _sentence(raw: str) -> str:
    if not re.fullmatch(SENTENCE_PATTERN, raw):
        raise argparse.ArgumentTypeError(f"must match {SENTENCE_PATTERN}, got {raw!r}")
    return raw


def _names(raw: str) -> tuple[str, ...]:
    names = tuple(raw.split(","))
    for name in names:
        if not is_valid_name(name):
            raise argparse.ArgumentTypeError(f"bad name {name!r} (names are {NAME_RULE})")
    if len(names) > MAX_CHANNELS:
        raise argparse.ArgumentTypeError(f"{len(names)} names, at most {MAX_CHANNELS} channels")
    return names


def _formats_text(formats: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return formats[0] if len(formats) == 1 else f"{', '.join(formats[:-1])} or {formats[-1]}"


def _faults(raw: str) -> list[FaultRule]:
    try:
        return parse_fault_spec(raw)
    except FaultSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="firmware-sim",
        description="A simulated sensor monitor on a socat virtual serial port.",
        epilog="Exit status: 0 every line sent and read; 1 runtime failure; 2 bad options; "
        "3 lines were never read (--drain-timeout); 128+N stopped by signal N.",
    )
    add = parser.add_argument
    add("--link", required=True, metavar="PATH", help="symlink to the port a gateway opens")
    add(
        "--rate",
        type=_number(f"a number > 0 and <= {MAX_RATE}", lambda v: 0 < v <= MAX_RATE),
        metavar="HZ",
        help=f"lines per second (default {DEFAULT_RATE:g})",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--samples",
        type=_integer("an integer >= 0", lambda v: v >= 0),
        metavar="N",
        help="send N samples, then exit (default: until SIGINT/SIGTERM)",
    )
    length.add_argument(
        "--duration",
        type=_number("a number > 0", lambda v: 0 < v < math.inf),
        metavar="S",
        help="send round(S * rate) samples, then exit",
    )
    add(
        "--waveform",
        type=_choice(WAVEFORMS),
        metavar=_choices_metavar(WAVEFORMS),
        help=f"default {DEFAULT_WAVEFORM}",
    )
    add(
        "--channels",
        type=_integer(f"an integer from 1 to {MAX_CHANNELS}", lambda v: 1 <= v <= MAX_CHANNELS),
        metavar="N",
        help="channels per line (default 2)",
    )
    finite = _number("a finite number", math.isfinite)
    add("--amplitude", type=finite, metavar="X", help="peak value (default 1)")
    add("--offset", type=finite, metavar="X", help="added to every value (default 0)")
    add(
        "--noise",
        type=_number("a finite number >= 0", lambda v: 0 <= v < math.inf),
        metavar="SIGMA",
        help="standard deviation of Gaussian noise added to every value (default 0)",
    )
    add(
        "--frequency",
        type=_number(f"a number > 0 and <= {MAX_RATE}", lambda v: 0 < v <= MAX_RATE),
        metavar="HZ",
        help="frequency of sine, square and sawtooth (default 1)",
    )
    add(
        "--heart-rate",
        type=_number("a number from 20 to 300", lambda v: 20 <= v <= 300),
        metavar="BPM",
        help="ecg only (default 60)",
    )
    add(
        "--decimals",
        type=_integer(f"an integer from 0 to {MAX_DECIMALS}", lambda v: 0 <= v <= MAX_DECIMALS),
        metavar="D",
        help="decimals of channel values (default 4)",
    )
    add(
        "--format",
        type=_choice(ALL_FORMATS),
        metavar=_choices_metavar(ALL_FORMATS),
        help=f"line format (default {DEFAULT_FORMAT})",
    )
    add(
        "--terminator",
        type=_choice(tuple(TERMINATORS)),
        metavar=_choices_metavar(tuple(TERMINATORS)),
        help="default crlf for nmea0183 and keyvalue, lf otherwise; "
        "with --replay: every line gets it (default: each keeps its own)",
    )
    add(
        "--sentence",
        type=_sentence,
        metavar="NAME",
        help=f"nmea sentence name (default {DEFAULT_SENTENCE})",
    )
    add(
        "--talker",
        type=_choice(TALKERS),
        metavar=_choices_metavar(TALKERS),
        help=f"nmea0183 talker of the standard sentences (default {DEFAULT_TALKER})",
    )
    add(
        "--proprietary",
        type=_choice(PROPRIETARY),
        metavar=_choices_metavar(PROPRIETARY),
        help=f"nmea0183 proprietary sentence per epoch (default {DEFAULT_PROPRIETARY}; "
        "pubx is longer than 82 bytes, as u-blox sends it)",
    )
    add(
        "--ais",
        action="store_const",
        const=True,
        help="nmea0183: AIS !AIVDM sentences after some epochs",
    )
    add(
        "--kv-separator",
        type=_choice(tuple(KV_SEPARATORS)),
        metavar=_choices_metavar(tuple(KV_SEPARATORS)),
        help=f"keyvalue: between name/value pairs (default {DEFAULT_KV_SEPARATOR})",
    )
    add(
        "--kv-assign",
        type=_choice(KV_ASSIGNS),
        metavar=_choices_metavar(KV_ASSIGNS),
        help=f"keyvalue: between a name and its value (default {DEFAULT_KV_ASSIGN})",
    )
    add(
        "--delimiter",
        type=_choice(tuple(DELIMITERS)),
        metavar=_choices_metavar(tuple(DELIMITERS)),
        help=f"delimited: between columns (default {DEFAULT_DELIMITER}; "
        "space: right-aligned columns)",
    )
    add(
        "--names",
        type=_names,
        metavar="A,B,...",
        help="keyvalue and delimited: channel names (default ch0, ch1, ...)",
    )
    add(
        "--time-column",
        action="store_const",
        const=True,
        help=f"keyvalue and delimited: send {TIME_NAME} first",
    )
    add(
        "--boot-header",
        action=argparse.BooleanOptionalAction,
        help="print a header at power-on: names (delimited, the default; keyvalue: labels "
        "only), a banner (nmea0183 TXT sentences, raw text)",
    )
    add(
        "--reboot-on-replug",
        action="store_const",
        const=True,
        help="print the boot header again after each unplug",
    )
    add(
        "--seed",
        type=_integer("an integer >= 0", lambda v: v >= 0),
        metavar="N",
        help="fixes every byte of the run (default: random, printed on stderr)",
    )
    add("--replay", metavar="FILE", help="send the lines of FILE instead of a waveform")
    add(
        "--replay-header",
        type=_choice(HEADER_MODES),
        metavar=_choices_metavar(HEADER_MODES),
        default="auto",
        help="auto: skip the first line iff it does not start like data (default)",
    )
    add(
        "--faults",
        type=_faults,
        action="append",
        default=[],
        metavar="SPEC",
        help="KIND=PROB[:PARAM] or KIND@N[:PARAM], comma-separated; repeatable",
    )
    add("--fault-log", metavar="FILE", help="one JSON object per injected fault")
    add(
        "--drain-timeout",
        type=_number("a number >= 0", lambda v: 0 <= v < math.inf),
        default=DEFAULT_DRAIN_TIMEOUT,
        metavar="S",
        help="how long to wait for a reader to read what was sent (default 10)",
    )
    add(
        "--no-wait-reader",
        dest="wait_for_reader",
        action="store_false",
        help="send from the start instead of waiting until a reader opens the port",
    )
    return parser


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_options_fit(parser: argparse.ArgumentParser, ns, line_format: str) -> None:
    """Every option given is used by the rest: the format, the waveform, no --replay."""
    given = {name for name in GENERATOR_OPTIONS if getattr(ns, name) is not None}
    if ns.replay is not None:
        for name in GENERATOR_OPTIONS:
            if name in given:
                parser.error(f"argument {_flag(name)}: not allowed with --replay")
    for name, formats in FORMAT_OPTIONS.items():
        if name in given and line_format not in formats:
            parser.error(
                f"argument {_flag(name)}: only used with --format {_formats_text(formats)}"
            )
    if line_format == "nmea0183":
        for name in WAVEFORM_OPTIONS:
            if name in given:
                parser.error(
                    f"argument {_flag(name)}: not used by --format nmea0183 "
                    "(a GNSS receiver sends positions, not waveforms)"
                )
    waveform = ns.waveform or DEFAULT_WAVEFORM
    if ns.frequency is not None and waveform == "ecg":
        parser.error("argument --frequency: not used by --waveform ecg (set --heart-rate)")
    if ns.heart_rate is not None and waveform != "ecg":
        parser.error("argument --heart-rate: only used with --waveform ecg")


def _channel_names(
    parser: argparse.ArgumentParser, ns, line_format: str
) -> tuple[tuple[str, ...], int | None]:
    """The channel names of keyvalue and delimited (``()`` for other formats), and the number
    of channels (None: the default), which ``--names`` sets when ``--channels`` does not."""
    if line_format not in FORMAT_OPTIONS["names"]:
        return (), ns.channels
    names = ns.names or default_names(ns.channels or WaveformSettings().channels)
    if ns.channels is not None and len(names) != ns.channels:
        parser.error(f"argument --names: {len(names)} names for --channels {ns.channels}")
    labels = ((TIME_NAME,) if ns.time_column else ()) + names
    twice = next((name for name in labels if labels.count(name) > 1), None)
    if twice is not None:
        added = f" (--time-column adds {TIME_NAME})" if twice == TIME_NAME else ""
        parser.error(f"argument --names: {twice!r} is named twice{added}")
    return names, len(names)


def parse_options(
    argv: Sequence[str], parser: argparse.ArgumentParser | None = None
) -> SimulatorOptions:
    """The options in ``argv``; exits with status 2 (argparse) if one is bad."""
    parser = parser or build_parser()
    ns = parser.parse_args(argv)
    line_format = ns.format or DEFAULT_FORMAT
    _check_options_fit(parser, ns, line_format)
    faults = tuple(rule for spec in ns.faults for rule in spec)
    checksum_fault = next((r for r in faults if r.kind in CHECKSUM_KINDS), None)
    if checksum_fault and ns.replay is None and line_format not in CHECKSUM_FORMATS:
        parser.error(
            f"argument --faults: {checksum_fault.kind} needs lines with a checksum "
            f"(--format {_formats_text(CHECKSUM_FORMATS)}), got --format {line_format}"
        )
    boot_header = ns.boot_header
    if boot_header is None:
        boot_header = line_format in BOOT_HEADER_BY_DEFAULT
    if ns.reboot_on_replug and not boot_header:
        parser.error(
            "argument --reboot-on-replug: the device prints nothing at boot (--boot-header)"
        )
    waveform = ns.waveform or DEFAULT_WAVEFORM
    names, channels = _channel_names(parser, ns, line_format)
    rate = ns.rate if ns.rate is not None else DEFAULT_RATE
    samples = ns.samples
    if ns.duration is not None:
        samples = round(ns.duration * rate)
        if samples == 0:
            parser.error(
                f"argument --duration: {ns.duration:g} s at {rate:g} lines per second "
                "is not a single sample"
            )
    defaults = WaveformSettings()
    settings = WaveformSettings(
        waveform=waveform,
        channels=channels if channels is not None else defaults.channels,
        amplitude=ns.amplitude if ns.amplitude is not None else defaults.amplitude,
        offset=ns.offset if ns.offset is not None else defaults.offset,
        noise=ns.noise if ns.noise is not None else defaults.noise,
        frequency=ns.frequency if ns.frequency is not None else defaults.frequency,
        heart_rate=ns.heart_rate if ns.heart_rate is not None else defaults.heart_rate,
    )
    return SimulatorOptions(
        link=ns.link,
        rate=rate,
        samples=samples,
        waveform=settings,
        decimals=ns.decimals if ns.decimals is not None else 4,
        line_format=line_format,
        terminator=TERMINATORS[ns.terminator or DEFAULT_TERMINATOR.get(line_format, "lf")],
        terminator_given=ns.terminator is not None,
        sentence=ns.sentence or DEFAULT_SENTENCE,
        talker=ns.talker or DEFAULT_TALKER,
        proprietary=ns.proprietary or DEFAULT_PROPRIETARY,
        ais=bool(ns.ais),
        names=names,
        time_column=bool(ns.time_column),
        kv_separator=KV_SEPARATORS[ns.kv_separator or DEFAULT_KV_SEPARATOR],
        kv_assign=(ns.kv_assign or DEFAULT_KV_ASSIGN).encode(),
        delimiter=DELIMITERS[ns.delimiter or DEFAULT_DELIMITER],
        boot_header=boot_header,
        reboot_on_replug=bool(ns.reboot_on_replug),
        seed=ns.seed,
        replay=ns.replay,
        replay_header=ns.replay_header,
        faults=faults,
        fault_log=ns.fault_log,
        drain_timeout=ns.drain_timeout,
        wait_for_reader=ns.wait_for_reader,
    )
