"""Whether a browser's ``Origin`` is the site's own: scheme, host and port, as RFC 6454
compares origins (``http://gw.local`` and ``http://gw.local:8080`` are two origins, a page on
one must not drive the other's sockets). Pure: the caller passes the headers and settings.
"""

from __future__ import annotations

import re
from typing import NamedTuple

DEFAULT_PORTS = {"http": 80, "https": 443}
# The serialisation browsers send: scheme "://" host [":" port], no path, user or query.
_ORIGIN = re.compile(
    r"(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s/:?#@\[\]]+)(?::(?P<port>[0-9]{1,5}))?"
)
_HOST = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s/:?#@\[\]]+)(?::(?P<port>[0-9]{1,5}))?")


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        default = DEFAULT_PORTS[self.scheme] == self.port
        return f"{self.scheme}://{self.host}" + ("" if default else f":{self.port}")


def parse_origin(text: str | None) -> Origin | None:
    """``Origin`` from ``scheme://host[:port]``; None for anything else ("null" included)."""
    match = _ORIGIN.fullmatch((text or "").strip().lower())
    if match is None:
        return None
    port = int(match["port"]) if match["port"] else DEFAULT_PORTS[match["scheme"]]
    return Origin(match["scheme"], match["host"].rstrip("."), port) if port <= 65535 else None


def own_origin(secure: bool, host_header: str | None) -> Origin | None:
    """The origin a page of this site has when the browser asked for ``Host: host_header``
    over https (``secure``) or http; None without a usable Host."""
    match = _HOST.fullmatch((host_header or "").strip().lower())
    if match is None:
        return None
    scheme = "https" if secure else "http"
    port = int(match["port"]) if match["port"] else DEFAULT_PORTS[scheme]
    return Origin(scheme, match["host"].rstrip("."), port) if port <= 65535 else None


def origin_allowed(
    origin: str | None, secure: bool, host_header: str | None, trusted: tuple[str, ...] = ()
) -> bool:
    """Whether a socket opened by a page of ``origin`` may proceed: the origin is the one the
    browser reached (scheme, host and port of ``Host``), or one of ``trusted`` (full origins,
    as Django's ``CSRF_TRUSTED_ORIGINS``, e.g. the public address of a TLS proxy)."""
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    if parsed == own_origin(secure, host_header):
        return True
    return any(parsed == parse_origin(other) for other in trusted)
