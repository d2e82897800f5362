"""Sealed batches for uploader tests, and checks of what reached S3.

``write_batches`` lays out files exactly as the reader seals them (names, header, rows); the
reader itself seals the batches of tests/integration/test_upload_reader.py.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from pathlib import Path

SEQ = "{:012d}"


def write_batches(
    data_dir: Path,
    count: int,
    rows: int,
    *,
    start_seq: int = 0,
    day: dt.date = dt.date(2024, 5, 1),
    channels: int = 3,
    seed: int = 1,
    gateway_id: str | None = None,
) -> list[Path]:
    """``count`` sealed batches of ``rows`` rows each, seq contiguous from ``start_seq``."""
    rng = random.Random(seed)
    folder = data_dir / "batches" / f"{day:%Y/%m/%d}"
    folder.mkdir(parents=True, exist_ok=True)
    (data_dir / "state").mkdir(exist_ok=True)
    (data_dir / "quarantine").mkdir(exist_ok=True)
    if gateway_id:
        (data_dir / "state" / "identity.json").write_text(json.dumps({"gateway_id": gateway_id}))
    base = dt.datetime(day.year, day.month, day.day, 1, tzinfo=dt.UTC).timestamp()
    header = ",".join(["seq", "received_at", *(f"f{i}" for i in range(channels))]) + "\n"
    paths = []
    seq = start_seq
    for _ in range(count):
        lines = [header]
        for _ in range(rows):
            values = ",".join(f"{rng.uniform(-9, 9):.4f}" for _ in range(channels))
            lines.append(f"{seq},{base + seq / 1000:.6f},{values}\n")
            seq += 1
        path = folder / f"{SEQ.format(seq - rows)}-{SEQ.format(seq - 1)}.csv"
        path.write_text("".join(lines))
        paths.append(path)
    return paths


def object_bytes(s3, bucket: str, key: str) -> bytes:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return gzip.decompress(body) if key.endswith(".gz") else body


def touched_marks(data_dir: Path) -> dict[Path, dict]:
    """Each batch's touched mark, by batch path."""
    return {
        path.with_name(path.name.removesuffix(".touched")): json.loads(path.read_text())
        for path in (data_dir / "batches").rglob("*.csv.touched")
    }
