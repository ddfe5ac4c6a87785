import pytest
from django.contrib.auth.models import Group, User

from clm.base.roles import Role, user_has_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer():
    user = User.objects.create_user("vera", password="a-long-password-1")
    user.groups.add(Group.objects.get(name="viewer"))
    return user


def test_role_groups_exist_after_migrate_with_their_permissions():
    groups = {group.name: group for group in Group.objects.prefetch_related("permissions")}
    assert set(groups) >= {"viewer", "marketer", "admin"}
    viewer_perms = {p.codename for p in groups["viewer"].permissions.all()}
    marketer_perms = {p.codename for p in groups["marketer"].permissions.all()}
    admin_perms = {p.codename for p in groups["admin"].permissions.all()}
    assert {"view_customer", "view_order", "view_marketingspend"} <= viewer_perms
    assert not any(codename.startswith(("add_", "change_", "delete_")) for codename in viewer_perms)
    assert "change_marketingspend" in marketer_perms and "change_customer" not in marketer_perms
    assert {"change_customer", "add_apikey", "change_user"} <= admin_perms


def test_roles_include_the_roles_below(viewer):
    assert user_has_role(viewer, Role.VIEWER) and not user_has_role(viewer, Role.MARKETER)


@pytest.mark.parametrize("url", ["/", "/api/v1/docs/"])
def test_pages_redirect_anonymous_users_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_schema_needs_authentication(client):
    assert client.get("/api/v1/schema/").status_code in {401, 403}


def test_login_page_and_health_are_public(client):
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/health/").status_code == 200


def test_logged_in_user_sees_the_data_summary(client, viewer):
    client.force_login(viewer)
    response = client.get("/")
    assert response.status_code == 200
    assert b"customers" in response.content


def test_login_with_password_works(client, viewer):
    response = client.post("/accounts/login/", {"username": "vera", "password": "a-long-password-1"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_api_docs_and_schema_work_for_logged_in_users(client, viewer):
    client.force_login(viewer)
    assert client.get("/api/v1/docs/").status_code == 200
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/orders/" in schema["paths"]
    assert "ApiKeyAuth" in schema["components"]["securitySchemes"]


def test_session_user_needs_admin_role_to_ingest(client, viewer):
    client.force_login(viewer)
    response = client.post("/api/v1/customers/", data={"external_id": "c-1"}, content_type="application/json")
    assert response.status_code == 403
    admin = User.objects.create_user("ada", password="a-long-password-2")
    admin.groups.add(Group.objects.get(name="admin"))
    client.force_login(admin)
    response = client.post("/api/v1/customers/", data={"external_id": "c-1"}, content_type="application/json")
    assert response.status_code == 201


def test_demo_accounts_are_created_once_per_role(tmp_path):
    from clm.demo.accounts import demo_accounts_ensure

    path = tmp_path / "demo.json"
    first = demo_accounts_ensure(credentials_file=path)
    again = demo_accounts_ensure(credentials_file=path)
    assert first == again
    assert {account["role"] for account in first} == {"admin", "marketer", "viewer"}
    assert oct(path.stat().st_mode)[-3:] == "600"
    admin = User.objects.get(username="admin")
    assert admin.check_password(first[0]["password"]) and admin.is_staff


@pytest.mark.django_db
def test_an_account_without_a_role_sees_no_page_but_can_log_out(client):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("nobody", password="a-long-password-1"))
    for path in ("/", "/funnel/", "/cohorts/", "/campaigns/", "/api/v1/customers/"):
        response = client.get(path)
        assert response.status_code == 403, path
    assert "has no role" in client.get("/").content.decode()
    assert client.post("/i18n/setlang/", {"language": "de", "next": "/"}).status_code == 302
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302  # logged out: sent to the login page
