"""Re-encrypt every stored secret under the first of CLM_ENCRYPTION_KEYS (after a new key was put in front)."""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from clm.base.crypto import EncryptedJSONField


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the newest key; then the older keys can be dropped."

    def handle(self, *args, **options) -> None:
        total = 0
        for model in apps.get_models():
            fields = [field.name for field in model._meta.fields if isinstance(field, EncryptedJSONField)]
            if not fields:
                continue
            with transaction.atomic():
                # Reading decrypts with any key; saving encrypts with the first.
                for row in model._default_manager.select_for_update().only("pk", *fields):
                    row.save(update_fields=fields)
                    total += 1
        self.stdout.write(f"Re-encrypted the secrets of {total} row(s) under the newest key.")
