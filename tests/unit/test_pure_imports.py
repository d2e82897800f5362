"""The pure core imports no I/O library: checked in a fresh interpreter per module."""

import subprocess
import sys

import pytest

PURE_MODULES = [
    "gateway.framing",
    "gateway.records",
    "gateway.intake",
    "gateway.batching",
    "gateway.batchfile",
    "gateway.keys",
    "gateway.retention",
    "gateway.reconcile",
    "gateway.uploader.manifest",
    "gateway.uploader.backoff",
    "gateway.uploader.plan",
    "gateway.decimate",
    "gateway.report.aggregate",
    "web.ingest.protocol",
]
IO_LIBRARIES = [
    "serial",
    "websockets",
    "boto3",
    "botocore",
    "luigi",
    "dask",
    "django",
    "daemon",
    "channels",
    "sdnotify",
    "uvloop",
    # gateway report's shells: the pure core (gateway.report.aggregate) works on plain data.
    "s3fs",
    "matplotlib",
    "pandas",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_io_library(module):
    probe = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        f"loaded = sorted(m for m in {IO_LIBRARIES!r} if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"


def test_the_probe_can_see_an_io_import():
    """The check above would notice: a shell module does pull in pyserial."""
    probe = "import sys, gateway.reader.port; print('serial' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True"
