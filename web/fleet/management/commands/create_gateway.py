from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from web.fleet.models import Gateway
from web.fleet.status import tell_open_sockets
from web.fleet.tokens import hash_token, new_token


class Command(BaseCommand):
    help = (
        "Register a gateway and print its ingest token (shown this once; only its hash is "
        "kept). Set it as GATEWAY_STREAM_TOKEN on the gateway, with GATEWAY_ID=NAME."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the gateway's GATEWAY_ID")
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="the gateway exists: give it a new token (the old one stops working)",
        )

    def handle(self, name, rotate, **options):
        gateway = Gateway.objects.filter(name=name).first()
        if gateway is not None and not rotate:
            raise CommandError(f"gateway {name!r} exists; --rotate gives it a new token")
        if gateway is None and rotate:
            raise CommandError(f"no gateway {name!r} to rotate")
        token = new_token()
        gateway = gateway or Gateway(name=name)
        gateway.token_hash = hash_token(token)
        gateway.revoked = False
        try:
            gateway.full_clean()
        except ValidationError as error:
            raise CommandError(f"gateway name {name!r}: {'; '.join(error.messages)}") from None
        gateway.save()
        self.stdout.write(token)
        if rotate:
            tell_open_sockets(name)  # sockets on the old token close (else at their next check)
