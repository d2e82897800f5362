"""A central server for many gateways: PostgreSQL, the Redis channel layer, several ASGI
worker processes (each started like the gateway profile's one, behind a proxy or on ports)."""

from web.settings.base import *  # noqa: F403
from web.settings.base import setting

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": setting("FIELDGATE_WEB_DB_NAME"),
        "USER": setting("FIELDGATE_WEB_DB_USER"),
        "PASSWORD": setting("FIELDGATE_WEB_DB_PASSWORD"),
        "HOST": setting("FIELDGATE_WEB_DB_HOST"),
        "PORT": setting("FIELDGATE_WEB_DB_PORT"),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        # A server that does not answer fails /healthz (and requests) in seconds.
        "OPTIONS": {"connect_timeout": 3},
    }
}

REDIS_URL = setting("FIELDGATE_WEB_REDIS_URL")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s socket timeout by default, exactly as long as the
            # layer's blocking pop waits for a consumer's next message: an idle socket's read
            # timed out and killed its consumer (no disconnect(), the socket dropped) every
            # few seconds. A longer timeout still ends reads from a hung Redis.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "capacity": setting("FIELDGATE_WEB_LAYER_CAPACITY"),
            "expiry": 10,
        },
    }
}

# The site's counters (web/fleet/counters.py), summed over the workers with Redis' atomic
# INCRBY; keys "fieldgate:1:<name>" beside the channel layer's "asgi:..." ones.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "counters": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "fieldgate",
        "TIMEOUT": None,
        # A Redis that hangs fails /metrics and the flush in seconds instead of holding them.
        "OPTIONS": {"socket_timeout": 3, "socket_connect_timeout": 3},
    },
    # Rate limits (web/security/limits.py): every worker counts a client's failures together.
    "limits": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "fieldgate-limits",
        "OPTIONS": {"socket_timeout": 3, "socket_connect_timeout": 3},
    },
}
