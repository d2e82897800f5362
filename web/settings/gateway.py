"""The embedded default: one process on the gateway, SQLite, the in-memory channel layer."""

from web.settings.base import *  # noqa: F403
from web.settings.base import DATA_DIR, setting

DATA_DIR.mkdir(parents=True, exist_ok=True)  # SQLite creates its file, not the folder

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": setting("FIELDGATE_WEB_SQLITE_PATH") or str(DATA_DIR / "web.sqlite3"),
        # WAL: the ingest socket writes status while pages read.
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 10},
    }
}

# One process, so groups can live in memory. Its capacity only bounds each channel's inbox;
# the viewer consumer empties its inbox at once and does its own bounded, counted dropping.
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 200}}
}

# The site's counters (web/fleet/counters.py): one process, so in memory; never on the SD card.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "counters": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "fieldgate-counters",
        "TIMEOUT": None,
    },
    "limits": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "fieldgate-limits",
        "OPTIONS": {"MAX_ENTRIES": 10000},
    },
}
