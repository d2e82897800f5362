"""What both profiles share. Every ``FIELDGATE_WEB_*`` variable read here has a default that
suits a Raspberry Pi; docs/web.md has the table."""

from __future__ import annotations

import os
import secrets
import socket
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

WEB_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    text = os.environ.get(name, str(default))
    try:
        value = int(text)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={text!r}: expected a whole number") from None
    if value <= 0:
        raise ImproperlyConfigured(f"{name}={value}: expected a value above 0")
    return value


def env_bool(name: str, default: bool) -> bool:
    text = os.environ.get(name, "1" if default else "0").strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name}={text!r}: expected 1/0, true/false, yes/no or on/off")


def env_list(name: str, default: list[str]) -> list[str]:
    if name not in os.environ:
        return default
    return [item.strip() for item in os.environ[name].split(",") if item.strip()]


DATA_DIR = Path(env("FIELDGATE_WEB_DATA_DIR", "/var/lib/fieldgate-web"))


def _secret_key() -> str:
    """FIELDGATE_WEB_SECRET_KEY, else one made on first start and kept in the data dir."""
    if os.environ.get("FIELDGATE_WEB_SECRET_KEY"):
        return os.environ["FIELDGATE_WEB_SECRET_KEY"]
    path = DATA_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        with open(path, "x") as file:  # two workers starting at once: the first one wins
            file.write(key)
        path.chmod(0o600)
    except FileExistsError:
        key = path.read_text().strip()
    return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("FIELDGATE_WEB_DEBUG", False)
_host = socket.gethostname()
# The viewer sockets check Origin against these hosts, so "*" would turn that check off.
ALLOWED_HOSTS = env_list(
    "FIELDGATE_WEB_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", _host, f"{_host}.local"]
)
CSRF_TRUSTED_ORIGINS = env_list("FIELDGATE_WEB_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "web.fleet",
    "web.ingest",
    "web.live",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "web.urls"
ASGI_APPLICATION = "web.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [WEB_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "fleet:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Static files, the chart library (uPlot, web/static/vendor/) included, served by WhiteNoise
# straight from the finders: gateways are often offline, so nothing comes from a CDN, and the
# installed package carries everything it serves.
STATIC_URL = "static/"
STATIC_ROOT = None  # no collectstatic step: WhiteNoise serves from the finders
STATICFILES_DIRS = [WEB_DIR / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# WhiteNoise hands Django a file iterator; under ASGI Django reads it in a thread and warns each
# time. A handful of small files, cached by the browser: the warning says nothing useful here.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"logfmt": {"()": "gateway.logs.LogfmtFormatter", "with_time": True}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "logfmt"}},
    "loggers": {
        "web": {"handlers": ["stderr"], "level": env("FIELDGATE_WEB_LOG_LEVEL", "info").upper()},
    },
}

# The live stream (docs/stream-protocol.md).
FIELDGATE = {
    # Largest ingest message; bigger ones close the socket with 4413 (and are counted).
    "MAX_MESSAGE_BYTES": env_int("FIELDGATE_WEB_MAX_MESSAGE_BYTES", 256 * 1024),
    # Messages a viewer may have unacknowledged before the server holds back (flow control).
    "VIEWER_WINDOW": env_int("FIELDGATE_WEB_VIEWER_WINDOW", 64),
    # Newest frames kept for a viewer that is held back; older ones are dropped and counted.
    "VIEWER_PENDING": env_int("FIELDGATE_WEB_VIEWER_PENDING", 8),
    # A viewer acknowledges every this many messages.
    "VIEWER_ACK_EVERY": env_int("FIELDGATE_WEB_VIEWER_ACK_EVERY", 8),
    # A gateway with no message for this long shows as offline.
    "OFFLINE_AFTER_SECONDS": env_int("FIELDGATE_WEB_OFFLINE_AFTER_SECONDS", 20),
}

# /metrics: with a token, only requests bearing it; without, only this host's (not proxied).
FIELDGATE_METRICS_TOKEN = env("FIELDGATE_WEB_METRICS_TOKEN", "")
