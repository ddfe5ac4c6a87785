"""API keys: shown once, stored hashed (also in their history), every change kept with who, when and what, and
visible to admins in the admin (docs/SECURITY.md)."""

import json
import re

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group, User
from django.db import connection
from django.urls import reverse

from clm.base.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(client) -> User:
    """A staff admin, logged in."""
    user = User.objects.create_user("ada", password="a-long-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    client.force_login(user)
    return user


def form(**values: str) -> dict[str, str]:
    return {"name": "shop backend", "scope_read": "on", "expiry_date_0": "", "expiry_date_1": "", **values}


def dump(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - a fixed table name
        return json.dumps(cursor.fetchall(), default=str)


def test_a_key_is_shown_once_kept_hashed_and_its_changes_audited(client, ada):
    response = client.post(reverse("admin:clm_apikey_add"), form(), follow=True)
    shown = [str(message) for message in response.context["messages"]]
    key = re.search(r"The API key for shop backend is: (\S+)\. ", " ".join(shown)).group(1)
    api_key = ApiKey.objects.get()
    assert key.startswith(api_key.prefix + ".")
    change_url = reverse("admin:clm_apikey_change", args=[quote(api_key.pk)])
    assert key not in client.get(change_url).content.decode()  # never shown again

    response = client.post(change_url, form(revoked="on"))
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked

    created, revoked = api_key.history.order_by("history_date", "history_id")
    assert (created.history_type, created.history_user) == ("+", ada)
    assert (revoked.history_type, revoked.history_user) == ("~", ada)
    assert revoked.history_date >= created.history_date
    delta = revoked.diff_against(created)
    assert [(change.field, change.old, change.new) for change in delta.changes] == [("revoked", False, True)]

    # The plain key is in no table: neither the key's nor its history's.
    for table in (ApiKey._meta.db_table, api_key.history.model._meta.db_table):
        text = dump(table)
        assert key not in text and key.split(".", 1)[1] not in text

    # Admins see the change: who and what, on the key's history page.
    history_page = client.get(reverse("admin:clm_apikey_history", args=[quote(api_key.pk)])).content.decode()
    assert "ada" in history_page and "Revoked" in history_page


def test_a_revoked_key_stays_revoked(client, ada):
    api_key, _ = ApiKey.objects.create_key(name="old", scope_read=True, revoked=True)
    change_url = reverse("admin:clm_apikey_change", args=[quote(api_key.pk)])
    client.post(change_url, form(name="old"))  # no "revoked" in the form: an attempt to un-revoke
    api_key.refresh_from_db()
    assert api_key.revoked
