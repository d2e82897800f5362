"""What a plain ``pip install`` of the wheel gets: the site's chart library (uPlot) is in the
package's static files, the exact file npm ships, with its license."""

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "web" / "static" / "vendor" / "uplot"
FILES = ("uPlot.iife.min.js", "uPlot.min.css")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_vendored_uplot_is_the_version_the_lock_file_names():
    header = (VENDOR / "uPlot.iife.min.js").read_text()[:100]
    assert header.startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    assert (
        '"node_modules/uplot": {\n      "version": "1.6.32"'
        in (REPO / "package-lock.json").read_text()
    )
    assert "MIT License" in (VENDOR / "LICENSE").read_text()


def test_the_vendored_uplot_is_byte_for_byte_npms_where_node_modules_is_there():
    dist = REPO / "node_modules" / "uplot" / "dist"
    if not dist.is_dir():
        pytest.skip("no node_modules (npm ci runs for make bench only)")
    for name in FILES:
        assert sha256((VENDOR / name).read_bytes()) == sha256((dist / name).read_bytes()), name


def test_the_wheel_carries_uplot_and_its_license(tmp_path):
    # From a copy: an in-tree build would leave build/ behind, whose stale files a later wheel
    # could pick up.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".pytest_cache")
    for name in ("gateway", "web", "firmware-sim"):
        shutil.copytree(REPO / name, source / name, ignore=junk)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("fieldgate-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in (*FILES, "LICENSE"):
            packed = archive.read(f"web/static/vendor/uplot/{name}")
            assert packed == (VENDOR / name).read_bytes(), name
        names = archive.namelist()
    assert "web/templates/live/gateway.html" in names
