"""Shared test configuration: markers by directory."""

import pathlib

import pytest

_MARK_BY_DIR = {
    "unit": "unit",
    "integration": "integration",
    "web": "integration",  # the site's consumers: Django, a database, the channel layer
    "system": "system",
    "soak": "soak",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = pathlib.Path(str(item.fspath)).parts
        for directory, mark in _MARK_BY_DIR.items():
            if directory in parts:
                item.add_marker(getattr(pytest.mark, mark))
