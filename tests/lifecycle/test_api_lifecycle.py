"""The lifecycle read API (models, pipeline, customers, transitions) and runs (reclassify, run state).

The history is made by classifying ORM data as of past moments with lifecycle.services.model_reclassify:
ada orders on day 1 and day 40 (new, then active), bob on day 1 (new), cyd never (prospect).
"""

import json
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clm.base.services import api_key_create
from clm.celery import app as celery_app
from lifecycle.apis import reads as apis
from lifecycle.models import (
    Channel,
    ClassificationRun,
    Customer,
    CustomerStage,
    LifecycleModel,
    Order,
    RunStatus,
)
from lifecycle.services import classification_run_execute, model_reclassify
from lifecycle.templates import template_install
from tests.conftest import error_fields

pytestmark = pytest.mark.django_db

# Authentication costs at most two queries: the key lookup and the "last used" stamp.
AUTH = 2
ACTIVE_NAME = "Active customer"
DAY0 = (timezone.now() - timedelta(days=100)).replace(hour=0, minute=0, second=0, microsecond=0)


def key_client(scopes: set[str]) -> APIClient:
    _, key = api_key_create(name="test", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def day(n: int, hour: int = 12) -> datetime:
    return DAY0 + timedelta(days=n, hours=hour)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def get(client, path: str, **params):
    return client.get(f"/api/v1/{path}", params)


def counts(response) -> dict[str, int]:
    return {stage["key"]: stage["count"] for stage in response.json()["stages"]}


@pytest.fixture
def status_model() -> LifecycleModel:
    model = LifecycleModel.objects.get(key="status")  # installed by the post_migrate hook
    assert model.is_default
    return model


@pytest.fixture
def history(status_model):
    """Classified as of day 1 (evening), day 40 (evening) and now."""
    email = Channel.objects.get(key="email")
    ada = Customer.objects.create(
        external_id="ada", email="ada@example.com", name="Ada", first_seen_at=day(0), acquisition_channel=email
    )
    bob = Customer.objects.create(external_id="bob", name="Bob", first_seen_at=day(0), referred_by=ada)
    Customer.objects.create(external_id="cyd", first_seen_at=day(0))
    Order.objects.create(external_id="o-1", customer=ada, placed_at=day(1, 9), amount="20.00")
    Order.objects.create(external_id="o-2", customer=bob, placed_at=day(1, 10), amount="15.00")
    Order.objects.create(external_id="o-3", customer=ada, placed_at=day(40, 9), amount="30.00")
    for as_of in (day(1, 18), day(40, 18), None):
        model_reclassify(model=status_model, as_of=as_of)
    return status_model


def page_keys(response) -> list[str]:
    return [row["external_id"] for row in response.json()["results"]]


# --- models and pipeline --------------------------------------------------------------------------


def test_models_lists_every_model_with_its_stages_in_funnel_order(reader, status_model, django_assert_max_num_queries):
    template_install(key="basic")
    LifecycleModel.objects.create(key="draft", name_en="Draft", name_de="Entwurf", active=False)
    with django_assert_max_num_queries(AUTH + 2):
        response = get(reader, "models/")
    assert response.status_code == 200
    models = {model["key"]: model for model in response.json()}
    assert list(models) == ["status", "basic", "draft"]  # default first
    assert models["draft"]["fallback_stage"] is None and models["draft"]["stages"] == []
    assert not models["draft"]["active"]
    status = models["status"]
    assert status["is_default"] and status["active"] and status["fallback_stage"] == "prospect"
    assert [s["key"] for s in status["stages"]] == ["prospect", "new", "active", "inactive", "former"]
    assert {s["kind"] for s in status["stages"]} == {"funnel", "exit"}
    assert [s["position"] for s in status["stages"]] == sorted(s["position"] for s in status["stages"])
    # Every field of a stage, in the answer's order (the stage serializers share lifecycle.apis.common's).
    assert list(status["stages"][0].items()) == [
        ("key", "prospect"),
        ("name", "Prospect"),
        ("name_de", "Interessent"),
        ("description", "Known to the shop, no order yet."),
        ("colour", "#adb5bd"),
        ("kind", "funnel"),
        ("position", 1),
    ]


def test_pipeline_now_counts_current_stages_every_stage_listed(reader, history, django_assert_max_num_queries):
    # model, its latest run (the key of the cached counts), the counts, the stages
    with django_assert_max_num_queries(AUTH + 4):
        response = get(reader, "models/status/pipeline/")
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "status" and body["as_of"] is None
    assert [s["key"] for s in body["stages"]] == ["prospect", "new", "active", "inactive", "former"]
    assert list(body["stages"][0]) == ["key", "name", "kind", "position", "count"]
    assert counts(response) == {"prospect": 1, "new": 1, "active": 1, "inactive": 0, "former": 0}


def test_pipeline_as_of_a_past_date_comes_from_the_history(reader, history, django_assert_max_num_queries):
    # ada became new on day 1 and active on day 40: as of day 10 she counts as new.
    with django_assert_max_num_queries(AUTH + 3):
        response = get(reader, "models/status/pipeline/", as_of=day(10).date().isoformat())
    assert response.status_code == 200
    assert counts(response) == {"prospect": 1, "new": 2, "active": 0, "inactive": 0, "former": 0}
    assert response.json()["as_of"].startswith(day(10).date().isoformat() + "T23:59:59")


def test_pipeline_as_of_a_date_includes_that_whole_day_and_a_datetime_is_inclusive(reader, history):
    assert counts(get(reader, "models/status/pipeline/", as_of=day(40).date().isoformat()))["active"] == 1
    assert counts(get(reader, "models/status/pipeline/", as_of=iso(day(40, 18))))["active"] == 1
    assert counts(get(reader, "models/status/pipeline/", as_of=iso(day(40, 17))))["active"] == 0


def test_pipeline_before_any_transition_counts_nobody(reader, history):
    response = get(reader, "models/status/pipeline/", as_of=day(0).date().isoformat())
    assert response.status_code == 200
    assert set(counts(response).values()) == {0}


def test_pipeline_as_of_today_agrees_with_the_current_counts(reader, history):
    now = get(reader, "models/status/pipeline/")
    today = get(reader, "models/status/pipeline/", as_of=timezone.now().date().isoformat())
    assert counts(today) == counts(now)


@pytest.mark.parametrize("as_of", ["31/01/2025", "2025-02-30", "yesterday", "2025-01-01T25:00:00Z"])
def test_pipeline_refuses_an_unparseable_as_of(reader, history, as_of):
    response = get(reader, "models/status/pipeline/", as_of=as_of)
    assert response.status_code == 400
    assert "as_of" in error_fields(response)


def test_pipeline_refuses_an_as_of_in_the_future(reader, history):
    response = get(reader, "models/status/pipeline/", as_of=(timezone.now() + timedelta(days=3)).date().isoformat())
    assert response.status_code == 400
    assert "future" in error_fields(response)["as_of"][0]


def test_pipeline_of_an_unknown_model_is_404_naming_it(reader, history):
    response = get(reader, "models/nope/pipeline/")
    assert response.status_code == 404
    assert "'nope'" in response.json()["detail"] and "status" in response.json()["detail"]


# --- customers ------------------------------------------------------------------------------------


def test_customers_of_the_default_model_with_their_stage(reader, history, django_assert_max_num_queries):
    with django_assert_max_num_queries(AUTH + 2):
        response = get(reader, "customers/")
    assert response.status_code == 200
    rows = {row["external_id"]: row for row in response.json()["results"]}
    assert {key: row["stage"] for key, row in rows.items()} == {"ada": "active", "bob": "new", "cyd": "prospect"}
    assert rows["ada"]["acquisition_channel"] == "email" and rows["bob"]["referred_by"] == "ada"
    assert rows["ada"]["since"] == iso(day(40, 18))
    assert response.json()["next"] is None


def test_customers_filtered_by_stage(reader, history, django_assert_max_num_queries):
    with django_assert_max_num_queries(AUTH + 3):
        response = get(reader, "customers/", model="status", stage="new")
    assert response.status_code == 200
    assert page_keys(response) == ["bob"]
    assert page_keys(get(reader, "customers/", stage="active")) == ["ada"]
    assert page_keys(get(reader, "customers/", stage="former")) == []


def test_customers_not_classified_yet_have_no_stage_and_match_no_stage_filter(reader, history):
    Customer.objects.create(external_id="dan", first_seen_at=day(99))
    rows = {row["external_id"]: row for row in get(reader, "customers/").json()["results"]}
    assert rows["dan"]["stage"] is None and rows["dan"]["since"] is None
    assert "dan" not in page_keys(get(reader, "customers/", stage="prospect"))


def test_customers_changed_since(reader, history, django_assert_max_num_queries):
    with django_assert_max_num_queries(AUTH + 2):
        response = get(reader, "customers/", changed_since=day(20).date().isoformat())
    assert page_keys(response) == ["ada"]
    assert page_keys(get(reader, "customers/", changed_since=iso(day(40, 18)))) == ["ada"]  # at or after
    assert page_keys(get(reader, "customers/", changed_since=iso(day(40, 19)))) == []
    assert sorted(page_keys(get(reader, "customers/", changed_since=iso(day(0))))) == ["ada", "bob", "cyd"]
    window = get(reader, "customers/", changed_since=iso(day(0)), changed_before=iso(day(20)))
    assert sorted(page_keys(window)) == ["bob", "cyd"]


def test_customers_cursor_pagination_walks_every_customer_once(reader, history, django_assert_max_num_queries):
    Customer.objects.bulk_create(Customer(external_id=f"x-{n:02}", first_seen_at=day(0)) for n in range(23))
    model_reclassify(model=history)
    seen: list[str] = []
    url = "/api/v1/customers/?stage=prospect&page_size=4"
    pages = 0
    while url:
        with django_assert_max_num_queries(AUTH + 3):
            response = reader.get(url)
        assert response.status_code == 200
        assert len(response.json()["results"]) <= 4
        seen += page_keys(response)
        url = response.json()["next"]
        pages += 1
    assert len(seen) == len(set(seen)) == 24  # cyd and the 23 new prospects
    assert set(seen) == {"cyd", *(f"x-{n:02}" for n in range(23))}
    assert pages == 6
    assert seen == list(
        Customer.objects.filter(external_id__in=seen).order_by("pk").values_list("external_id", flat=True)
    )


def test_customers_page_size_is_capped_at_1000(reader, status_model):
    Customer.objects.bulk_create(Customer(external_id=f"c-{n:04}", first_seen_at=day(0)) for n in range(1001))
    response = get(reader, "customers/", page_size=5000)
    assert len(response.json()["results"]) == 1000 and response.json()["next"]
    assert len(get(reader, "customers/").json()["results"]) == 100


def test_customers_filter_by_an_unknown_stage_is_400_naming_it(reader, history):
    response = get(reader, "customers/", stage="vip")
    assert response.status_code == 400
    message = error_fields(response)["stage"][0]
    assert "'vip'" in message and "prospect" in message


def test_customers_filter_by_an_unknown_model_is_400_naming_it(reader, history):
    response = get(reader, "customers/", model="nope", stage="new")
    assert response.status_code == 400
    assert "'nope'" in error_fields(response)["model"][0]


@pytest.mark.parametrize("changed_since", ["last week", "2025-13-01", "01.02.2025", "2025-02-01T10:00:00 02:00"])
def test_customers_refuse_an_unparseable_changed_since(reader, history, changed_since):
    response = get(reader, "customers/", changed_since=changed_since)
    assert response.status_code == 400
    assert "changed_since" in error_fields(response)


def test_customers_refuse_a_reversed_changed_window(reader, history):
    response = get(reader, "customers/", changed_since=iso(day(20)), changed_before=iso(day(10)))
    assert response.status_code == 400
    assert "changed_before" in error_fields(response)


def test_customers_refuse_a_changed_since_in_the_future(reader, history):
    response = get(reader, "customers/", changed_since=iso(timezone.now() + timedelta(days=2)))
    assert response.status_code == 400
    assert "future" in error_fields(response)["changed_since"][0]


def test_customers_url_reads_with_read_scope_and_ingests_with_write_scope(reader, writer, status_model):
    item = {"external_id": "eve", "first_seen_at": iso(day(5))}
    refused = reader.post("/api/v1/customers/", data=json.dumps(item), content_type="application/json")
    assert refused.status_code == 403
    created = writer.post("/api/v1/customers/", data=json.dumps(item), content_type="application/json")
    assert created.status_code == 201
    assert page_keys(get(writer, "customers/")) == ["eve"]
    write_only = key_client({"write"})
    assert get(write_only, "customers/").status_code == 403


def test_customer_detail_has_the_stage_in_every_active_model(reader, history, django_assert_max_num_queries):
    template_install(key="basic")  # active, nobody classified in it yet
    inactive, _ = template_install(key="loyalty")
    LifecycleModel.objects.filter(pk=inactive.pk).update(active=False)
    with django_assert_max_num_queries(AUTH + 3):
        response = get(reader, "customers/ada/")
    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("external_id", "email", "name", "acquisition_channel", "referred_by")} == {
        "external_id": "ada",
        "email": "ada@example.com",
        "name": "Ada",
        "acquisition_channel": "email",
        "referred_by": None,
    }
    assert body["first_seen_at"] == iso(day(0))
    assert body["stages"] == [
        {"model": "status", "stage": "active", "stage_name": ACTIVE_NAME, "kind": "funnel", "since": iso(day(40, 18))},
        {"model": "basic", "stage": None, "stage_name": None, "kind": None, "since": None},
    ]
    assert get(reader, "customers/bob/").json()["referred_by"] == "ada"


