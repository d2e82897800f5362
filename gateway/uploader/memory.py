"""Giving freed heap back to the system between upload cycles (glibc; elsewhere a no-op).

A cycle gzips, hashes and sends batches from several threads; what it allocated is freed at its
end, but glibc keeps freed pages inside its heaps (only the top of each heap shrinks), so the
uploader's RSS stays at its busiest cycle's and creeps up with the spread of cycle sizes.
``malloc_trim(0)`` hands every whole free page back (madvise), costing about a millisecond.
Measured in bench/gateway, the uploader idle between cycles: see docs/uploader.md.
"""

from __future__ import annotations

import ctypes

try:
    _malloc_trim = ctypes.CDLL(None).malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def return_freed_memory() -> bool:
    """Release the heaps' free pages to the system; whether the C library could."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True
