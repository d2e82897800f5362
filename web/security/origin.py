"""People's sockets must come from a page of this site: ``Origin`` equal to the site's own
origin (scheme, host and port of the request) or one of ``CSRF_TRUSTED_ORIGINS``, and the
host among ``ALLOWED_HOSTS``; Django's CSRF check asks the same of a form's POST.

Channels' ``AllowedHostsOriginValidator`` compares the Origin's host with ``ALLOWED_HOSTS``
and ignores its port and scheme, so a page on another port of the same host (another service
on the gateway) could open a logged-in person's sockets. This wraps Channels' own denial
(``WebsocketDenier``: the handshake is refused with 403), with the comparison in
gateway/core/origins.py.
"""

from __future__ import annotations

import logging

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from gateway.core.origins import origin_allowed, own_origin
from gateway.logs import log_event
from web.fleet import counters

log = logging.getLogger("web.security")


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def secure(scope) -> bool:
    """Whether the browser reached the site over TLS: the server says so (``wss``), or the
    TLS proxy named by ``SECURE_PROXY_SSL_HEADER`` does."""
    if scope.get("scheme") in ("wss", "https"):
        return True
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header:
        name = proxy_header[0].removeprefix("HTTP_").lower().replace("_", "-").encode()
        sent = header(scope, name)
        return sent is not None and sent.split(",")[0].strip() == proxy_header[1]
    return False


class SameOriginValidator:
    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        origin, host = header(scope, b"origin"), header(scope, b"host")
        domain, _ = split_domain_port(host or "")
        allowed = validate_host(domain, settings.ALLOWED_HOSTS) and origin_allowed(
            origin, secure(scope), host, tuple(settings.CSRF_TRUSTED_ORIGINS)
        )
        if allowed:
            return await self.application(scope, receive, send)
        counters.COUNTERS.add(counters.VIEWER_REFUSED_ORIGIN)
        expected = own_origin(secure(scope), host)
        log_event(
            log,
            logging.WARNING,
            "viewer_refused",
            path=scope.get("path"),
            origin=(origin or "(none)")[:100],
            expected=str(expected) if expected else "(no usable Host)",
            hint="a page of another origin (scheme, host or port) tried a logged-in socket; "
            "if it is this site behind a proxy, add its public origin to "
            "FIELDGATE_WEB_CSRF_TRUSTED_ORIGINS and its host to FIELDGATE_WEB_ALLOWED_HOSTS",
        )
        return await WebsocketDenier()(scope, receive, send)
