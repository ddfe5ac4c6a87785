"""Every API error has one shape, {"detail", "code", "errors"}, whatever produced it (clm.base.api_errors)."""

import json

import pytest
from django.test import override_settings
from rest_framework.exceptions import Throttled

from clm.base.api_errors import api_exception_handler
from lifecycle.models import Customer
from tests.conftest import error_fields

pytestmark = pytest.mark.django_db


def shape(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    error_fields(response)  # checks the keys of the body and of each error
    assert body["code"] == code, body
    return body


def test_a_path_under_api_that_matches_no_route(reader):
    body = shape(reader.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert body["errors"] == []


def test_an_unknown_object(reader):
    body = shape(reader.get("/api/v1/customers/nobody/"), 404, "not_found")
    assert "nobody" in body["detail"]


def test_a_method_the_endpoint_does_not_take(writer):
    shape(writer.delete("/api/v1/customers/"), 405, "method_not_allowed")


def test_no_key_and_a_wrong_key(api_client):
    shape(api_client.get("/api/v1/customers/"), 401, "not_authenticated")
    api_client.credentials(HTTP_AUTHORIZATION="Api-Key wrong.key")
    shape(api_client.get("/api/v1/customers/"), 401, "authentication_failed")


def test_a_key_without_the_scope(reader):
    shape(reader.post("/api/v1/customers/", {"external_id": "c-1"}, format="json"), 403, "permission_denied")


def test_a_body_that_is_not_json(writer):
    response = writer.generic("POST", "/api/v1/customers/", b"{not json", content_type="application/json")
    shape(response, 400, "parse_error")


@override_settings(CLM_API_MAX_BODY_BYTES=100)
def test_a_body_over_the_limit(writer):
    body = json.dumps([{"external_id": f"c-{n}"} for n in range(20)])
    shape(writer.generic("POST", "/api/v1/customers/", body, content_type="application/json"), 413, "payload_too_large")


@pytest.mark.parametrize(
    ("payload", "code"), [("", "body_empty"), ("[]", "batch_empty"), ("7", "not_a_batch"), ('"x"', "not_a_batch")]
)
def test_a_batch_refused_as_a_whole(writer, payload, code):
    response = writer.generic("POST", "/api/v1/customers/", payload, content_type="application/json")
    assert shape(response, 400, code)["errors"] == []


@override_settings(CLM_INGEST_MAX_ITEMS=2)
def test_a_batch_over_the_item_limit(writer):
    payload = [{"external_id": f"c-{n}"} for n in range(3)]
    shape(writer.post("/api/v1/customers/", payload, format="json"), 400, "batch_too_large")
    assert not Customer.objects.exists()


def test_invalid_items_of_a_batch_each_with_its_index_field_and_code(writer):
    payload = [{"external_id": "c-1"}, {"external_id": "c-2", "email": "not an email"}, {"first_seen_at": "x"}]
    body = shape(writer.post("/api/v1/customers/", payload, format="json"), 400, "invalid")

    assert body["detail"] == "2 of 3 items are invalid; nothing was written."
    by_place = {(error["index"], error["field"]): error["code"] for error in body["errors"]}
    assert by_place[(1, "email")] == "invalid"
    assert by_place[(2, "external_id")] == "required"
    assert not Customer.objects.exists()


def test_a_service_refusal_is_a_400_naming_the_field(writer):
    # The campaign service (not its serializer) refuses an end before the start.
    payload = {
        "code": "spring",
        "name": "Spring",
        "channel": "email",
        "model": "status",
        "stages": ["new"],
        "start_date": "2024-03-01",
        "end_date": "2024-02-01",
    }
    response = writer.post("/api/v1/campaigns/", payload, format="json")
    body = shape(response, 400, "invalid")
    assert list(error_fields(response)) == ["end_date"] and body["detail"].startswith("Invalid input: end_date: ")


def test_a_throttled_request_gets_429_with_retry_after():
    response = api_exception_handler(Throttled(wait=3), {})
    assert response.status_code == 429 and response["Retry-After"] == "3"
    assert response.data["code"] == "throttled" and response.data["errors"] == []


def test_the_schema_declares_the_one_error_shape_for_every_error_response(reader):
    schema = reader.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"detail", "code", "errors"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                if status.startswith(("4", "5")):
                    refs = json.dumps(response.get("content", {}))
                    assert '"#/components/schemas/Error"' in refs, (method, path, status)
