"""gateway/store/ is the only code that knows paths under GATEWAY_DATA_DIR.

Outside it no module joins a path with a data-dir name (``root / "batches"``), spells a ledger
or mark file, or globs for batch files: it asks a ``DataDir``, a ledger or the store instead.
(Prose may name them: messages and docstrings tell people where to look.)
"""

import ast
import pathlib

import pytest

import gateway

PACKAGE = pathlib.Path(gateway.__file__).parent
STORE = PACKAGE / "store"
OUTSIDE = sorted(p for p in PACKAGE.rglob("*.py") if STORE not in p.parents)
FOLDERS = {"batches", "quarantine", "state", "recovered", "uploader", "work", "chunks"}
FILES = (
    "batches/",
    "quarantine/",
    "state/",
    ".jsonl",
    ".touched",
    ".status.json",
    "seq.json",
    "identity.json",
    "reader.fragment",
    "uploader.pid",
    "uploader.log",
    "boot_id",
)


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def data_dir_knowledge(source: str) -> list[str]:
    """Where ``source`` spells data-dir paths: literal joins, file names, batch globs."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Div)
            and isinstance(node.right, ast.Constant)
            and node.right.value in FOLDERS
        ):
            found.append(f"line {node.lineno}: joins a path with {node.right.value!r}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and " " not in node.value
            and any(name in node.value for name in FILES)
        ):
            found.append(f"line {node.lineno}: names {node.value!r}")
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", "") in ("glob", "rglob")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append(f"line {node.lineno}: globs {node.args[0].value!r}")
    return found


@pytest.mark.parametrize("path", OUTSIDE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_outside_the_store_spells_a_data_dir_path(path):
    assert data_dir_knowledge(path.read_text()) == []


def test_the_check_finds_joins_file_names_and_globs():
    source = (
        '"""Reads ``state/losses.jsonl``."""\n'
        "def f(root):\n"
        '    """The docstring may say state/ too."""\n'
        '    a = root / "batches"\n'
        '    b = root.state_dir + "/losses.jsonl"\n'
        '    return root.rglob("*.csv"), a, b\n'
    )
    assert data_dir_knowledge(source) == [
        "line 4: joins a path with 'batches'",
        "line 5: names '/losses.jsonl'",
        "line 6: globs '*.csv'",
    ]
