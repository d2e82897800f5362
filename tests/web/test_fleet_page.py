"""The fleet page as the server renders it (no script runs here): formatted values, alert
badges, a rate sparkline; and the formatting rules themselves."""

import re
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as DjangoClient
from django.utils import timezone

from web.fleet import display, status
from web.fleet.models import Gateway

STATUS = {
    "reader": {"port_open": True, "storing": True, "counters": {"rows_rejected": 1234}},
    "sample_rate": 500.04,
    "disk_free": 12 * 1024**3 + 400 * 1024**2,
    "disk_total": 30 * 1024**3,
    "upload_backlog": {"batches": 3, "bytes": 3 * 1048576, "oldest_at": 1.0, "age_seconds": 720},
    "uploader": None,
}


def page_as_served(*gateways: Gateway) -> str:
    user = get_user_model().objects.create_user("ann", password="pw-of-ann-1234")
    client = DjangoClient(HTTP_HOST="localhost")
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def table_text(page: str) -> str:
    """The table's text as a browser without scripts shows it (tags out)."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def cell(page: str, name: str, css: str) -> str:
    row = page.split(f'<tr data-name="{name}"', 1)[1].split("</tr>", 1)[0]
    found = re.search(rf'<td class="{css}"[^>]*>(.*?)</td>', row, re.S)
    return re.sub(r"<[^>]+>", "", found[1]).strip()


def test_the_server_renders_every_value_formatted_and_no_python():
    gateway = Gateway.objects.create(name="pi-01", token_hash="x", connections=1)
    for rate in (None, 480.0, 500.04):
        status.save_status(gateway.pk, {**STATUS, "sample_rate": rate}, frames_in=0)
    Gateway.objects.create(name="pi-02", token_hash="x")  # never seen: nothing reported
    page = page_as_served()
    text = table_text(page)
    for python in ("{'", "'}", "None", "True", "False", "[", "]", "e+"):
        assert python not in text, (python, text)
    assert cell(page, "pi-01", "state") == "online"
    assert cell(page, "pi-01", "sample_rate") == "500 /s"
    assert cell(page, "pi-01", "rejects") == "1,234"
    assert cell(page, "pi-01", "disk_free") == "12 GiB (41%)"
    assert cell(page, "pi-01", "upload_backlog") == "3 batches (3 MiB), oldest 12 min"
    assert cell(page, "pi-01", "last_seen") == "just now"
    assert cell(page, "pi-02", "state") == "offline"
    assert cell(page, "pi-02", "last_seen") == "never"
    assert cell(page, "pi-02", "disk_free") == cell(page, "pi-02", "sample_rate") == "–"
    assert 'data-alert="offline"' in page.split('data-name="pi-02"', 1)[1].split("</tr>")[0]
    # The sparkline: the first heartbeat had no rate (the line starts at the second).
    spark = re.search(r'data-name="pi-01".*?<path d="([^"]*)"', page, re.S)[1]
    assert spark == "M40.0 1.6 L80.0 1.0"  # 17 - 16 * 480 / 500.04
    assert "1 online, 1 offline, 1 with a critical alert" in page


def test_a_gateway_seen_long_ago_shows_its_age_not_a_timestamp():
    Gateway.objects.create(
        name="pi-03", token_hash="x", last_seen=timezone.now() - timezone.timedelta(hours=3)
    )
    assert cell(page_as_served(), "pi-03", "last_seen") == "3 h ago"


def test_the_rate_history_is_bounded():
    gateway = Gateway.objects.create(name="pi-01", token_hash="x", connections=1)
    for n in range(display.RATE_HISTORY + 5):
        status.save_status(gateway.pk, {"sample_rate": float(n)}, frames_in=0)
    rates = Gateway.objects.get(pk=gateway.pk).rate_history
    assert len(rates) == display.RATE_HISTORY and rates[-1] == display.RATE_HISTORY + 4


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "–"),
        (True, "–"),
        (0, "0 MiB"),
        (5 * 1048576 + 1, "5 MiB"),
        (1536 * 1048576, "1.5 GiB"),
        (123 * 1024**3, "123 GiB"),
        (12_345 * 1024**3, "12,345 GiB"),
    ],
)
def test_sizes_read_as_people_read_them(value, text):
    assert display.size(value) == text


def test_backlog_rate_count_and_age():
    assert display.backlog({"batches": 0, "bytes": 0}) == "none"
    assert display.backlog({"batches": 1, "bytes": 1048576}) == "1 batch (1 MiB)"
    assert display.backlog({"batches": "3"}) == display.backlog(None) == "–"
    assert display.rate(1234.6) == "1,235 /s" and display.rate(None) == "–"
    assert display.count(12_000) == "12,000" and display.count(None) == "–"
    now = time.time()
    assert display.age(now - 0.5, now) == "just now"
    assert display.age(now - 45, now) == "45 s ago"
    assert display.age(now - 600, now) == "10 min ago"
    assert display.age(now - 3 * 86400, now) == "3 d ago"
    assert display.disk(5 * 1048576, 0) == "5 MiB"  # no total: no share


def test_a_sparkline_breaks_where_no_rate_came():
    assert display.sparkline([10.0, None, 10.0, 5.0], width=30, height=12) == (
        "M0.0 1.0 M20.0 1.0 L30.0 6.0"
    )
    assert display.sparkline([None, None]) == "" and display.sparkline([3.0]) == ""
