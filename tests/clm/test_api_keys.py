import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from clm.models import ApiKey

pytestmark = pytest.mark.django_db


def create_key(*args: str) -> str:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()[-1]


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def test_command_prints_the_key_as_its_last_line_and_stores_only_a_hash():
    key = create_key("shop backend", "--scopes", "read,write")
    api_key = ApiKey.objects.get()
    assert api_key.name == "shop backend" and api_key.scopes == ["read", "write"]
    assert key.startswith(api_key.prefix + ".")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM clm_apikey")
        dump = json.dumps(cursor.fetchall(), default=str)
    assert key not in dump and key.split(".", 1)[1] not in dump


def test_unknown_scope_is_refused():
    with pytest.raises(CommandError, match="scopes"):
        create_key("x", "--scopes", "read,delete")
    assert ApiKey.objects.count() == 0


def test_key_use_is_recorded():
    key = create_key("reporting", "--scopes", "write")
    client_for(key).post("/api/v1/customers/", data={"external_id": "c-1"}, format="json")
    assert ApiKey.objects.get().last_used_at is not None


def test_revoked_key_is_refused_at_once():
    key = create_key("old", "--scopes", "write")
    client = client_for(key)
    assert client.post("/api/v1/customers/", data={"external_id": "c-1"}, format="json").status_code == 201
    ApiKey.objects.update(revoked=True)
    response = client.post("/api/v1/customers/", data={"external_id": "c-2"}, format="json")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_a_key_with_read_scope_reads_the_schema():
    key = create_key("reader")
    assert client_for(key).get("/api/v1/schema/").status_code == 200
