"""The central site's batches: a gateway's objects in the bucket its uploader writes to
(``FIELDGATE_WEB_S3_*``, credentials from the standard ``AWS_*`` variables), read back for the
CSV export. Keys are ``gateway.core.keys``'; the bytes are the sealed batches' own."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Iterator

from django.conf import settings

from gateway.core.history import BatchRows, batch_rows
from gateway.core.keys import BadName, gateway_prefix, parse_object_key


def configured() -> bool:
    return bool(settings.FIELDGATE["S3_BUCKET"])


def _client():
    import boto3
    from botocore.config import Config

    config = settings.FIELDGATE
    return boto3.client(
        "s3",
        endpoint_url=config["S3_ENDPOINT_URL"] or None,
        config=Config(
            connect_timeout=10,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": 3},
            s3={"addressing_style": "path"} if config["S3_ENDPOINT_URL"] else {},
        ),
    )


def batch_keys(gateway: str, days: tuple[dt.date, dt.date]) -> list[tuple[str, bool]]:
    """The keys of the gateway's batches opened from the day before ``days[0]`` (a batch may
    run over midnight) to ``days[1]``, oldest first, each with whether it is gzipped; rejected
    lines and anything else under the prefix are left out. Raises what botocore raises."""
    config = settings.FIELDGATE
    head = gateway_prefix(config["S3_PREFIX"], gateway)
    client = _client()
    found = []
    day = days[0] - dt.timedelta(days=1)
    while day <= days[1]:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=config["S3_BUCKET"], Prefix=f"{head}{day:%Y/%m/%d}/"
        )
        for page in pages:
            for item in page.get("Contents", ()):
                try:
                    key = parse_object_key(item["Key"])
                except BadName:
                    continue
                found.append((key.batch.first_seq, item["Key"], key.gzip))
        day += dt.timedelta(days=1)
    return [(key, compressed) for _, key, compressed in sorted(found)]


def batches(keys: list[tuple[str, bool]]) -> Iterator[BatchRows]:
    """The batches of ``keys``, read one at a time."""
    client = _client()
    for key, compressed in keys:
        data = client.get_object(Bucket=settings.FIELDGATE["S3_BUCKET"], Key=key)["Body"].read()
        rows = batch_rows(gzip.decompress(data) if compressed else data)
        if rows is not None:
            yield rows
