"""Which lines of a recording ``--replay`` sends, and with which terminator (pure).

A line is everything up to and including ``\\n``; a ``\\r`` before it belongs to the line's
own terminator and is kept, so every line is sent with its own bytes (a capture with CR LF, or
mixed, endings is replayed as it was), unless the caller asks for one terminator for all.
"""

from collections.abc import Iterable, Iterator

HEADER_MODES = ("auto", "send", "skip")
# First bytes of a data line in csv, csv-seq, json, nmea and nmea0183 (including AIS's "!").
DATA_FIRST_BYTES = b"0123456789-${!"


def looks_like_data(line: bytes) -> bool:
    """True iff the line's first byte is a digit, ``-``, ``$``, ``{`` or ``!``."""
    return line[:1] != b"" and line[0] in DATA_FIRST_BYTES


def split_terminator(line: bytes) -> tuple[bytes, bytes]:
    """``(body, terminator)``: terminator is ``\\r\\n``, ``\\n`` or empty (a last line)."""
    if line.endswith(b"\r\n"):
        return line[:-2], b"\r\n"
    if line.endswith(b"\n"):
        return line[:-1], b"\n"
    return line, b""


def replay_lines(
    lines: Iterable[bytes], header: str, terminator: bytes, keep_terminators: bool = True
) -> Iterator[bytes]:
    """The lines to send, each ending with its terminator.

    ``lines`` are the file's lines as a binary file iterates them (each ends with ``\\n``
    except perhaps the last). ``header``: ``send`` sends every line, ``skip`` drops the
    first line, ``auto`` drops the first line iff it does not look like data (an empty
    first line does not). A last line without ``\\n`` gets ``terminator``; so does every
    line (in place of its own ``\\r\\n`` or ``\\n``) unless ``keep_terminators``.
    """
    if header not in HEADER_MODES:
        raise ValueError(f"unknown header mode {header!r} (modes: {', '.join(HEADER_MODES)})")
    first = True
    for line in lines:
        if first:
            first = False
            if header == "skip" or (header == "auto" and not looks_like_data(line)):
                continue
        if not keep_terminators:
            line = split_terminator(line)[0]
        if not line.endswith(b"\n"):
            line += terminator
        yield line
