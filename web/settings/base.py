"""What both profiles share. Every ``FIELDGATE_WEB_*`` variable is declared in
``web/settings/variables.py`` with a default that suits a Raspberry Pi; the README has the table."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from gateway.logs import LogfmtFormatter, writes_to_journal
from web.settings import variables

WEB_DIR = Path(__file__).resolve().parent.parent


def setting(name: str):
    """A ``FIELDGATE_WEB_*`` variable's value (web/settings/variables.py declares each)."""
    try:
        return variables.value(name)
    except ValueError as error:
        raise ImproperlyConfigured(str(error)) from None


DATA_DIR = Path(setting("FIELDGATE_WEB_DATA_DIR"))


# A key made for this run when the data dir would not keep one: the worker processes this one
# starts inherit it, so they all sign sessions alike.
_RUN_KEY = "_FIELDGATE_WEB_SECRET_KEY_THIS_RUN"


def _secret_key() -> str:
    """FIELDGATE_WEB_SECRET_KEY, else one made on first start and kept in the data dir; never
    empty. A full or read-only data dir does not stop the site: the key of this run is kept in
    memory, and an error says what to free."""
    if setting("FIELDGATE_WEB_SECRET_KEY"):
        return setting("FIELDGATE_WEB_SECRET_KEY")
    path = DATA_DIR / "secret_key"
    try:
        return _read_key(path) or _save_new_key(path)
    except OSError as error:
        key = os.environ.get(_RUN_KEY) or secrets.token_urlsafe(50)
        os.environ[_RUN_KEY] = key
        _log_error(
            "secret_key_not_saved",
            path=str(path),
            error=str(error),
            hint=f"free space on {DATA_DIR}'s disk or make it writable (or set "
            "FIELDGATE_WEB_SECRET_KEY); until then a key made for this run signs sessions, "
            "and everyone must log in again after a restart",
        )
        return key


def _read_key(path: Path) -> str:
    """The saved key, or "" when there is none (an empty file an older version left on a
    full disk counts as none)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _save_new_key(path: Path) -> str:
    """Make a key and save it atomically: a whole, fsynced file is linked into place, so two
    workers starting at once agree on the first, and no reader ever sees it half written."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(part, path)
        except FileExistsError:  # another worker's, or an empty one left by an older version
            if _read_key(path):
                return _read_key(path)
            os.replace(part, path)
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        try:
            part.unlink(missing_ok=True)
        except OSError:
            pass
    return _read_key(path) or key


def _log_error(event: str, **fields: str) -> None:
    """Log before Django has set up logging (settings are read first), as the site logs."""
    record = logging.LogRecord("web.settings", logging.ERROR, __file__, 0, event, None, None)
    record.fields = fields
    journal = writes_to_journal(sys.stderr)
    sys.stderr.write(LogfmtFormatter(with_time=not journal, journal=journal).format(record) + "\n")


SECRET_KEY = _secret_key()
DEBUG = setting("FIELDGATE_WEB_DEBUG")
_host = socket.gethostname()
# The viewer sockets check Origin against these hosts, so "*" would turn that check off.
ALLOWED_HOSTS = list(
    setting("FIELDGATE_WEB_ALLOWED_HOSTS")
    or ["localhost", "127.0.0.1", "[::1]", _host, f"{_host}.local"]
)
CSRF_TRUSTED_ORIGINS = list(setting("FIELDGATE_WEB_CSRF_TRUSTED_ORIGINS"))

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
    "web.security.csp.ContentSecurityPolicyMiddleware",
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
# The login form counts failures per client address and per account name (web/security/):
# over either limit it answers 429, whatever the password, until the window has passed.
LOGIN_FAILURES_PER_CLIENT = setting("FIELDGATE_WEB_LOGIN_FAILURES_PER_CLIENT")
LOGIN_FAILURES_PER_ACCOUNT = setting("FIELDGATE_WEB_LOGIN_FAILURES_PER_ACCOUNT")
LOGIN_FAILURE_WINDOW_SECONDS = setting("FIELDGATE_WEB_LOGIN_FAILURE_WINDOW_SECONDS")

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
        "web": {"handlers": ["stderr"], "level": setting("FIELDGATE_WEB_LOG_LEVEL").upper()},
        # Every server error (a 500) with its traceback: without this Django logs them nowhere
        # unless DEBUG is on.
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
    },
}

