"""Segments out: the CSV export of a stage's customers, its filters and its errors."""

import csv
import io

import pytest
from django.http import StreamingHttpResponse

from campaigns.models import Experiment, Exposure, Variant
from clm.base.services import api_key_create
from lifecycle.models import Channel, CustomerStage, LifecycleModel, Stage
from metrics.models import ClvFit, CustomerValue
from tests.conftest import error_fields
from tests.factories import CustomerFactory, TouchpointFactory, at

pytestmark = pytest.mark.django_db

HEADER = [
    *("external_id", "email", "name", "stage", "since", "p_alive", "predicted_clv_365d"),
    *("email_consent", "sms_consent"),
]
URL = "/api/v1/models/status/stages/new/export.csv"
CONSENT = ["subscribed", "not_subscribed"]  # email, SMS


def read_csv(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def segment(db) -> dict:
    """Status model: c1, c2, c3 currently `new`, c4 `active`, all subscribed to email marketing (the export's
    default: tests/lifecycle/test_consent.py); c1 has a CLV prediction, the others none."""
    model = LifecycleModel.objects.get(key="status")
    stages = {stage.key: stage for stage in Stage.objects.filter(model=model)}
    customers = {}
    for external_id, stage, since in [
        ("c1", "new", "2024-03-01"),
        ("c2", "new", "2024-03-02"),
        ("c3", "new", "2024-03-03"),
        ("c4", "active", "2024-03-04"),
    ]:
        customer = CustomerFactory(
            external_id=external_id,
            email=f"{external_id}@example.com",
            name=external_id.upper(),
            email_consent="subscribed",
        )
        CustomerStage.objects.create(model=model, customer=customer, stage=stages[stage], since=at(since))
        customers[external_id] = customer
    fit = ClvFit.objects.create(
        as_of=at("2024-03-31"),
        fitted_at=at("2024-03-31"),
        customers=4,
        repeat_customers=1,
        r=0.24,
        alpha=4.41,
        a=0.79,
        b=2.43,
        log_likelihood=-100.0,
    )
    CustomerValue.objects.create(
        customer=customers["c1"],
        fit=fit,
        frequency=2,
        recency_weeks=10.0,
        age_weeks=20.0,
        monetary_value=35.5,
        p_alive=0.876543,
        expected_purchases_90d=0.4,
        expected_purchases_365d=1.5,
        expected_spend_90d=14.2,
        expected_spend_365d=53.256,
    )
    return {"model": model, "stages": stages, **customers}


def test_export_streams_the_stage_customers_with_predictions(reader, segment):
    response = reader.get(URL)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="status-new-email-consented.csv"'
    rows = read_csv(response)
    assert rows[0] == HEADER
    assert rows[1:] == [
        ["c1", "c1@example.com", "C1", "new", "2024-03-01T12:00:00+00:00", "0.8765", "53.26", *CONSENT],
        ["c2", "c2@example.com", "C2", "new", "2024-03-02T12:00:00+00:00", "", "", *CONSENT],
        ["c3", "c3@example.com", "C3", "new", "2024-03-03T12:00:00+00:00", "", "", *CONSENT],
    ]


def test_export_of_an_empty_stage_is_just_the_header(reader, segment):
    rows = read_csv(reader.get("/api/v1/models/status/stages/former/export.csv"))

    assert rows == [HEADER]


def test_export_ignores_the_accept_header_and_format_parameter(reader, segment):
    response = reader.get(URL, {"format": "csv"}, HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert len(read_csv(response)) == 4


def test_export_filters_by_experiment_variant(reader, segment):
    experiment = Experiment.objects.create(
        key="welcome", name="Welcome", model=segment["model"], stage=segment["stages"]["new"]
    )
    control = Variant.objects.create(experiment=experiment, key="control", name="Control", is_control=True)
    treatment = Variant.objects.create(experiment=experiment, key="coupon", name="Coupon")
    Exposure.objects.create(experiment=experiment, variant=control, customer=segment["c1"], exposed_at=at("2024-03-05"))
    Exposure.objects.create(
        experiment=experiment, variant=treatment, customer=segment["c2"], exposed_at=at("2024-03-05")
    )

    coupon = read_csv(reader.get(URL, {"experiment": "welcome", "variant": "coupon"}))
    exposed = read_csv(reader.get(URL, {"experiment": "welcome"}))

    assert [row[0] for row in coupon[1:]] == ["c2"]
    assert [row[0] for row in exposed[1:]] == ["c1", "c2"]


def test_export_filters_by_touchpoints_on_a_channel(reader, segment):
    email = Channel.objects.get(key="email")
    TouchpointFactory(customer=segment["c1"], channel=email, occurred_at=at("2024-02-01"))
    TouchpointFactory(customer=segment["c2"], channel=email, occurred_at=at("2024-03-10"))
    TouchpointFactory(customer=segment["c3"], channel=Channel.objects.get(key="paid_ads"), occurred_at=at("2024-03-10"))

    def ids(params: dict) -> list[str]:
        return [row[0] for row in read_csv(reader.get(URL, params))[1:]]

    assert ids({"channel": "email"}) == ["c1", "c2"]  # `with` is the default
    assert ids({"channel": "email", "touchpoint": "with"}) == ["c1", "c2"]
    assert ids({"channel": "email", "touchpoint": "without"}) == ["c3"]
    assert ids({"channel": "email", "touchpoint": "with", "since": "2024-03-01"}) == ["c2"]
    assert ids({"channel": "email", "touchpoint": "without", "since": "2024-03-01"}) == ["c1", "c3"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/api/v1/models/status/stages/vip/export.csv", "No stage 'vip' in model 'status'"),
        ("/api/v1/models/nope/stages/new/export.csv", "No lifecycle model with key 'nope'"),
    ],
)
def test_export_of_an_unknown_model_or_stage_is_404_with_a_clear_message(reader, segment, url, message):
    response = reader.get(url, HTTP_ACCEPT="text/csv")

    assert response.status_code == 404
    assert not isinstance(response, StreamingHttpResponse)
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"touchpoint": "with"}, "touchpoint"),
        ({"channel": "email", "touchpoint": "sometimes"}, "touchpoint"),
        ({"channel": "email", "since": "2024-02-30"}, "since"),
        ({"experiment": "nope"}, "experiment"),
        ({"variant": "coupon"}, "variant"),
    ],
)
def test_export_with_a_bad_filter_is_400_naming_it(reader, segment, params, field):
    response = reader.get(URL, params)

    assert response.status_code == 400
    assert not isinstance(response, StreamingHttpResponse)
    assert field in error_fields(response)


