from django.core.management.base import BaseCommand, CommandError

from web.settings import variables


class Command(BaseCommand):
    help = (
        "Serve the site (pages and websockets) with uvicorn on uvloop, the server we chose by "
        "measurement (docs/web.md). Several --workers need the central profile's Redis layer."
    )

    def add_arguments(self, parser):
        try:
            host, port, workers = (
                variables.value(f"FIELDGATE_WEB_{name}") for name in ("HOST", "PORT", "WORKERS")
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        parser.add_argument("--host", default=host)
        parser.add_argument("--port", type=int, default=port)
        parser.add_argument("--workers", type=int, default=workers)

    def handle(self, host, port, workers, **options):
        import uvicorn
        from django.conf import settings

        layer = settings.CHANNEL_LAYERS["default"]["BACKEND"]
        if workers > 1 and layer.endswith("InMemoryChannelLayer"):
            raise CommandError(
                "--workers above 1 needs a shared channel layer: use the central profile"
            )

        uvicorn.run(
            "web.asgi:application",
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            ws="websockets-sansio",
            ws_per_message_deflate=False,  # deflating per viewer costs fan-out dearly
            lifespan="off",
            log_level="warning",
        )
