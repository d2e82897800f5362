"""A central server for many gateways: PostgreSQL, the Redis channel layer, several ASGI
worker processes (each started like the gateway profile's one, behind a proxy or on ports)."""

from web.settings.base import *  # noqa: F403
from web.settings.base import env, env_int

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": env("FIELDGATE_WEB_DB_NAME", "fieldgate"),
        "USER": env("FIELDGATE_WEB_DB_USER", "fieldgate"),
        "PASSWORD": env("FIELDGATE_WEB_DB_PASSWORD", ""),
        "HOST": env("FIELDGATE_WEB_DB_HOST", "127.0.0.1"),
        "PORT": env("FIELDGATE_WEB_DB_PORT", "5432"),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [env("FIELDGATE_WEB_REDIS_URL", "redis://127.0.0.1:6379/0")],
            "capacity": env_int("FIELDGATE_WEB_LAYER_CAPACITY", 200),
            "expiry": 10,
        },
    }
}