# The live stream (docs/stream-protocol.md).
FIELDGATE = {
    # Largest ingest message; bigger ones close the socket with 4413 (and are counted).
    "MAX_MESSAGE_BYTES": setting("FIELDGATE_WEB_MAX_MESSAGE_BYTES"),
    # Messages a viewer may have unacknowledged before the server holds back (flow control).
    "VIEWER_WINDOW": setting("FIELDGATE_WEB_VIEWER_WINDOW"),
    # Newest frames kept for a viewer that is held back; older ones are dropped and counted.
    "VIEWER_PENDING": setting("FIELDGATE_WEB_VIEWER_PENDING"),
    # A viewer acknowledges every this many messages.
    "VIEWER_ACK_EVERY": setting("FIELDGATE_WEB_VIEWER_ACK_EVERY"),
    # A gateway with no message for this long shows as offline.
    "OFFLINE_AFTER_SECONDS": setting("FIELDGATE_WEB_OFFLINE_AFTER_SECONDS"),
    # An open ingest socket checks this often that its token is still valid (revoked or
    # rotated: it closes with 4410 or 4403). The central profile also closes them at once.
    "TOKEN_CHECK_SECONDS": setting("FIELDGATE_WEB_TOKEN_CHECK_SECONDS"),
    # An open live view renews its watch of the gateway this often; a gateway nobody has
    # watched for WATCH_LEASES of these is told to pause its frames (docs/stream-protocol.md).
    "WATCH_SECONDS": setting("FIELDGATE_WEB_WATCH_SECONDS"),
    # The GATEWAY_DATA_DIR of the gateway this site runs on: its batches are the live view's
    # history and the CSV export (web/live/history.py). Empty: neither is served.
    "GATEWAY_DATA_DIR": setting("FIELDGATE_WEB_GATEWAY_DATA_DIR"),
    # The bucket the gateways' uploaders write to (their GATEWAY_S3_*): the central site's CSV
    # export reads their batches there (web/live/s3batches.py). Empty: no export from S3.
    "S3_BUCKET": setting("FIELDGATE_WEB_S3_BUCKET"),
    "S3_PREFIX": setting("FIELDGATE_WEB_S3_PREFIX"),
    "S3_ENDPOINT_URL": setting("FIELDGATE_WEB_S3_ENDPOINT_URL"),
}

# -- Behind TLS (the central profile; docs/web.md, "TLS") -------------------------------------
# FIELDGATE_WEB_HTTPS=1: the site is only reached over https (directly or through a proxy):
# cookies only over TLS, http redirected to https. HSTS is separate and off by default: a
# browser that saw it refuses plain http for that long, so an operator turns it on knowingly.
HTTPS = setting("FIELDGATE_WEB_HTTPS")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = HTTPS
# Probes and scrapers reach a worker directly over http (a load balancer's health check,
# Prometheus on 127.0.0.1): a redirect to https would fail them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = setting("FIELDGATE_WEB_HSTS_SECONDS")
SECURE_HSTS_INCLUDE_SUBDOMAINS = setting("FIELDGATE_WEB_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = setting("FIELDGATE_WEB_HSTS_PRELOAD")
# FIELDGATE_WEB_TLS_PROXY=1: a proxy terminates TLS and says so in X-Forwarded-Proto (it must
# set or strip that header on every request, or a client could claim https itself).
TLS_PROXY = setting("FIELDGATE_WEB_TLS_PROXY")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TLS_PROXY else None
# Every page says where its scripts, styles, images and sockets may come from: this site only
# (the chart library is vendored; no inline script or style). 'self' covers ws:/wss: to the
# same host and port.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

# Rate limits' counters (web/security/limits.py): the cache "limits", shared by every worker in
# the central profile (Redis), in memory in the gateway profile. Each profile sets CACHES.
INGEST_FAILURES_PER_CLIENT = setting("FIELDGATE_WEB_INGEST_FAILURES_PER_CLIENT")
INGEST_FAILURE_WINDOW_SECONDS = setting("FIELDGATE_WEB_INGEST_FAILURE_WINDOW_SECONDS")

# /metrics: with a token, only requests bearing it; without, only this host's (not proxied).
FIELDGATE_METRICS_TOKEN = setting("FIELDGATE_WEB_METRICS_TOKEN")
