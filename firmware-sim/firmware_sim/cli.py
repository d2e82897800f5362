"""``firmware-sim``: wire the pure device to socat and run it (I/O shell).

Exit status: 0 every line was sent and read; 1 runtime failure (socat, I/O); 2 bad options;
3 some bytes were never read (``--drain-timeout``); 128 + N stopped by signal N.
"""

import os
import random
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import IO

from firmware_sim.device import Device
from firmware_sim.line_formats import LineEncoder
from firmware_sim.line_sources import (
    GeneratedLines,
    LineSource,
    RawTextLines,
    ReplayedLines,
    SampleEncoder,
    SentenceLines,
)
from firmware_sim.nmea0183 import GnssReceiver
from firmware_sim.options import SimulatorOptions, build_parser, parse_options
from firmware_sim.raw_text import BOOT_BANNER, RawText
from firmware_sim.recording import replay_lines
from firmware_sim.runner import Runner
from firmware_sim.signal_wait import SignalWaiter, StopRequested
from firmware_sim.socat_link import LinkError, SocatLink
from firmware_sim.tabular import DelimitedEncoder, KeyValueEncoder
from firmware_sim.waveforms import SignalGenerator

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNREAD = 3


def note(message: str) -> None:
    print(f"firmware-sim: {message}", file=sys.stderr, flush=True)


def fault_seed(seed: int) -> str:
    """Seed of the fault stream: derived from ``seed``, independent of the values' stream."""
    return f"firmware-sim faults {seed}"


def text_seed(seed: int) -> str:
    """Seed of the raw format's choice of lines: its own stream, so the values stay those of
    the other formats with the same seed."""
    return f"firmware-sim text {seed}"


def line_source(options: SimulatorOptions, seed: int, replay: IO[bytes] | None) -> LineSource:
    """Where the device's lines come from: the recording, or generated in ``--format``."""
    terminator, samples, fmt = options.terminator, options.samples, options.line_format
    if replay is not None:
        keep = not options.terminator_given
        lines = replay_lines(replay, options.replay_header, terminator, keep_terminators=keep)
        return ReplayedLines(lines, samples)
    if fmt == "nmea0183":
        receiver = GnssReceiver(
            random.Random(seed), options.rate, options.talker, options.proprietary, options.ais
        )
        return SentenceLines(receiver, terminator, samples, boot=options.boot_header)
    generator = SignalGenerator(options.waveform, options.rate, random.Random(seed))
    if fmt == "raw":
        text = RawText(random.Random(text_seed(seed)), options.decimals)
        banner = BOOT_BANNER if options.boot_header else ()
        return RawTextLines(generator, text, terminator, samples, banner)
    encoder: SampleEncoder
    header: tuple[bytes, ...] = ()
    if fmt in ("keyvalue", "delimited"):
        if fmt == "keyvalue":
            kv = KeyValueEncoder(
                options.names, options.kv_separator, options.kv_assign, options.time_column
            )
            encoder, header = kv, (kv.header(),)
        else:
            table = DelimitedEncoder(options.names, options.delimiter, options.time_column)
            encoder, header = table, (table.header(),)
    else:
        encoder = LineEncoder(fmt, options.sentence)
    boot = header if options.boot_header else ()
    return GeneratedLines(generator, encoder, options.decimals, terminator, samples, boot)


def build_device(options: SimulatorOptions, seed: int, replay: IO[bytes] | None) -> Device:
    return Device(
        line_source(options, seed, replay),
        options.rate,
        options.terminator,
        options.faults,
        random.Random(fault_seed(seed)),
        reboot_on_replug=options.reboot_on_replug,
    )


def _prepare_link(options: SimulatorOptions, parser) -> None:
    directory = os.path.dirname(os.path.abspath(options.link))
    if not os.path.isdir(directory):
        parser.error(f"argument --link: directory {directory} does not exist")
    if os.path.islink(options.link) and not os.path.exists(options.link):
        os.unlink(options.link)  # dangling: left behind by a run that was killed
        note(f"removed stale link {options.link}")
    elif os.path.lexists(options.link):
        parser.error(
            f"argument --link: {options.link} already exists "
            "(another firmware-sim running? remove it first)"
        )


def _open(path: str, mode: str, option: str, parser) -> IO:
    try:
        return open(path, mode)
    except OSError as error:
        parser.error(f"argument {option}: can't open {path!r}: {error.strerror}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    replay = fault_log = None
    try:
        options = parse_options(argv, parser)
        _prepare_link(options, parser)
        if options.replay is not None:
            replay = _open(options.replay, "rb", "--replay", parser)
        if options.fault_log is not None:
            fault_log = _open(options.fault_log, "w", "--fault-log", parser)
    except SystemExit as stop:
        if replay is not None:
            replay.close()
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    seed = options.seed
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
        note(f"seed {seed} (pass --seed {seed} to repeat this run)")
    device = build_device(options, seed, replay)
    waiter = SignalWaiter()
    waiter.install()
    workdir = tempfile.mkdtemp(prefix="firmware-sim-")
    link = SocatLink(options.link, workdir, options.wait_for_reader, waiter.wait, note)
    runner = Runner(device, link, waiter, options.rate, options.drain_timeout, fault_log, note)
    try:
        unread = runner.run()
    except StopRequested as stop:
        note(f"{stop} after {runner.lines_sent} lines")
        return 128 + stop.signum
    except (LinkError, OSError) as error:
        note(str(error))
        return EXIT_FAILURE
    finally:
        link.unplug()
        shutil.rmtree(workdir, ignore_errors=True)
        waiter.restore()
        for file in (replay, fault_log):
            if file is not None:
                file.close()
    seconds = (runner.end or 0.0) - (runner.start or 0.0)
    if runner.stalled:
        note(
            f"nobody read {options.link} for --drain-timeout {options.drain_timeout:g} s; "
            f"stopped after {runner.lines_sent} lines: "
            f"{unread} of {runner.bytes_sent} bytes sent were never read"
        )
        return EXIT_UNREAD
    if unread:
        note(
            f"{unread} of {runner.bytes_sent} bytes were never read "
            f"(gave up after --drain-timeout {options.drain_timeout:g} s)"
        )
        return EXIT_UNREAD
    note(f"sent {runner.lines_sent} lines ({runner.bytes_sent} bytes) in {seconds:.3f} s; all read")
    return EXIT_OK
