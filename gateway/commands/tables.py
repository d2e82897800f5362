"""``gateway tables``: a session's rows as one CSV table per record type (docs/formats.md).

From the data dir, or with ``--from-s3`` from the bucket (which needs the analysis extra's
s3fs). The tables are built in memory: meant for a session or a few days, not a year.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gateway.core.tables import Tables
from gateway.settings import Settings
from gateway.store.layout import DataDir, discover_data_dirs
from gateway.store.ledgers import read_identity
from gateway.store.recovery import sealed_batches


class TablesError(ValueError):
    """Nothing to read, or not one gateway to read it from; ``str()`` says which."""


def _in_range(day: dt.date, since: dt.date | None, until: dt.date | None) -> bool:
    return (since is None or day >= since) and (until is None or day <= until)


def local_batches(settings: Settings, gateway_id: str | None, since, until) -> list[bytes]:
    found = []
    for data_dir in discover_data_dirs(settings.data_dir):
        identity = read_identity(data_dir)
        name = identity.gateway_id if identity else settings.gateway_id
        if gateway_id is None or name == gateway_id:
            found.append(data_dir)
    if len(found) != 1:
        raise TablesError(
            f"{settings.data_dir} holds {len(found)} data dirs of that gateway: "
            "name one with --gateway (or --data-dir)"
        )
    data_dir: DataDir = found[0]
    return [
        batch.path.read_bytes()
        for batch in sealed_batches(data_dir)
        if _in_range(batch.name.day, since, until)
    ]


def bucket_batches(settings: Settings, gateway_id: str | None, since, until) -> list[bytes]:
    from gateway.report.sources import S3Location, read_source, s3_batches, s3_gateways

    location = S3Location.from_settings(settings)
    if gateway_id is None:
        gateways = s3_gateways(location)
        if len(gateways) != 1:
            raise TablesError(f"the bucket holds {len(gateways)} gateways: pick one with --gateway")
        gateway_id = gateways[0]
    sources, _ = s3_batches(location, gateway_id, since, until)
    return [read_source(source) for source in sources]  # gunzipped as their keys say


def write_tables(batches: list[bytes], out: Path) -> dict[str, int]:
    """Every batch's rows into ``out/<record type>.csv``; rows per table."""
    tables = Tables()
    for data in batches:
        tables.add(data)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.tables.items():
        (out / f"{name}.csv").write_bytes(table.as_csv())
    return tables.counts()
