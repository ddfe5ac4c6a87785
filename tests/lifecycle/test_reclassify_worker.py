"""End to end: the shop posts an order through the API; a real Celery worker moves the customer within seconds."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from clm.base.services import api_key_create
from lifecycle.models import CustomerStage
from tests.conftest import wait_for


def stage_of(external_id: str) -> str | None:
    return (
        CustomerStage.objects.filter(model__key="status", customer__external_id=external_id)
        .values_list("stage__key", flat=True)
        .first()
    )


@pytest.mark.django_db(transaction=True)
def test_orders_posted_through_the_api_move_the_customer_within_seconds(celery_worker_process, api_client):
    _, key = api_key_create(name="shop", scopes={"write"})
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    recently = timezone.now() - timedelta(days=3)

    response = api_client.post(
        "/api/v1/customers/", {"external_id": "shopper", "first_seen_at": recently.isoformat()}, format="json"
    )
    assert response.status_code == 201
    wait_for(lambda: stage_of("shopper") == "prospect", timeout=30, message="shopper to become a prospect")

    for number, expected in ((1, "new"), (2, "active")):
        order = {
            "external_id": f"order-{number}",
            "customer_external_id": "shopper",
            "amount": "25.00",
            "placed_at": (recently + timedelta(days=number)).isoformat(),
        }
        posted = time.monotonic()
        assert api_client.post("/api/v1/orders/", order, format="json").status_code == 201
        wait_for(lambda expected=expected: stage_of("shopper") == expected, timeout=10, message=f"stage {expected}")
        assert time.monotonic() - posted < 10
