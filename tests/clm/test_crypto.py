"""Secrets at rest: the database holds only ciphertext, keys rotate without losing a secret."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from lifecycle.sources.models import Platform, Source

pytestmark = pytest.mark.django_db

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def stored_credentials(source: Source) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM sources_source WHERE id = %s", [source.pk])
        return cursor.fetchone()[0]


@pytest.fixture
def source(settings) -> Source:
    settings.CLM_ENCRYPTION_KEYS = [OLD]
    return Source.objects.create(
        name="Shop",
        platform=Platform.SHOPIFY,
        shop_url="https://shop.example",
        currency="EUR",
        credentials={"access_token": "shpat_secret-token"},
    )


def test_the_database_holds_no_secret_in_clear(source):
    raw = stored_credentials(source)
    assert "shpat" not in raw
    assert Fernet(OLD).decrypt(raw.encode()) == b'{"access_token": "shpat_secret-token"}'
    assert Source.objects.get().credentials == {"access_token": "shpat_secret-token"}


def test_rotation_re_encrypts_under_the_new_key_and_the_old_one_can_go(source, settings):
    settings.CLM_ENCRYPTION_KEYS = [NEW, OLD]
    call_command("encryption_rotate", stdout=StringIO())
    assert Fernet(NEW).decrypt(stored_credentials(source).encode())

    settings.CLM_ENCRYPTION_KEYS = [NEW]
    assert Source.objects.get().credentials == {"access_token": "shpat_secret-token"}


def test_a_secret_without_its_key_says_so(source, settings):
    settings.CLM_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        Source.objects.get()
