"""/gateways/<name>/history.json and export.csv over the gateway's own batches (written by the
real BatchStore), through Django's test client."""

import asyncio
import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as DjangoClient
from django.test import override_settings

from gateway.core.batching import BatchPolicy
from gateway.store.batchstore import BatchStore
from gateway.store.layout import DataDir
from gateway.store.ledgers import Identity, write_identity
from web.fleet.models import Gateway

START = 1_764_500_000.0  # 2025-11-30T10:53:20Z


@pytest.fixture
def data_dir(tmp_path):
    """gw1's data dir: 3000 rows at 500/s (6 s) in batches of 1000, the last 500 still open,
    and 250 lines lost by the device (its counter skips) at row 2000."""
    data_dir = DataDir(tmp_path / "data")
    store = BatchStore(data_dir, BatchPolicy(1000, 1 << 30, 3600))
    store.recover()
    store.use_columns(("n", "t", "a", "b"), START)
    for start in range(0, 3000, 50):
        n = start + (250 if start >= 2000 else 0)
        records = [b"%d,%.3f,%d,-1" % (k, k / 500, k % 9) for k in range(n, n + 50)]
        store.append(records, START + start / 500, START)
    write_identity(data_dir, Identity("gw1", "/dev/ttyUSB0", "csv-seq"))
    Gateway.objects.create(name="gw1", token_hash="x")
    with override_settings(FIELDGATE={**_fieldgate(), "GATEWAY_DATA_DIR": str(data_dir.root)}):
        yield data_dir


def _fieldgate():
    from django.conf import settings

    return dict(settings.FIELDGATE)


async def body(response) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


def client():
    user = get_user_model().objects.create_user("ann", password="pw-of-ann-1234")
    found = DjangoClient(HTTP_HOST="localhost")
    found.force_login(user)
    return found


def test_history_reaches_the_live_edge_with_the_device_gap_in_it(data_dir):
    response = client().get("/gateways/gw1/history.json", {"before_seq": 2800, "seconds": 10})
    assert response.status_code == 200
    found = response.json()
    assert (found["first_seq"], found["last_seq"], found["exhausted"]) == (0, 2799, True)
    seqs = [s for f in found["frames"] for s in range(f["seq"][0], f["seq"][1] + 1)]
    assert seqs == list(range(2800))  # every row, up to the joint with the live view
    assert [f["gap"] for f in found["frames"] if "gap" in f] == [{"device_lines": 250}]


def test_export_is_the_rows_received_in_the_range_as_stored(data_dir):
    response = client().get(
        "/gateways/gw1/export.csv", {"from": START + 1.0, "to": "2025-11-30T10:53:23+00:00"}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="gw1-20251130T105321Z.csv"'
    lines = asyncio.run(body(response)).decode().splitlines()
    assert lines[0] == "seq,received_at,n,t,a,b"
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(500, 1500))
    assert lines[1] == "500,1764500001.000000,500,1.000,5,-1"


@pytest.mark.parametrize(
    ("path", "query", "status", "error"),
    [
        ("history.json", {"seconds": "x"}, 400, "seconds must be a number, got 'x'"),
        ("history.json", {"seconds": 7200}, 400, "seconds must be in (0, 3600]"),
        ("export.csv", {"from": 10, "to": 5}, 400, "'to' must come after 'from'"),
        ("export.csv", {"from": "noon", "to": 5}, 400, "from must be Unix seconds or a date"),
        ("export.csv", {"from": 0, "to": 90000}, 400, "at most 24 hours per download"),
    ],
)
def test_bad_requests_are_refused_with_the_reason_and_logged(
    data_dir, caplog, path, query, status, error
):
    response = client().get(f"/gateways/gw1/{path}", query)
    assert response.status_code == status
    assert response.json()["error"].startswith(error)
    (record,) = [r for r in caplog.records if r.getMessage() == "history_refused"]
    assert record.levelname == "WARNING"
    assert record.fields["gateway"] == "gw1" and record.fields["error"].startswith(error)


def test_without_the_gateway_s_data_dir_the_site_says_where_history_is_served():
    Gateway.objects.create(name="gw1", token_hash="x")
    response = client().get("/gateways/gw1/history.json")
    assert response.status_code == 404
    assert "FIELDGATE_WEB_GATEWAY_DATA_DIR" in response.json()["error"]


