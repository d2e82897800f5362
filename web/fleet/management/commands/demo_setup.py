from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from web.fleet.models import Gateway
from web.fleet.tokens import hash_token


class Command(BaseCommand):
    help = (
        "Create (or reset) a demo gateway with a known token and a demo login. Idempotent: "
        "run it before every demo. Not for production: the token is on the command line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--gateway", default="demo", help="gateway name (GATEWAY_ID)")
        parser.add_argument("--token", required=True, help="its ingest token")
        parser.add_argument("--user", default="demo")
        parser.add_argument("--password", required=True)
        parser.add_argument(
            "--more",
            action="append",
            default=[],
            metavar="NAME=TOKEN",
            help="another gateway and its token (repeat for several)",
        )

    def handle(self, gateway, token, user, password, more, **options):
        gateways = {gateway: token}
        for pair in more:
            name, _, other = pair.partition("=")
            gateways[name] = other
        for name, secret in gateways.items():
            if len(secret) < 16:
                raise CommandError(f"the token of {name!r}: use at least 16 characters")
        call_command("migrate", verbosity=0, interactive=False)
        for name, secret in gateways.items():
            record, _ = Gateway.objects.get_or_create(name=name)
            record.token_hash = hash_token(secret)
            record.revoked = False
            record.full_clean()
            record.save()
        users = get_user_model()
        person, _ = users.objects.get_or_create(username=user)
        person.set_password(password)
        person.is_active = True
        person.save()
        self.stdout.write(f"gateway {', '.join(gateways)} and user {user} ready")
