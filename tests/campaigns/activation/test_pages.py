"""The destinations pages: admins only; a new destination's secret shown once; a test event sent by a real worker
to a receiver that verifies its signature; what a bad address gets; German."""

import pytest
from django.utils import timezone

from campaigns.activation.models import Delivery, DeliveryState, Destination, EventType
from lifecycle.models import LifecycleModel
from tests.campaigns.activation.test_webhooks import Receiver
from tests.conftest import wait_for
from tests.language import german
from tests.pages import user_client

pytestmark = pytest.mark.django_db

LIST = "/destinations/"


@pytest.fixture
def admin():
    return user_client("root", "admin")


def create(client, url: str, **fields):
    data = {"name": "CRM", "url": url, "event_types": ["customer.stage_changed"], **fields}
    return client.post(LIST, data)


def test_an_admin_creates_a_destination_and_sees_its_secret_once(admin, httpserver):
    status = LifecycleModel.objects.get(key="status")
    response = create(admin, httpserver.url_for("/hooks"), lifecycle_models=[status.pk])

    assert response.status_code == 302
    destination = Destination.objects.get()
    assert [model.key for model in destination.lifecycle_models.all()] == ["status"]
    page = admin.get(response["Location"]).content.decode()
    secret = destination.secrets[0]["secret"]
    assert secret in page and "does not show it again" in page
    assert secret not in admin.get(response["Location"]).content.decode()
    assert "CRM" in admin.get(LIST).content.decode()


def test_rotating_shows_the_new_secret_once(admin, httpserver):
    create(admin, httpserver.url_for("/hooks"))
    destination = Destination.objects.get()

    page = admin.post(f"/destinations/{destination.pk}/rotate/", follow=True).content.decode()

    destination.refresh_from_db()
    new, old = (entry["secret"] for entry in destination.secrets)
    assert new in page and old not in page


def test_an_address_that_is_not_public_https_is_refused_in_production_and_nothing_saved(admin, settings):
    settings.CLM_OUTBOUND_ALLOW_LOCAL = False

    response = create(admin, "http://crm.example.com/hooks")
    private = create(admin, "https://192.168.1.20/hooks")

    assert response.status_code == private.status_code == 400
    assert "Use an https:// address" in response.content.decode()
    assert "private network" in private.content.decode()
    assert not Destination.objects.exists()


def test_only_admins_see_destinations(httpserver):
    for role in ("viewer", "marketer"):
        assert user_client(role, role).get(LIST).status_code == 403
    assert "/destinations/" not in user_client("m", "marketer").get("/").content.decode()


def test_the_pages_speak_german(admin, httpserver):
    create(admin, httpserver.url_for("/hooks"))
    destination = Destination.objects.get()
    with german(admin):
        listing = admin.get(LIST).content.decode()
        detail = admin.get(f"/destinations/{destination.pk}/").content.decode()
    assert "Ziele" in listing and "Testereignis senden" in detail


@pytest.mark.django_db(transaction=True)
def test_a_test_event_reaches_the_receiver_through_a_real_worker(start_worker, httpserver):
    admin = user_client("root", "admin")
    receiver = Receiver(httpserver)
    create(admin, receiver.url)
    destination = Destination.objects.get()
    start_worker("worker", pool="solo")

    admin.post(f"/destinations/{destination.pk}/test/")

    wait_for(lambda: receiver.requests, timeout=90, message="the test event to arrive")
    (event,) = receiver.verified(destination.secrets[0]["secret"])
    assert event["type"] == EventType.TEST and event["data"]["destination"] == "CRM"
    wait_for(lambda: Delivery.objects.filter(state=DeliveryState.DELIVERED).exists(), timeout=10)
    page = admin.get(f"/destinations/{destination.pk}/").content.decode()
    assert "delivered" in page and "204" in page
    assert Delivery.objects.get().delivered_at <= timezone.now()