def test_customer_detail_of_an_unknown_customer_is_404(reader, history):
    response = get(reader, "customers/nobody/")
    assert response.status_code == 404
    assert "'nobody'" in response.json()["detail"]


def test_customer_transitions_oldest_first(reader, history, django_assert_max_num_queries):
    with django_assert_max_num_queries(AUTH + 2):
        response = get(reader, "customers/ada/transitions/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(row["model"], row["from"], row["to"], row["at"], row["cause"]) for row in rows] == [
        ("status", None, "new", iso(day(1, 18)), "manual"),
        ("status", "new", "active", iso(day(40, 18)), "manual"),
    ]
    assert all(row["run"] for row in rows)


def test_customer_transitions_filter_by_model_and_keep_the_newest_when_capped(
    reader, history, monkeypatch, django_assert_max_num_queries
):
    template_install(key="basic")
    model_reclassify(model=LifecycleModel.objects.get(key="basic"), as_of=day(50))
    response = get(reader, "customers/ada/transitions/")
    assert [(row["model"], row["to"]) for row in response.json()["results"]] == [
        ("status", "new"),
        ("status", "active"),
        ("basic", "retention"),
    ]
    assert response.json()["truncated"] is False
    only_basic = get(reader, "customers/ada/transitions/", model="basic").json()["results"]
    assert [row["to"] for row in only_basic] == ["retention"]

    monkeypatch.setattr(apis.CustomerTransitionListApi, "LIMIT", 2)
    with django_assert_max_num_queries(AUTH + 2):
        capped = get(reader, "customers/ada/transitions/")
    assert [row["to"] for row in capped.json()["results"]] == ["active", "retention"]
    assert capped.json()["truncated"] is True


