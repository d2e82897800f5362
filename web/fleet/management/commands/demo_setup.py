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

    def handle(self, gateway, token, user, password, **options):
        if len(token) < 16:
            raise CommandError("--token: use at least 16 characters")
        call_command("migrate", verbosity=0, interactive=False)
        record, _ = Gateway.objects.get_or_create(name=gateway)
        record.token_hash = hash_token(token)
        record.revoked = False
        record.full_clean()
        record.save()
        users = get_user_model()
        person, _ = users.objects.get_or_create(username=user)
        person.set_password(password)
        person.is_active = True
        person.save()
        self.stdout.write(f"gateway {gateway} and user {user} ready")
