"""Read what the reader stored, independently of the store's own code where it matters."""

from __future__ import annotations

import csv
import re
from pathlib import Path

SEALED = re.compile(r"(\d{12,})-(\d{12,})\.csv")


def sealed_files(data_dir: Path) -> list[Path]:
    files = [p for p in (data_dir / "batches").rglob("*.csv") if SEALED.fullmatch(p.name)]
    return sorted(files, key=lambda p: int(SEALED.fullmatch(p.name)[1]))


PART = re.compile(r"\d{12,}\.part")


def part_files(data_dir: Path) -> list[Path]:
    """Open batches (``<first seq>.part``); an upload mark being written is not one."""
    return sorted(p for p in (data_dir / "batches").rglob("*.part") if PART.fullmatch(p.name))


def read_rows(data_dir: Path) -> list[list[bytes]]:
    """Every row of every sealed batch, split at commas, checking each file's header and name."""
    rows = []
    for path in sealed_files(data_dir):
        lines = path.read_bytes().split(b"\n")
        assert lines[-1] == b"", f"{path} does not end with a newline"
        header, body = lines[0], lines[1:-1]
        assert header.startswith(b"seq,received_at,"), f"{path}: header {header!r}"
        width = header.count(b",") + 1
        first, last = map(int, SEALED.fullmatch(path.name).groups())
        split = [line.split(b",") for line in body]
        assert all(len(row) == width for row in split), f"{path}: ragged rows"
        assert [int(row[0]) for row in split] == list(range(first, last + 1)), (
            f"{path}: seq does not match its name"
        )
        rows.extend(split)
    return rows


def device_fields(rows: list[list[bytes]]) -> list[bytes]:
    return [b",".join(row[2:]) for row in rows]


def seqs(rows: list[list[bytes]]) -> list[int]:
    return [int(row[0]) for row in rows]


def read_tables(data_dir: Path) -> list[tuple[list[str], list[list[str]]]]:
    """Each sealed batch as (header, rows), parsed as RFC 4180 CSV (quoted fields allowed),
    checking seq against the file's name."""
    tables = []
    for path in sealed_files(data_dir):
        with open(path, newline="", encoding="utf-8") as file:
            header, *rows = list(csv.reader(file))
        first, last = map(int, SEALED.fullmatch(path.name).groups())
        assert [int(row[0]) for row in rows] == list(range(first, last + 1)), path
        assert all(len(row) == len(header) for row in rows), f"{path}: ragged rows"
        tables.append((header, rows))
    return tables
