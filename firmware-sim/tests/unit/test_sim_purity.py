"""The simulator's structure: pure modules do no I/O and read no clock, no module of
firmware_sim imports gateway (it must stay an independent peer of the reader), and neither do
its tests (nor the repo's tests package, which may)."""

import ast
import pathlib
import subprocess
import sys

import pytest

import firmware_sim

PACKAGE = pathlib.Path(firmware_sim.__file__).parent
TESTS = pathlib.Path(__file__).parents[1]  # firmware-sim/tests
PURE_MODULES = (
    "waveforms",
    "line_formats",
    "tabular",
    "nmea0183",
    "ais",
    "raw_text",
    "line_sources",
    "fault_spec",
    "fault_plan",
    "recording",
    "device",
    "pacing",
    "options",
)
# What a pure module may import: computation only. No os, time, subprocess, select, signal.
ALLOWED_IMPORTS = {
    "__future__",
    "argparse",
    "collections",
    "collections.abc",
    "dataclasses",
    "datetime",  # calendar arithmetic for NMEA dates; reading the clock is checked below
    "math",
    "random",
    "re",
    "typing",
}
FORBIDDEN_NAMES = {"time", "monotonic", "perf_counter", "open", "print", "environ"}
# Clock readings through an attribute (datetime.datetime.now(), date.today(), ...).
FORBIDDEN_ATTRIBUTES = {"now", "today", "utcnow", "monotonic", "perf_counter", "time_ns"}


def imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return names


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_modules_import_only_computation_and_each_other(name):
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    outside = {
        module
        for module in imported_modules(tree)
        if not module.startswith("firmware_sim.") and module not in ALLOWED_IMPORTS
    }
    assert outside == set()
    for module in imported_modules(tree) - ALLOWED_IMPORTS:
        assert module.removeprefix("firmware_sim.") in PURE_MODULES
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert used & FORBIDDEN_NAMES == set()
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert attributes & FORBIDDEN_ATTRIBUTES == set()


def test_pure_modules_load_without_the_io_modules():
    code = (
        "import sys\n"
        + "".join(f"import firmware_sim.{name}\n" for name in PURE_MODULES)
        + "print(' '.join(m for m in ('subprocess', 'select', 'signal', 'fcntl', 'termios',"
        " 'serial', 'gateway') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_no_module_of_the_simulator_imports_gateway():
    for path in sorted(PACKAGE.glob("*.py")):
        modules = imported_modules(ast.parse(path.read_text()))
        assert not {m for m in modules if m == "gateway" or m.startswith("gateway.")}, path


def test_no_test_of_the_simulator_imports_gateway_or_the_repos_tests():
    paths = sorted(TESTS.rglob("*.py"))
    assert TESTS / "reference_receiver.py" in paths and pathlib.Path(__file__) in paths
    for path in paths:
        modules = imported_modules(ast.parse(path.read_text()))
        reaching_gateway = {
            m for m in modules if m.split(".")[0] in ("gateway", "tests", "web", "hil", "bench")
        }
        assert reaching_gateway == set(), path


@pytest.mark.parametrize("helper", ["reference_receiver.py", "pty_reading.py"])
def test_the_tests_helpers_owe_nothing_to_the_simulator(helper):
    modules = imported_modules(ast.parse((TESTS / helper).read_text()))
    assert {m for m in modules if m.split(".")[0] == "firmware_sim"} == set()
