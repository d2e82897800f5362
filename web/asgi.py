"""ASGI entry point: HTTP pages through Django, websockets through Channels.

Serve it with ``python web/manage.py serve`` (uvicorn with uvloop; docs/web.md says why).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings.gateway")
django_asgi = get_asgi_application()  # sets Django up before the consumers are imported

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from web.ingest.consumers import IngestConsumer, RemembersRefusals  # noqa: E402
from web.live.consumers import FleetConsumer, ViewerConsumer  # noqa: E402
from web.security.origin import SameOriginValidator  # noqa: E402


def for_people(consumer):
    """Session login, and Origin must be the site's own (scheme, host and port; a page
    elsewhere cannot ride a logged-in browser's cookie). Gateways send no Origin: their token
    is their check."""
    return SameOriginValidator(AuthMiddlewareStack(consumer.as_asgi()))


application = ProtocolTypeRouter(
    {
        "http": django_asgi,
        "websocket": URLRouter(
            [
                path("ws/ingest/", RemembersRefusals(IngestConsumer.as_asgi())),
                path("ws/live/<str:name>/", for_people(ViewerConsumer)),
                path("ws/fleet/", for_people(FleetConsumer)),
            ]
        ),
    }
)
