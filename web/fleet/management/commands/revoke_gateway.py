from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from web.fleet.models import Gateway
from web.fleet.status import tell_open_sockets


class Command(BaseCommand):
    help = (
        "Refuse a gateway's token from now on: its open sockets close with 4410 within "
        "FIELDGATE_WEB_TOKEN_CHECK_SECONDS (at once on the central profile), new ones too."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, name, **options):
        if not Gateway.objects.filter(name=name).update(revoked=True):
            raise CommandError(f"no gateway {name!r}")
        self.stdout.write(f"revoked {name}")
        not_told = tell_open_sockets(name)
        if not_told:
            seconds = settings.FIELDGATE["TOKEN_CHECK_SECONDS"]
            self.stdout.write(f"its open sockets close within {seconds} s ({not_told})")
