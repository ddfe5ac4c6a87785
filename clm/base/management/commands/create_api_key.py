from django.core.management.base import BaseCommand, CommandError

from clm.base.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a REST client; the key is printed once, as the last line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="who or what uses the key, e.g. 'shop backend'")
        parser.add_argument("--scopes", default="read", help="comma-separated: read, write, admin (default: read)")

    def handle(self, *args, name: str, scopes: str, **options) -> None:
        wanted = {scope.strip() for scope in scopes.split(",") if scope.strip()}
        try:
            api_key, key = api_key_create(name=name, scopes=wanted)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Created API key {api_key.prefix} '{name}' with scopes {', '.join(api_key.scopes)}.")
        self.stderr.write("Store it now; it cannot be shown again. Send it as 'Authorization: Api-Key <key>'.")
        self.stdout.write(key)
