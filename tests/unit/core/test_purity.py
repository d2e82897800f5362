"""gateway/core/ is pure by folder: every module in it, present and future, is checked.

Pure means: it imports only computation from the standard library and other core modules,
calls nothing that does I/O, reads the clock, the environment or logs, and importing it in a
fresh interpreter loads none of the I/O libraries the shells use.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

import gateway.core

CORE = pathlib.Path(gateway.core.__file__).parent
MODULES = sorted(
    f"gateway.core.{path.stem}" for path in CORE.glob("*.py") if path.stem != "__init__"
)
# Computation only. Not os, io, pathlib, time, socket, select, subprocess, threading,
# logging, random (a core function takes its jitter or seed as an argument).
ALLOWED_IMPORTS = {
    "__future__",
    "array",  # typed number arrays (binary stream frames); no file or socket use
    "base64",
    "bisect",
    "collections",
    "collections.abc",
    "dataclasses",
    "datetime",
    "enum",
    "errno",  # constants only: which cause a failed write stands for
    "fractions",
    "functools",
    "gc",
    "hashlib",
    "heapq",
    "itertools",
    "json",
    "math",
    "operator",
    "re",
    "statistics",
    "string",
    "struct",
    "typing",
    "unicodedata",
    "zlib",
}
# Calls that read the clock or the environment, or do I/O, even without an import.
FORBIDDEN_CALLS = {"open", "print", "input", "now", "today", "utcnow", "time", "getenv"}
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
    "s3fs",
    "matplotlib",
    "pandas",
    "logging",
    "socket",
    "subprocess",
    "threading",
]


def impurities(source: str) -> list[str]:
    """What makes ``source`` impure: each disallowed import or call, with its line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        else:
            names = []
        for name in names:
            if name not in ALLOWED_IMPORTS and not name.startswith("gateway.core"):
                found.append(f"line {node.lineno}: imports {name}")
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if called in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: calls {called}()")
        if isinstance(node, ast.Attribute) and node.attr == "environ":
            found.append(f"line {node.lineno}: reads environ")
    return found


def test_the_core_holds_the_pure_logic():
    assert len(MODULES) >= 8, MODULES


@pytest.mark.parametrize("module", MODULES)
def test_core_module_imports_and_calls_only_computation(module):
    path = CORE / f"{module.rsplit('.', 1)[1]}.py"
    assert impurities(path.read_text()) == []


@pytest.mark.parametrize("module", MODULES)
def test_core_module_loads_no_io_library(module):
    probe = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        f"loaded = sorted(m for m in {IO_LIBRARIES!r} if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"{module} loaded {result.stdout.strip()}"


def test_the_source_check_catches_io_clock_and_environment():
    source = (
        "import os\n"
        "from pathlib import Path\n"
        "import datetime as dt\n"
        "from gateway.store import layout\n"
        "def f():\n"
        "    open('x')\n"
        "    return dt.datetime.now(), os.environ\n"
    )
    assert impurities(source) == [
        "line 1: imports os",
        "line 2: imports pathlib",
        "line 4: imports gateway.store",
        "line 6: calls open()",
        "line 7: calls now()",
        "line 7: reads environ",
    ]


def test_the_load_check_can_see_an_io_import():
    """The fresh-interpreter check would notice: a shell module does pull in pyserial."""
    probe = "import sys, gateway.reader.port; print('serial' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True"
