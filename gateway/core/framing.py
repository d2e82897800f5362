"""Bytes in, lines out: split a serial byte stream at a terminator.

No I/O. The caller feeds whatever a read returned (``feed``) and gets the complete lines; a
line longer than the limit is dropped without buffering it (``take_overlong`` reports it), and
reading resumes after the next terminator. Any split of a stream into chunks yields the same
lines: a terminator may straddle two reads.
"""

from __future__ import annotations

from typing import NamedTuple

TERMINATORS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


class Overlong(NamedTuple):
    """A line that exceeded the limit: how long it was and how it began."""

    length: int
    head: bytes


class LineFramer:
    """Split a byte stream into lines, terminator stripped.

    ``strip_cr`` (the default with ``\\n``) also strips one ``\\r`` before the terminator, so a
    device sending ``\\r\\n`` reads the same. ``max_line_bytes`` is a security limit: a line may
    not grow without bound in memory because a device never sends a terminator.
    """

    def __init__(
        self,
        terminator: bytes = b"\n",
        max_line_bytes: int = 4096,
        *,
        strip_cr: bool | None = None,
        head_bytes: int = 64,
    ) -> None:
        if not terminator:
            raise ValueError("terminator must not be empty")
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be at least 1, got {max_line_bytes}")
        self.terminator = terminator
        self.max_line_bytes = max_line_bytes
        self.strip_cr = terminator == b"\n" if strip_cr is None else strip_cr
        self._head_bytes = head_bytes
        self._pending = b""
        self._overlong: list[Overlong] = []
        # While skipping an overlong line: bytes skipped so far, its head, and the last bytes
        # seen (a multi-byte terminator may straddle two reads).
        self._skipping = False
        self._skipped = 0
        self._skip_head = b""
        self._skip_tail = b""

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unfinished line held (or being skipped) right now."""
        return self._skipped if self._skipping else len(self._pending)

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes from the port; return the lines they completed, in order."""
        if self._skipping:
            data = self._skip_to_terminator(data)
            if not data:
                return []
        buffer = self._pending + data if self._pending else data
        if self.strip_cr and self.terminator == b"\n" and b"\r" in buffer:
            lines = self._split_crlf(buffer)
            if lines is not None:
                return lines
        lines = buffer.split(self.terminator)
        self._pending = lines.pop()
        if len(self._pending) > self.max_line_bytes:
            self._start_skipping(self._pending)
            self._pending = b""
        if lines and max(map(len, lines)) > self.max_line_bytes:
            lines = self._drop_overlong(lines)
        if self.strip_cr and b"\r" in buffer:
            lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        return lines

    def _split_crlf(self, buffer: bytes) -> list[bytes] | None:
        """The lines of a read whose every line ends in CR LF, CR stripped; None otherwise or
        when a line may be overlong (the general path counts its length with the CR).

        One split at C speed instead of a Python step per line (NMEA's terminator is CR LF).
        """
        lines = buffer.split(b"\r\n")
        if len(lines) - 1 != buffer.count(b"\n"):
            return None  # a line ends in a bare LF
        pending = lines.pop()
        if len(pending) > self.max_line_bytes or (
            lines and max(map(len, lines)) >= self.max_line_bytes
        ):
            return None
        self._pending = pending
        return lines

    def take_overlong(self) -> list[Overlong]:
        """The overlong lines completed since the last call (their terminators were seen)."""
        taken, self._overlong = self._overlong, []
        return taken

    def reset(self) -> int:
        """Forget an unfinished line (the port was lost); return how many bytes were dropped."""
        dropped = self.pending_bytes
        self._pending = b""
        self._skipping = False
        self._skipped = 0
        self._skip_head = self._skip_tail = b""
        return dropped

    def take_pending(self) -> bytes:
        """Hand over the unfinished line (to keep it across a clean restart) and forget it."""
        pending = b"" if self._skipping else self._pending
        self.reset()
        return pending

    def _drop_overlong(self, lines: list[bytes]) -> list[bytes]:
        kept = []
        limit = self.max_line_bytes
        for line in lines:
            if len(line) > limit:
                self._overlong.append(Overlong(len(line), line[: self._head_bytes]))
            else:
                kept.append(line)
        return kept

    def _start_skipping(self, partial: bytes) -> None:
        self._skipping = True
        self._skipped = len(partial)
        self._skip_head = partial[: self._head_bytes]
        self._skip_tail = (
            partial[-(len(self.terminator) - 1) :] if len(self.terminator) > 1 else b""
        )

    def _skip_to_terminator(self, data: bytes) -> bytes:
        """Skip an overlong line's bytes; return what follows its terminator (or b"")."""
        window = self._skip_tail + data
        end = window.find(self.terminator)
        if len(self._skip_head) < self._head_bytes:
            self._skip_head = (self._skip_head + data)[: self._head_bytes]
        if end < 0:
            self._skipped += len(data)
            keep = len(self.terminator) - 1
            self._skip_tail = window[-keep:] if keep else b""
            return b""
        self._skipped += end - len(self._skip_tail)
        self._overlong.append(Overlong(self._skipped, self._skip_head[: self._skipped]))
        self._skipping = False
        self._skipped = 0
        self._skip_head = self._skip_tail = b""
        return window[end + len(self.terminator) :]