def test_export_with_an_unknown_variant_is_400(reader, segment):
    experiment = Experiment.objects.create(
        key="welcome", name="Welcome", model=segment["model"], stage=segment["stages"]["new"]
    )
    Variant.objects.create(experiment=experiment, key="control", name="Control", is_control=True)

    response = reader.get(URL, {"experiment": "welcome", "variant": "nope"})

    assert response.status_code == 400
    assert "known: control" in error_fields(response)["variant"][0]


def test_export_needs_the_read_scope(api_client, writer, segment):
    _, key = api_key_create(name="write only", scopes={"write"})
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert api_client.get(URL).status_code == 403


def test_export_reads_the_segment_in_one_query_whatever_its_size(reader, segment, django_assert_max_num_queries):
    new = segment["stages"]["new"]
    for n in range(30):
        customer = CustomerFactory(external_id=f"more-{n}", email_consent="subscribed")
        CustomerStage.objects.create(model=segment["model"], customer=customer, stage=new, since=at("2024-03-05"))
    TouchpointFactory(customer=segment["c1"], channel=Channel.objects.get(key="email"))

    # API key (2) + model + stage + channel + the segment itself.
    with django_assert_max_num_queries(7):
        rows = read_csv(reader.get(URL, {"channel": "email", "touchpoint": "without"}))

    assert len(rows) == 1 + 32
