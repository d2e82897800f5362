"""Django for the consumer tests: the gateway profile on a fresh SQLite file per session."""

import os
import tempfile

import pytest

_DATA_DIR = tempfile.mkdtemp(prefix="fieldgate-web-test-")
os.environ["DJANGO_SETTINGS_MODULE"] = "web.settings.gateway"
os.environ["FIELDGATE_WEB_DATA_DIR"] = _DATA_DIR
os.environ["FIELDGATE_WEB_SECRET_KEY"] = "consumer-tests-secret-key-0123456789-abcdefghij"

import django  # noqa: E402

django.setup()


@pytest.fixture(scope="session", autouse=True)
def database():
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    yield
    import shutil

    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def clean_state():
    """Empty tables, a fresh channel layer (its queues belong to one event loop), counters and
    no viewer left over: a socket the site closed itself (a rejected viewer) is never told of
    its disconnect by the communicator, as a real server would tell it."""
    from channels.layers import channel_layers
    from django.contrib.auth import get_user_model

    from web.fleet.counters import COUNTERS
    from web.fleet.models import Gateway
    from web.live import local

    Gateway.objects.all().delete()
    get_user_model().objects.all().delete()
    channel_layers.backends.clear()
    COUNTERS.clear()
    local.VIEWERS.clear()
    yield
    channel_layers.backends.clear()
