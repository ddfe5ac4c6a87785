import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from clm.base.models import ApiKey

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


def test_an_admin_scope_key_handles_personal_data_only():
    key = create_key("privacy desk", "--scopes", "admin")
    assert ApiKey.objects.get().scopes == ["admin"]
    client = client_for(key)
    assert client.get("/api/v1/customers/nobody/export/").status_code == 404  # allowed: the customer is unknown
    assert client.get("/api/v1/customers/").status_code == 403
    assert client.post("/api/v1/customers/", data={"external_id": "c-1"}, format="json").status_code == 403


def test_the_admin_creates_a_key_with_the_admin_scope(admin_client):
    form = admin_client.get("/admin/clm/apikey/add/")
    assert 'name="scope_admin"' in form.text

    response = admin_client.post("/admin/clm/apikey/add/", {"name": "privacy desk", "scope_admin": "on"})

    assert response.status_code == 302
    assert ApiKey.objects.get().scopes == ["admin"]