def test_a_data_dir_the_site_cannot_read_is_a_503_that_says_why(tmp_path, caplog):
    Gateway.objects.create(name="gw1", token_hash="x")
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("")  # reading state/identity.json below it fails as EACCES would
    with override_settings(FIELDGATE={**_fieldgate(), "GATEWAY_DATA_DIR": str(not_a_dir)}):
        response = client().get("/gateways/gw1/history.json")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error.startswith(f"cannot read FIELDGATE_WEB_GATEWAY_DATA_DIR={not_a_dir} (Not a dir")
    (logged,) = [r for r in caplog.records if r.getMessage() == "history_refused"]
    assert logged.levelname == "WARNING" and logged.fields["status"] == 503


def test_another_gateway_s_batches_are_not_served_as_this_one_s(data_dir):
    Gateway.objects.create(name="gw2", token_hash="x")
    response = client().get("/gateways/gw2/history.json")
    assert response.status_code == 404
    assert response.json()["error"].startswith("this site holds the batches of gw1, not gw2")


def test_history_and_export_need_a_login(data_dir):
    for path in ("history.json", "export.csv"):
        response = DjangoClient(HTTP_HOST="localhost").get(f"/gateways/gw1/{path}")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_central_site_exports_from_the_bucket_the_uploaders_write_to(tmp_path, monkeypatch):
    import gzip

    from gateway.core.keys import BatchName, object_key, rejected_lines_key
    from gateway.supervise import Supervisor
    from gateway.supervise.chain import LocalS3
    from tests.support.s3 import CREDENTIALS

    day = dt.date(2025, 11, 30)
    header = b"seq,received_at,n,t,a\n"
    first = header + b"".join(b"%d,%.6f,%d,%.3f,1\n" % (s, START + s, s, s) for s in range(10))
    second = header + b"".join(b"%d,%.6f,%d,%.3f,2\n" % (s, START + s, s, s) for s in range(10, 20))
    Gateway.objects.create(name="gw1", token_hash="x")
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    with Supervisor(tmp_path / "s3") as supervisor:
        s3 = LocalS3(supervisor, "central-bucket", CREDENTIALS)
        put = s3.client.put_object
        put(Bucket=s3.bucket, Key=object_key("raw", "gw1", BatchName(day, 0, 9), gzip=True),
            Body=gzip.compress(first))  # fmt: skip
        put(Bucket=s3.bucket, Key=object_key("raw", "gw1", BatchName(day, 10, 19), gzip=False),
            Body=second)  # fmt: skip
        put(
            Bucket=s3.bucket, Key=rejected_lines_key("raw", "gw1", "2025/11/30/1.jsonl"), Body=b"{}"
        )
        put(Bucket=s3.bucket, Key=object_key("raw", "gw2", BatchName(day, 0, 9), gzip=False),
            Body=header + b"0,1764500000.0,0,0,9\n")  # fmt: skip
        bucket = {"S3_BUCKET": s3.bucket, "S3_PREFIX": "raw", "S3_ENDPOINT_URL": s3.url}
        with override_settings(FIELDGATE={**_fieldgate(), **bucket}):
            response = client().get(
                "/gateways/gw1/export.csv", {"from": START + 5, "to": START + 15}
            )
            assert response.status_code == 200
            lines = asyncio.run(body(response)).decode().splitlines()
            page = DjangoClient(HTTP_HOST="localhost")
            page.force_login(get_user_model().objects.get(username="ann"))
            html = page.get("/gateways/gw1/").content.decode()
        with override_settings(
            FIELDGATE={**_fieldgate(), **bucket, "S3_ENDPOINT_URL": "http://127.0.0.1:9"}
        ):
            unreachable = DjangoClient(HTTP_HOST="localhost")
            unreachable.force_login(get_user_model().objects.get(username="ann"))
            refused = unreachable.get("/gateways/gw1/export.csv", {"from": START, "to": START + 1})
    assert lines[0] == "seq,received_at,n,t,a"
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(5, 15))  # both objects
    assert 'id="export"' in html and 'id="history"' not in html  # export, no history, here
    assert refused.status_code == 502
    assert refused.json()["error"].startswith("the bucket could not be listed:")
