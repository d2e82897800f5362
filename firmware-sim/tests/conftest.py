"""The simulator's own tests: markers by directory, as tests/conftest.py gives the repo's.

``pytest -m unit`` and ``-m integration`` select these tests the same way whether they run on
their own (``pytest firmware-sim/tests``) or with the repo's (``pytest tests firmware-sim/tests``).

There is no ``__init__.py`` here on purpose: a package named ``tests`` would clash with the
repo's ``tests`` package. So pytest imports these modules by their file names and puts this
directory on ``sys.path`` when it loads this file: test modules import the shared helpers here
by name, ``reference_receiver`` (an independent receiver of every format) and ``pty_reading``
(reading the port with pyserial). Test file names must therefore be unique (``test_sim_*``).
"""

import pathlib

import pytest

HERE = pathlib.Path(__file__).parent
MARK_BY_DIR = {"unit": "unit", "integration": "integration"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = pathlib.Path(str(item.fspath))
        if HERE not in path.parents:
            continue
        for directory, mark in MARK_BY_DIR.items():
            if directory in path.relative_to(HERE).parts and not item.get_closest_marker(mark):
                item.add_marker(getattr(pytest.mark, mark))
