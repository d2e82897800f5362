from django.core.management.base import BaseCommand, CommandError

from web.fleet.models import Gateway


class Command(BaseCommand):
    help = "Refuse a gateway's token from now on (its sockets close with 4410 on reconnect)."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, name, **options):
        if not Gateway.objects.filter(name=name).update(revoked=True):
            raise CommandError(f"no gateway {name!r}")
        self.stdout.write(f"revoked {name}")
