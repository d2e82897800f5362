"""``gateway config check|show``: what is wrong with the settings, and what they are.

Both see what every command sees: the environment overlaid with the env file
(``GATEWAY_ENV_FILE`` or ``--env-file``), which the CLI loads before they run.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.settings import SETTINGS, Section, Settings, environment_problems, read_env_file

DEFAULT, ENVIRONMENT, ENV_FILE = "default", "environment", "env-file"
ENV_FILE_VARIABLE = SETTINGS["env_file"].env


def sources(environ: Mapping[str, str]) -> dict[str, str]:
    """Where each setting's value comes from, by variable: default, environment or env-file."""
    path = environ.get(ENV_FILE_VARIABLE, "")
    from_file = read_env_file(path) if path else {}
    found = {}
    for declared in SETTINGS.values():
        if declared.env in from_file:  # the file wins over the environment
            found[declared.env] = ENV_FILE
        elif declared.env in environ:
            found[declared.env] = ENVIRONMENT
        else:
            found[declared.env] = DEFAULT
    return found


def check(environ: Mapping[str, str]) -> tuple[list[str], str]:
    """Every problem with the settings in ``environ``, and the line that says there is none."""
    problems = environment_problems(environ)
    if problems:
        return problems, ""
    counts = Counter(sources(environ).values())
    in_file = f"{counts[ENV_FILE]} in {environ[ENV_FILE_VARIABLE]}, " if counts[ENV_FILE] else ""
    return [], (
        f"gateway config: OK ({counts[ENVIRONMENT]} set in the environment, {in_file}"
        f"{counts[DEFAULT]} defaults)"
    )


def masked(secret: str) -> str:
    """A secret as ``show`` prints it: never the value; the last two characters of a long one,
    to tell two tokens apart."""
    if not secret:
        return ""
    return "****" + secret[-2:] if len(secret) >= 12 else "****"


@dataclasses.dataclass(frozen=True)
class Shown:
    """One setting as ``show`` prints it."""

    env: str
    section: Section
    text: str  # as the variable would be written; a secret masked
    value: Any  # the same for JSON: a number, a flag, a list of names...
    source: str


def shown(settings: Settings, environ: Mapping[str, str]) -> list[Shown]:
    """Every setting of ``settings`` in declaration order, with where it came from."""
    came_from = sources(environ)
    rows = []
    for declared in SETTINGS.values():
        value = getattr(settings, declared.attribute)
        text = declared.format(value)
        if declared.secret:
            value = text = masked(text)
        elif isinstance(value, Path):
            value = text
        rows.append(Shown(declared.env, declared.section, text, value, came_from[declared.env]))
    return rows


def format_shown(rows: list[Shown]) -> str:
    """``NAME=value  # source`` lines under a ``# Section`` line per section."""
    width = min(60, max(len(row.env) + 1 + len(row.text) for row in rows))
    blocks = []
    for section in Section:
        lines = [f"# {section.value}"]
        for row in rows:
            if row.section is section:
                lines.append(f"{row.env}={row.text}".ljust(width) + f"  # {row.source}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def shown_as_json(rows: list[Shown]) -> dict[str, dict]:
    """``{"GATEWAY_BAUD": {"section": "serial", "value": 115200, "source": "default"}, ...}``"""
    return {
        row.env: {"section": row.section.key, "value": row.value, "source": row.source}
        for row in rows
    }
