"""The power-cut tests mount a FUSE file system and run real processes: integration tests.
They skip only where FUSE cannot work at all (no /dev/fuse, no fusermount3, no libfuse)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.powercut.mount import LazyMount, fuse_unavailable


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


class Lazy:
    """A mounted LazyFS on tmp_path, and the power cut of the tests: cut, unmount, mount."""

    def __init__(self, tmp_path: Path) -> None:
        self.backing = tmp_path / "backing"
        self.mount = LazyMount(
            self.backing, tmp_path / "mnt", tmp_path / "lazyfs.sock", tmp_path / "lazyfs.log"
        )
        self.mnt = self.mount.mountpoint
        self.mount.start()

    def power_cut(self, mode: str = "drop", seed: int = 0) -> dict:
        lost = self.mount.cut(mode, seed)
        assert self.mount.unmount() == 0, self.mount.log_tail()
        self.mount.start()
        return lost


@pytest.fixture(name="lazy")
def lazy_fixture(tmp_path):
    reason = fuse_unavailable()
    if reason:
        pytest.skip(f"FUSE is not available here: {reason}")
    lazy = Lazy(tmp_path)
    try:
        yield lazy
    finally:
        lazy.mount.stop()
