"""Secrets at rest (shop credentials, webhook secrets): encrypted with Fernet under keys from the environment.

`CLM_ENCRYPTION_KEYS` lists Fernet keys, newest first: values are encrypted with the first and decrypted with any,
so a key is rotated by putting a new one in front, running `manage.py encryption_rotate`, then dropping the old.
A value read back is never shown again in a page or an answer; forms only replace it.
"""

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


def encryption_keys() -> list[str]:
    """The configured keys (settings derive one from SECRET_KEY for local development with DEBUG)."""
    return list(settings.CLM_ENCRYPTION_KEYS)


def _fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in encryption_keys()])
    except ValueError as exc:
        raise ImproperlyConfigured(f"CLM_ENCRYPTION_KEYS holds a key that is not a Fernet key: {exc}") from None


def secret_encrypt(value: Any) -> str:
    return _fernet().encrypt(json.dumps(value).encode()).decode()


def secret_decrypt(token: str) -> Any:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with CLM_ENCRYPTION_KEYS: was the key that encrypted it removed?"
        ) from None


def secret_rotate(token: str) -> str:
    """The same value encrypted under the first key."""
    return _fernet().rotate(token.encode()).decode()


class EncryptedJSONField(models.TextField):
    """A JSON value stored encrypted; the database holds only the Fernet token."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else secret_decrypt(value)

    def get_prep_value(self, value: Any) -> str | None:
        return None if value is None else secret_encrypt(value)

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: models.Model) -> str:
        return ""  # serialisation (dumpdata, history) never carries the secret