def test_customer_transitions_bad_model_is_400_and_unknown_customer_404(reader, history):
    response = get(reader, "customers/ada/transitions/", model="nope")
    assert response.status_code == 400
    assert "'nope'" in error_fields(response)["model"][0]
    assert get(reader, "customers/nobody/transitions/").status_code == 404


# --- reclassify and runs --------------------------------------------------------------------------


def test_reclassify_returns_the_run_id_and_the_run_shows_its_state(
    writer, reader, history, monkeypatch, django_assert_max_num_queries
):
    queued: list[int] = []
    monkeypatch.setattr(apis, "classification_run_enqueue", queued.append)
    Order.objects.create(
        external_id="o-4", customer=Customer.objects.get(external_id="bob"), placed_at=day(90), amount=1
    )

    response = writer.post("/api/v1/models/status/reclassify/")

    assert response.status_code == 202
    run_id = response.json()["id"]
    assert queued == [run_id]
    assert response["Location"].endswith(f"/api/v1/runs/{run_id}/")
    with django_assert_max_num_queries(AUTH + 1):
        running = get(reader, f"runs/{run_id}/")
    assert running.status_code == 200
    assert running.json()["status"] == "running" and running.json()["finished_at"] is None

    classification_run_execute(run=ClassificationRun.objects.get(pk=run_id))  # what the worker does

    done = get(reader, f"runs/{run_id}/").json()
    assert set(done) == {
        "id",
        "model",
        "kind",
        "as_of",
        "started_at",
        "finished_at",
        "customers_evaluated",
        "transitions",
        "status",
        "error",
    }
    assert done["model"] == "status" and done["kind"] == "full" and done["status"] == "completed"
    assert done["customers_evaluated"] == 3 and done["transitions"] == 1 and done["finished_at"]
    assert CustomerStage.objects.get(customer__external_id="bob").stage.key == "active"


