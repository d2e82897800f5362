"""return_freed_memory, in a process of its own (a clean heap to measure)."""

import subprocess
import sys

SCRIPT = """
from gateway.uploader.memory import return_freed_memory

def rss_mib():
    status = open("/proc/self/status").read()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024

blocks = [bytes(2048) + bytes([i % 256]) for i in range(40_000)]  # 80 MiB from malloc
keep = blocks[-1]  # the top of the heap stays in use: free() alone cannot shrink it
del blocks
before = rss_mib()
trimmed = return_freed_memory()
print(trimmed, round(before - rss_mib()))
"""


def test_freed_heap_pages_go_back_to_the_system():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "True"  # glibc, as on Raspberry Pi OS and Debian
    assert int(out[1]) >= 60, f"only {out[1]} MiB went back"
