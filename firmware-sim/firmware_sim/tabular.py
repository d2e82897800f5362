"""Samples as labelled pairs (``keyvalue``) or as delimited columns under a header
(``delimited``), the way hobby boards and lab instruments print them (pure).

``keyvalue`` follows the Arduino Serial Plotter's protocol: a line is parts separated by a
comma, a space or a tab, each part ``label:value``; a line of labels alone (``label:``) names
the traces without plotting. ``=`` instead of ``:`` is the other common spelling.

``delimited`` is a table: values separated by ``,``, ``;``, a tab, or runs of spaces (columns
right-aligned, as ``printf("%12.4f")`` prints them), under a header line of names that the
instrument prints once at power-on.

Both encoders take the same ``(n, t, channels)`` field texts as ``line_formats.LineEncoder``,
so the faults that rebuild a line with one field changed work the same way.
"""

import re
from collections.abc import Sequence

from firmware_sim.fault_plan import TEXT_GARBAGE_FIRST_BYTES, cut_before_last

KV_SEPARATORS = {"comma": b",", "space": b" ", "tab": b"\t"}
DEFAULT_KV_SEPARATOR = "comma"
KV_ASSIGNS = (":", "=")
DEFAULT_KV_ASSIGN = ":"
DELIMITERS = {"comma": b",", "semicolon": b";", "tab": b"\t", "space": b" "}
DEFAULT_DELIMITER = "comma"
# With --delimiter space, every column is right-aligned in this many characters (wider for a
# longer name); a value that does not fit is still preceded by one space.
SPACE_COLUMN_WIDTH = 12
TIME_NAME = "t"
MAX_NAME_LENGTH = 32
# A name must survive every layout: no separator, delimiter or assignment of either format, no
# whitespace or control character, and no start a number could have (so a header line never
# reads as data).
_NOT_IN_NAMES = r'\s\x00-\x1f\x7f,;:="'
_NAME_RE = re.compile(rf"[^{_NOT_IN_NAMES}0-9+.\-][^{_NOT_IN_NAMES}]{{0,{MAX_NAME_LENGTH - 1}}}")
NAME_RULE = (
    f"1 to {MAX_NAME_LENGTH} characters, not starting with a digit, '+', '-' or '.', without "
    'whitespace, control characters or any of ,;:="'
)


def default_names(channels: int) -> tuple[str, ...]:
    return tuple(f"ch{k}" for k in range(channels))


def is_valid_name(name: str) -> bool:
    return _NAME_RE.fullmatch(name) is not None


class KeyValueEncoder:
    """``name:value`` parts, one per channel (after ``t:...`` with ``time_column``)."""

    # A line may start with almost any byte (a name), so garbage starts invalid UTF-8.
    garbage_first_bytes = TEXT_GARBAGE_FIRST_BYTES

    def __init__(
        self,
        names: Sequence[str],
        separator: bytes = b",",
        assign: bytes = b":",
        time_column: bool = False,
    ):
        labels = ((TIME_NAME,) if time_column else ()) + tuple(names)
        self.names = labels
        self.separator = separator
        self.assign = assign
        self.time_column = time_column
        self._prefixes = tuple(name.encode() + assign for name in labels)

    def encode(self, n: int, t: bytes, channels: Sequence[bytes]) -> bytes:
        values = (t, *channels) if self.time_column else channels
        return self.separator.join([p + v for p, v in zip(self._prefixes, values, strict=True)])

    def header(self) -> bytes:
        """The plotter's labels-only line (``ch0:,ch1:``): names the traces, plots nothing."""
        return self.separator.join(self._prefixes)

    def truncate(self, line: bytes) -> bytes:
        """Cut before the last assignment: the last part is left a name without a value, so
        the line is malformed whatever a receiver knows about the channels."""
        return cut_before_last(line, self.assign)


class DelimitedEncoder:
    """Columns ``[t,] ch0, ch1, ...`` separated by ``delimiter``; the header names them."""

    garbage_first_bytes = TEXT_GARBAGE_FIRST_BYTES  # a header may start with almost any byte

    def __init__(self, names: Sequence[str], delimiter: bytes = b",", time_column: bool = False):
        self.names = ((TIME_NAME,) if time_column else ()) + tuple(names)
        self.delimiter = delimiter
        self.time_column = time_column
        self._aligned = delimiter == b" "
        self._widths = tuple(max(SPACE_COLUMN_WIDTH, len(name.encode()) + 1) for name in self.names)

    def _join(self, fields: Sequence[bytes]) -> bytes:
        if not self._aligned:
            return self.delimiter.join(fields)
        return b"".join(
            [
                f.rjust(w) if len(f) < w else b" " + f
                for f, w in zip(fields, self._widths, strict=True)
            ]
        )

    def encode(self, n: int, t: bytes, channels: Sequence[bytes]) -> bytes:
        return self._join((t, *channels) if self.time_column else channels)

    def header(self) -> bytes:
        return self._join([name.encode() for name in self.names])

    def truncate(self, line: bytes) -> bytes:
        """Cut before the last delimiter (before the last run of spaces between two columns
        when they are aligned); a line of one column keeps its first half."""
        if not self._aligned:
            return cut_before_last(line, self.delimiter)
        start = len(line) - len(line.lstrip(b" "))
        cut = line.rfind(b" ", start)
        return line[:cut].rstrip(b" ") if cut >= 0 else line[: len(line) // 2]