def test_reclassify_runs_on_the_worker_after_commit(writer, history, monkeypatch, django_capture_on_commit_callbacks):
    """The real enqueue, with Celery executing the task in-process."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", True)
    with django_capture_on_commit_callbacks(execute=True):
        response = writer.post("/api/v1/models/status/reclassify/")
    assert response.status_code == 202
    run = get(writer, f"runs/{response.json()['id']}/").json()
    assert run["status"] == RunStatus.COMPLETED and run["customers_evaluated"] == 3


def test_a_read_key_cannot_reclassify(reader, history, monkeypatch):
    monkeypatch.setattr(apis, "classification_run_enqueue", lambda run_id: None)
    runs = ClassificationRun.objects.count()
    assert reader.post("/api/v1/models/status/reclassify/").status_code == 403
    assert ClassificationRun.objects.count() == runs


def test_a_write_only_key_can_poll_its_run(history, monkeypatch):
    monkeypatch.setattr(apis, "classification_run_enqueue", lambda run_id: None)
    write_only = key_client({"write"})
    run_id = write_only.post("/api/v1/models/status/reclassify/").json()["id"]
    assert get(write_only, f"runs/{run_id}/").status_code == 200


def test_reclassify_of_an_unknown_model_is_404_with_a_clear_message(writer, history):
    runs = ClassificationRun.objects.count()
    response = writer.post("/api/v1/models/nope/reclassify/")
    assert response.status_code == 404
    assert response.json()["detail"] == "No lifecycle model with key 'nope'; known: status."
    assert ClassificationRun.objects.count() == runs


def test_reclassify_of_an_inactive_model_is_409(writer, history):
    LifecycleModel.objects.filter(key="status").update(active=False)
    response = writer.post("/api/v1/models/status/reclassify/")
    assert response.status_code == 409
    assert "not active" in response.json()["detail"]


def test_an_unknown_run_is_404(reader, history):
    response = get(reader, "runs/999999/")
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]
