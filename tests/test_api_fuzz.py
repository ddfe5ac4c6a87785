"""Schemathesis over every operation of the OpenAPI schema, in process against the WSGI app (SPEC §12).

The schema is the one drf-spectacular serves at /api/v1/schema/ (generated here at import, as pytest collects one
test per operation). Each operation gets a bounded, derandomised number of generated requests, valid and invalid,
authenticated with a read, write and admin key, on a seeded database: path and query parameters are often
replaced by the keys of seeded rows so requests reach real logic, not only 404s. Checks: no 5xx, the status code
is one the schema lists, and the body matches the schema of that status.
"""

import json
from datetime import date
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from campaigns.campaigns.crud import campaign_create
from campaigns.experiments.crud import experiment_create, experiment_start
from campaigns.models import ChannelPlan
from clm.base.services import API_KEY_SCOPES, api_key_create
from lifecycle.models import Channel, ClassificationRun, LifecycleModel, RunKind, Stage
from tests.factories import CustomerFactory, FeedbackFactory, OrderFactory, TouchpointFactory, transitions_record

MAX_EXAMPLES = 25
WSGI_APP = get_wsgi_application()


def _served_schema() -> dict:
    """The schema /api/v1/schema/?format=json serves (the same generator and renderer)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


SCHEMA_DICT = _served_schema()
SCHEMA = schemathesis.openapi.from_dict(SCHEMA_DICT)
SCHEMA.app = WSGI_APP

# Known rows (fixture `seeded`), by path parameter; `key` depends on the path (a model's or an experiment's).
KNOWN_PATH = {"external_id": "ada", "customer_external_id": "ada", "stage": "active"}
# Ids of the seeded campaign, plan and run: sequences are not reset between tests, so the fixture fills them in.
KNOWN_IDS: dict[str, int] = {}
KNOWN_QUERY = {
    "model": "status",
    "stage": "new",
    "channel": "email",
    "as_of": "2024-06-30",
    "from_stage": "prospect",
    "to_stage": "new",
    "cohort": "2024-01",
    "month": 1,
    "segment": "champions",
    "period": "2024-02",
    "calibration_end": "2024-03-31",
}
# Body fields that name seeded rows or need plausible values for an ingested item to be written.
KNOWN_BODY = {
    "customer_external_id": "ada",
    "channel": "email",
    "acquisition_channel": "email",
    "referred_by_external_id": "bob",
    "placed_at": "2024-03-01T10:00:00Z",
    "occurred_at": "2024-03-01T10:00:00Z",
    "submitted_at": "2024-03-01T10:00:00Z",
    "first_seen_at": "2024-01-01",
    "date": "2024-03-01",
    "model": "status",
    "amount": "10.00",
    "score": 7,
}


@SCHEMA.hook
def flatmap_path_parameters(context, path_parameters: dict | None) -> st.SearchStrategy:
    if not path_parameters:
        return st.just(path_parameters)
    path = context.operation.path
    known = {name: value for name, value in {**KNOWN_PATH, **KNOWN_IDS}.items() if name in path_parameters}
    if "key" in path_parameters:
        known["key"] = "banner" if path.startswith("/api/v1/experiments/") else "status"
    return st.sampled_from([path_parameters, {**path_parameters, **known}])


@SCHEMA.hook
def flatmap_query(context, query: dict | None) -> st.SearchStrategy:
    if not query:
        return st.just(query)
    known = {name: value for name, value in KNOWN_QUERY.items() if name in query}
    return st.sampled_from([query, {**query, **known}])


@SCHEMA.hook
def flatmap_body(context, body):
    """The body as generated, or with known values and without the extra fields the schema allows (the ingestion
    refuses unknown fields)."""
    fields = _body_fields(context.operation)

    def known(item):
        if not isinstance(item, dict):
            return item
        item = {name: value for name, value in item.items() if fields is None or name in fields}
        return {**item, **{name: value for name, value in KNOWN_BODY.items() if name in item}}

    mixed = [known(item) for item in body] if isinstance(body, list) else known(body)
    return st.sampled_from([body, mixed])


def _body_fields(operation) -> set[str] | None:
    """The properties of the operation's JSON body (of its items, for a list), from the schema."""
    content = operation.definition.raw.get("requestBody", {}).get("content", {}).get("application/json")
    schema = (content or {}).get("schema", {})
    schema = schema.get("items", schema)
    if "$ref" in schema:
        schema = SCHEMA_DICT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return set(schema["properties"]) if "properties" in schema else None


@pytest.fixture
def wsgi_in_test_transaction():
    """Keep the test's database connection (and its transaction) across requests, as Django's test client does:
    a bare WSGI call closes connections when a request finishes."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(db, wsgi_in_test_transaction) -> dict[str, str]:
    """A small shop: customers with orders, touchpoints, feedback and stage history, a campaign with spend, a
    channel plan, a running experiment, a classification run; and a key with every scope."""
    model = LifecycleModel.objects.get(key="status")
    email = Channel.objects.get(key="email")
    for external_id, path in {
        "ada": [("prospect", "2024-01-05"), ("new", "2024-01-10"), ("active", "2024-02-10")],
        "bob": [("prospect", "2024-01-07"), ("new", "2024-01-20")],
        "cyd": [("prospect", "2024-02-01")],
    }.items():
        customer = CustomerFactory(
            external_id=external_id, email=f"{external_id}@example.com", acquisition_channel=email
        )
        OrderFactory(customer=customer, campaign_code="spring")
        TouchpointFactory(customer=customer, channel=email)
        FeedbackFactory(customer=customer)
        transitions_record(model, customer, path)
    campaign = campaign_create(
        code="spring",
        name="Spring",
        channel="email",
        model="status",
        stages=["new"],
        start_date=date(2024, 1, 1),
        end_date=date(2024, 3, 31),
        budget=Decimal("500.00"),
    )
    plan = ChannelPlan.objects.create(
        stage=Stage.objects.get(model=model, key="new"), channel=email, objective="Welcome"
    )
    experiment = experiment_create(
        key="banner",
        name="Banner",
        model=model,
        stage=Stage.objects.get(model=model, key="new"),
        goal="place_order",
        window_days=10,
        variants=[{"key": "control", "is_control": True}, {"key": "banner"}],
    )
    experiment_start(experiment=experiment)
    run = ClassificationRun.objects.create(model=model, kind=RunKind.FULL, as_of=timezone.now())
    KNOWN_IDS.update(campaign_id=campaign.pk, plan_id=plan.pk, run_id=run.pk)
    _, key = api_key_create(name="fuzz", scopes=set(API_KEY_SCOPES))
    return {"Authorization": f"Api-Key {key}"}


@SCHEMA.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_operation_conforms_to_its_schema(case, seeded):
    case.call_and_validate(
        headers=seeded,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )


def test_a_path_matching_no_api_route_gets_a_json_404(seeded):
    response = Client().get("/api/v1/runs/not-a-number/", HTTP_AUTHORIZATION=seeded["Authorization"])
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()
