"""What a plain ``pip install`` of the wheel gets: the site's chart library (uPlot) is in the
package's static files, the exact file npm ships, with its license."""

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

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


def test_the_vendored_uplot_is_byte_for_byte_the_package_npm_serves():
    """The tarball the lock file pins (fetched from the npm registry, as ``npm ci`` would, and
    checked against the lock's integrity hash) holds exactly the vendored files."""
    lock = json.loads((REPO / "package-lock.json").read_text())["packages"]["node_modules/uplot"]
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
    url = f"{registry}/uplot/-/uplot-{lock['version']}.tgz"
    with urllib.request.urlopen(url, timeout=60) as response:
        tarball = response.read()
    algorithm, digest = lock["integrity"].split("-", 1)
    assert base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode() == digest, url
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        for name in FILES:
            shipped = archive.extractfile(f"package/dist/{name}").read()
            assert sha256((VENDOR / name).read_bytes()) == sha256(shipped), name


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
