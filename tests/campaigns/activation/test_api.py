"""The destinations API (admin scope): create with the secret shown once, change, test, rotate, the delivery log
in cursor pages, replay; bad input answered 400 with nothing written."""

import pytest

from campaigns.activation.models import Delivery, DeliveryState, Destination, DestinationState
from campaigns.activation.sending import deliveries_send_due
from tests.campaigns.activation.test_webhooks import Receiver
from tests.conftest import _client_with_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/destinations/"


@pytest.fixture
def admin_key():
    return _client_with_key({"read", "write", "admin"})


def created(client, url: str, **fields) -> dict:
    response = client.post(
        URL, {"name": "CRM", "url": url, "event_types": ["customer.stage_changed"], **fields}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_an_admin_key_creates_a_destination_and_gets_its_secret_once(admin_key, httpserver):
    body = created(admin_key, httpserver.url_for("/hooks"), models=["status"])

    assert body["secret"].startswith("whsec_") and body["models"] == ["status"] and body["state"] == "active"
    listed = admin_key.get(URL).json()
    assert [item["name"] for item in listed] == ["CRM"] and "secret" not in listed[0]
    assert "secret" not in admin_key.get(f"{URL}{body['id']}/").json()


def test_a_read_or_write_key_is_refused(httpserver):
    for scopes in ({"read"}, {"read", "write"}):
        assert _client_with_key(scopes).get(URL).status_code == 403


def test_bad_input_is_refused_by_field_and_nothing_written(admin_key, settings):
    settings.CLM_OUTBOUND_ALLOW_LOCAL = False
    cases = {
        "url": {"name": "CRM", "url": "http://crm.example.com/x", "event_types": ["customer.stage_changed"]},
        "event_types": {"name": "CRM", "url": "https://crm.example.com/x", "event_types": ["order.created"]},
        "models": {
            "name": "CRM",
            "url": "https://crm.example.com/x",
            "event_types": ["customer.stage_changed"],
            "models": ["nope"],
        },
    }
    for field, payload in cases.items():
        response = admin_key.post(URL, payload, format="json")
        assert response.status_code == 400, field
        assert {error["field"].split("[")[0] for error in response.json()["errors"]} == {field}, response.json()
    assert admin_key.post(URL, [1, 2], format="json").status_code == 400
    assert not Destination.objects.exists()


def test_disable_test_rotate_deliveries_and_replay(admin_key, httpserver):
    receiver = Receiver(httpserver)
    body = created(admin_key, receiver.url)
    detail = f"{URL}{body['id']}/"

    sent = admin_key.post(f"{detail}test/")
    assert sent.status_code == 202 and sent.json()["state"] == "pending"
    deliveries_send_due()
    log = admin_key.get(f"{detail}deliveries/").json()
    assert [(item["type"], item["state"], item["last_status"]) for item in log["results"]] == [
        ("test", "delivered", 204)
    ]
    assert log["results"][0]["webhook_id"] == receiver.requests[0][0]["Webhook-Id"]

    replayed = admin_key.post(f"/api/v1/deliveries/{log['results'][0]['id']}/replay/")
    assert replayed.status_code == 202 and replayed.json()["state"] == "pending"
    again = admin_key.post(f"/api/v1/deliveries/{log['results'][0]['id']}/replay/")
    assert again.status_code == 400  # still being tried

    new = admin_key.post(f"{detail}rotate-secret/").json()["secret"]
    stored = Destination.objects.get().secrets
    assert stored[0]["secret"] == new and stored[1]["secret"] == body["secret"]

    assert admin_key.patch(detail, {"state": "disabled"}, format="json").json()["state"] == "disabled"
    assert Destination.objects.get().state == DestinationState.DISABLED
    assert deliveries_send_due() == 0  # the replay waits while it is disabled
    assert Delivery.objects.get().state == DeliveryState.PENDING


def test_the_delivery_log_pages_by_cursor(admin_key, httpserver):
    body = created(admin_key, httpserver.url_for("/hooks"))
    for _ in range(5):
        admin_key.post(f"{URL}{body['id']}/test/")

    first = admin_key.get(f"{URL}{body['id']}/deliveries/?page_size=2").json()
    second = admin_key.get(first["next"]).json()

    assert len(first["results"]) == len(second["results"]) == 2
    assert first["results"][0]["id"] > first["results"][1]["id"] > second["results"][0]["id"]
    assert admin_key.get(f"{URL}{body['id']}/deliveries/?state=nope").status_code == 400
    assert admin_key.get(f"{URL}{body['id']}/deliveries/?cursor=garbage").status_code == 400
