import hashlib
import json
import math
import re
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.experiments import assignment as assignment_module
from campaigns.experiments.assignment import assignment_bucket, experiment_assign, variant_for
from campaigns.experiments.crud import experiment_create, experiment_get, experiment_start, experiment_stop
from campaigns.experiments.errors import CustomerIneligible, ExperimentStateError, ExperimentStopped
from campaigns.experiments.results import experiment_results
from campaigns.models import Experiment, ExperimentStatus, Exposure, Variant
from lifecycle.models import Channel, Customer, CustomerStage, LifecycleModel, Order, OrderStatus, Stage
from lifecycle.templates import template_install
from tests.conftest import error_fields
from tests.factories import CustomerFactory, OrderFactory, TouchpointFactory, at, transitions_record

pytestmark = pytest.mark.django_db

CONTROL_AND_NEW = [{"key": "control", "name": "Current banner", "is_control": True}, {"key": "new", "name": "New"}]
WEIGHTED = [
    {"key": "control", "weight": 5, "is_control": True},
    {"key": "ten-percent", "weight": 3},
    {"key": "free-shipping", "weight": 2},
]


@pytest.fixture
def status_model() -> LifecycleModel:
    """The `status` model that migrate installs (prospect → new → active → inactive → former)."""
    return LifecycleModel.objects.get(key="status")


def stage(model: LifecycleModel, key: str) -> Stage:
    return Stage.objects.get(model=model, key=key)


def create(model: LifecycleModel, **overrides) -> Experiment:
    arguments = {
        "key": "checkout-banner",
        "name": "Checkout banner",
        "model": model,
        "stage": stage(model, "new"),
        "goal": "place_order",
        "window_days": 10,
        "variants": CONTROL_AND_NEW,
        **overrides,
    }
    return experiment_create(**arguments)


def started(model: LifecycleModel, **overrides) -> Experiment:
    experiment = create(model, **overrides)
    experiment_start(experiment=experiment, at=at("2024-03-01", 0))
    return experiment_get(key=experiment.key)


def in_stage(model: LifecycleModel, stage_key: str, **customer_fields) -> Customer:
    customer = CustomerFactory(**customer_fields)
    CustomerStage.objects.create(model=model, customer=customer, stage=stage(model, stage_key), since=at("2024-02-01"))
    return customer


def exposed(experiment: Experiment, variant_key: str, moment: datetime, **customer_fields) -> Customer:
    """A customer recorded in a variant at a moment (the variant chosen by the test, not the hash)."""
    customer = CustomerFactory(**customer_fields)
    Exposure.objects.create(
        experiment=experiment,
        variant=experiment.variants.get(key=variant_key),
        customer=customer,
        exposed_at=moment,
    )
    return customer


def cohort(experiment: Experiment, variant_key: str, *, exposed: int, converted: int, prefix: str) -> None:
    """`exposed` customers in a variant on 2024-03-01, the first `converted` of them ordering two days later."""
    variant = experiment.variants.get(key=variant_key)
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"{prefix}-{i}", first_seen_at=at("2024-01-01")) for i in range(exposed)
    )
    Exposure.objects.bulk_create(
        Exposure(experiment=experiment, variant=variant, customer=c, exposed_at=at("2024-03-01")) for c in customers
    )
    Order.objects.bulk_create(
        Order(external_id=f"{prefix}-o-{i}", customer=c, placed_at=at("2024-03-03"), amount=Decimal("20"))
        for i, c in enumerate(customers[:converted])
    )


def pooled_z(xa: int, na: int, xb: int, nb: int) -> tuple[float, float]:
    """z and two-sided p of the pooled two-proportion z-test, by hand (math only)."""
    pooled = (xa + xb) / (na + nb)
    z = (xb / nb - xa / na) / math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    return z, math.erfc(abs(z) / math.sqrt(2))


# --- assignment -----------------------------------------------------------------------------------


def test_assignment_bucket_is_sha256_of_key_and_external_id():
    digest = hashlib.sha256(b"checkout-banner:c-1").digest()
    expected = int.from_bytes(digest[:8], "big") * 10 // 2**64

    assert assignment_bucket(experiment_key="checkout-banner", customer_external_id="c-1", total_weight=10) == expected
    assert int.from_bytes(digest[:8], "big") == 12931372112549686922


def test_assignment_of_fixed_customers_never_changes(status_model, django_assert_num_queries):
    # Pinned literally: a change of the hash, the scaling or the variant order would move real customers.
    create(status_model)
    create(status_model, key="winback-offer", variants=WEIGHTED)
    banner, winback = experiment_get(key="checkout-banner"), experiment_get(key="winback-offer")
    pinned = {
        banner: {"c-1": "new", "c-2": "new", "c-3": "control", "ada@example.com": "new", "10042": "new"},
        winback: {
            "c-1": "free-shipping",
            "c-3": "ten-percent",
            "c-6": "control",
            "ada@example.com": "ten-percent",
            "10042": "control",
            "Kunde-Ä": "free-shipping",
        },
    }

    with django_assert_num_queries(0):  # pure once the variants are loaded
        actual = {
            experiment: {cid: variant_for(experiment=experiment, customer_external_id=cid).key for cid in pairs}
            for experiment, pairs in pinned.items()
        }

    assert actual == pinned


def test_assignment_proportions_follow_the_weights_on_100000_ids(status_model):
    create(status_model, key="winback-offer", variants=WEIGHTED)
    experiment = experiment_get(key="winback-offer")

    counts = Counter(variant_for(experiment=experiment, customer_external_id=f"cust-{i}").key for i in range(100_000))

    # The standard error of a share near 0.5 on 100,000 draws is 0.0016; 0.005 is three of them.
    shares = {key: count / 100_000 for key, count in counts.items()}
    assert shares == pytest.approx({"control": 0.5, "ten-percent": 0.3, "free-shipping": 0.2}, abs=0.005)


def test_a_variant_with_weight_zero_is_never_assigned(status_model):
    create(status_model, variants=[*CONTROL_AND_NEW, {"key": "paused", "weight": 0}])
    experiment = experiment_get(key="checkout-banner")

    keys = {variant_for(experiment=experiment, customer_external_id=f"c-{i}").key for i in range(2000)}

    assert keys == {"control", "new"}


# --- creation: every bad input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"variants": [{"key": "control", "weight": 0, "is_control": True}, {"key": "new", "weight": 0}]}, "variants"),
        ({"variants": [{"key": "control", "is_control": True}, {"key": "new", "weight": -1}]}, "variants"),
        ({"variants": [{"key": "control", "is_control": True}, {"key": "new", "weight": True}]}, "variants"),
        ({"variants": [{"key": "control", "is_control": True}]}, "variants"),
        ({"variants": []}, "variants"),
        ({"variants": [{"key": "a"}, {"key": "b"}]}, "variants"),
        ({"variants": [{"key": "a", "is_control": True}, {"key": "b", "is_control": True}]}, "variants"),
        ({"variants": [{"key": "a", "is_control": True}, {"key": "a"}]}, "variants"),
        ({"variants": [{"key": "a", "is_control": True, "weight": 0}, {"key": "b"}]}, "variants"),
        ({"variants": [{"key": "not a slug", "is_control": True}, {"key": "b"}]}, "variants"),
        ({"goal": "reach_stage"}, "goal_stage"),
        ({"goal": "reach_stage", "goal_stage": "new"}, "goal_stage"),
        ({"goal": "reach_stage", "goal_stage": "other-model"}, "goal_stage"),
        ({"goal": "place_order", "goal_stage": "active"}, "goal_stage"),
        ({"goal": "win"}, "goal"),
        ({"stage": "other-model"}, "stage"),
        ({"window_days": 0}, "window_days"),
        ({"window_days": 400}, "window_days"),
        ({"alpha": 1.5}, "alpha"),
        ({"power": 0}, "power"),
        ({"minimum_detectable_effect": -0.1}, "minimum_detectable_effect"),
        ({"key": "has spaces"}, "key"),
        ({"key": "new"}, "key"),  # the URL of the creation page
        ({"name": "  "}, "name"),
    ],
)
def test_create_refuses_bad_input_naming_the_field_and_writes_nothing(status_model, overrides, field):
    other = template_install(key="ecommerce")[0].stages.first()
    for name in ("stage", "goal_stage"):
        if name in overrides:
            overrides[name] = other if overrides[name] == "other-model" else stage(status_model, overrides[name])

    with pytest.raises(ValidationError) as error:
        create(status_model, **overrides)

    assert field in error.value.message_dict
    assert not Experiment.objects.exists() and not Variant.objects.exists()


def test_create_refuses_a_key_in_use(status_model):
    create(status_model)

    with pytest.raises(ValidationError) as error:
        create(status_model, name="Again")

    assert "exists already" in error.value.message_dict["key"][0]
    assert Experiment.objects.count() == 1


def test_create_keeps_the_variants_in_the_given_order(status_model):
    experiment = create(status_model, variants=WEIGHTED, goal="reach_stage", goal_stage=stage(status_model, "active"))

    assert experiment.status == ExperimentStatus.DRAFT
    assert list(experiment.variants.order_by("pk").values_list("key", "weight", "is_control")) == [
        ("control", 5, True),
        ("ten-percent", 3, False),
        ("free-shipping", 2, False),
    ]


# --- start and stop -------------------------------------------------------------------------------


def test_stopping_a_draft_is_refused(status_model):
    experiment = create(status_model)

    with pytest.raises(ExperimentStateError):
        experiment_stop(experiment=experiment)

    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.DRAFT and experiment.stopped_at is None


def test_stopping_before_the_start_moment_is_refused(status_model):
    experiment = started(status_model)

    with pytest.raises(ValidationError) as error:
        experiment_stop(experiment=experiment, at=at("2024-02-01"))

    assert "stopped_at" in error.value.message_dict


def test_only_a_draft_starts_and_a_stopped_experiment_does_not_restart(status_model):
    experiment = started(status_model)
    with pytest.raises(ExperimentStateError):
        experiment_start(experiment=experiment)

    experiment_stop(experiment=experiment, at=at("2024-04-01"))

    with pytest.raises(ExperimentStateError):
        experiment_start(experiment=experiment)
    with pytest.raises(ExperimentStateError):
        experiment_stop(experiment=experiment)
    experiment.refresh_from_db()
    assert (experiment.status, experiment.started_at, experiment.stopped_at) == (
        "stopped",
        at("2024-03-01", 0),
        at("2024-04-01"),
    )
    assert experiment.history.count() == 3  # created, started, stopped: audited


# --- assign ---------------------------------------------------------------------------------------


def test_assign_records_the_exposure_once(status_model):
    experiment = started(status_model)
    customer = in_stage(status_model, "new", external_id="c-3")

    variant, exposure, created = experiment_assign(experiment=experiment, customer=customer, at=at("2024-03-02"))
    again, same, created_again = experiment_assign(experiment=experiment, customer=customer)

    assert (variant.key, created, created_again) == ("control", True, False)
    assert again == variant and same.pk == exposure.pk and same.exposed_at == at("2024-03-02")
    assert Exposure.objects.count() == 1


def test_assign_before_the_start_is_refused(status_model):
    experiment = create(status_model)

    with pytest.raises(ExperimentStateError, match="not started"):
        experiment_assign(experiment=experiment, customer=in_stage(status_model, "new"))

    assert not Exposure.objects.exists()


def test_stopped_experiment_returns_the_recorded_variant_and_records_no_new_exposure(status_model):
    experiment = started(status_model)
    exposed_customer = in_stage(status_model, "new", external_id="c-1")
    variant, _, _ = experiment_assign(experiment=experiment, customer=exposed_customer)
    experiment_stop(experiment=experiment)

    again, _, created = experiment_assign(experiment=experiment, customer=exposed_customer)
    with pytest.raises(ExperimentStopped, match="has stopped"):
        experiment_assign(experiment=experiment, customer=in_stage(status_model, "new", external_id="c-2"))

    assert (again, created) == (variant, False)
    assert Exposure.objects.count() == 1


def test_customer_outside_the_stage_is_ineligible(status_model):
    experiment = started(status_model)

    with pytest.raises(CustomerIneligible, match="not in the stage 'new'"):
        experiment_assign(experiment=experiment, customer=in_stage(status_model, "active"))
    with pytest.raises(CustomerIneligible):
        experiment_assign(experiment=experiment, customer=CustomerFactory())  # not classified at all

    assert not Exposure.objects.exists()


def test_customer_without_a_touchpoint_on_the_channel_is_ineligible(status_model):
    experiment = started(status_model, channel=Channel.objects.get(key="email"))
    unreached = in_stage(status_model, "new")
    reached = in_stage(status_model, "new")
    TouchpointFactory(customer=reached, channel=Channel.objects.get(key="email"))
    TouchpointFactory(customer=unreached, channel=Channel.objects.get(key="paid_ads"))

    with pytest.raises(CustomerIneligible, match="no touchpoint on the channel 'email'"):
        experiment_assign(experiment=experiment, customer=unreached)
    _, _, created = experiment_assign(experiment=experiment, customer=reached)

    assert created and Exposure.objects.get().customer == reached


def test_exposed_customer_keeps_the_variant_after_leaving_the_stage(status_model):
    experiment = started(status_model)
    customer = in_stage(status_model, "new")
    variant, _, _ = experiment_assign(experiment=experiment, customer=customer)
    CustomerStage.objects.filter(customer=customer).update(stage=stage(status_model, "active"))

    again, _, created = experiment_assign(experiment=experiment, customer=customer)

    assert (again, created) == (variant, False)


def test_assign_losing_a_race_returns_the_exposure_the_other_request_recorded(status_model, monkeypatch):
    experiment = started(status_model)
    customer = in_stage(status_model, "new", external_id="c-1")  # hashes to "new"
    control = experiment.variants.get(key="control")

    def concurrent_request_wins(*, experiment, customer):
        # Another request records the exposure between this one's read and its insert.
        Exposure.objects.create(experiment=experiment, customer=customer, variant=control, exposed_at=at("2024-03-05"))

    monkeypatch.setattr(assignment_module, "customer_ineligibility", concurrent_request_wins)

    variant, exposure, created = experiment_assign(experiment=experiment, customer=customer)

    assert (variant, created, exposure.exposed_at) == (control, False, at("2024-03-05"))
    assert Exposure.objects.count() == 1


# --- results --------------------------------------------------------------------------------------


@pytest.fixture
def order_history(status_model) -> Experiment:
    """Exposures and orders inside and outside a 10-day window (see the comments for which count)."""
    experiment = started(status_model)
    day = at("2024-03-01")  # noon
    a = exposed(experiment, "control", day)
    OrderFactory(customer=a, placed_at=at("2024-03-05"))  # converted
    b = exposed(experiment, "control", day)
    OrderFactory(customer=b, placed_at=at("2024-02-28"))  # before the exposure: no
    c = exposed(experiment, "control", day)
    OrderFactory(customer=c, placed_at=day + timedelta(days=10))  # the window is half-open: no
    i = exposed(experiment, "control", day)
    OrderFactory(customer=i, placed_at=at("2024-03-14"))  # after the window: no
    j = exposed(experiment, "control", at("2024-03-10"))
    OrderFactory(customer=j, placed_at=at("2024-03-16"))  # converted, but only after 2024-03-15
    d = exposed(experiment, "new", day)
    OrderFactory(customer=d, placed_at=day)  # at the exposure moment: converted
    e = exposed(experiment, "new", day)
    OrderFactory(customer=e, placed_at=at("2024-03-03"), status=OrderStatus.CANCELLED)  # cancelled: no
    f = exposed(experiment, "new", day)
    OrderFactory(customer=f, placed_at=at("2024-03-02"))
    OrderFactory(customer=f, placed_at=at("2024-03-04"))  # two orders: one conversion
    g = exposed(experiment, "new", at("2024-03-02"))
    OrderFactory(customer=g, placed_at=at("2024-03-12", 11))  # last hour of the window: converted
    exposed(experiment, "new", at("2024-03-20"))  # exposed after 2024-03-15
    return experiment_get(key=experiment.key)


def test_results_count_orders_within_the_window_after_exposure(order_history):
    results = experiment_results(experiment=order_history, as_of=at("2024-03-15", 23))

    control, new = results["variants"]
    assert (control["key"], control["exposed"], control["converted"]) == ("control", 5, 1)
    assert (new["key"], new["exposed"], new["converted"]) == ("new", 4, 3)
    assert control["conversion_rate"] == pytest.approx(0.2) and new["conversion_rate"] == pytest.approx(0.75)
    assert new["uplift"]["absolute"]["estimate"] == pytest.approx(0.55)
    assert new["uplift"]["relative"]["estimate"] == pytest.approx(0.75 / 0.2 - 1)
    z, p = pooled_z(1, 5, 3, 4)
    assert (new["z"], new["p_value"]) == pytest.approx((z, p))
    assert control["uplift"] is None and control["p_value"] is None
    assert results["test"] == {"method": "z-test", "statistic": new["z"], "p_value": new["p_value"], "dof": None}
    assert results["state"] == "not_enough_data" and "at least 30" in results["state_reason"]
    assert new["significant"] is None  # not judged without enough data


def test_results_without_as_of_include_everything_up_to_now(order_history):
    results = experiment_results(experiment=order_history)

    assert [(v["exposed"], v["converted"]) for v in results["variants"]] == [(5, 2), (5, 3)]


def test_results_of_a_stage_goal_count_transitions_into_the_goal_stage_within_the_window(status_model):
    experiment = started(status_model, goal="reach_stage", goal_stage=stage(status_model, "active"))
    day = at("2024-03-01")
    reached = exposed(experiment, "control", day)
    transitions_record(status_model, reached, [("new", "2024-02-01"), ("active", "2024-03-05")])
    elsewhere = exposed(experiment, "control", day)
    transitions_record(status_model, elsewhere, [("new", "2024-02-01"), ("inactive", "2024-03-05")])
    before = exposed(experiment, "new", day)
    transitions_record(status_model, before, [("active", "2024-02-15"), ("new", "2024-02-20")])
    late = exposed(experiment, "new", day)
    transitions_record(status_model, late, [("new", "2024-02-01"), ("active", "2024-03-20")])
    ordered = exposed(experiment, "new", day)
    OrderFactory(customer=ordered, placed_at=at("2024-03-02"))  # an order is not the goal here

    results = experiment_results(experiment=experiment_get(key=experiment.key), as_of=at("2024-04-01"))

    assert [(v["exposed"], v["converted"]) for v in results["variants"]] == [(2, 1), (3, 0)]
    assert results["goal_stage"] == "active"
    assert results["variants"][1]["uplift"]["relative"] is None  # no conversion in the variant


def test_results_are_provisional_while_running_below_the_planned_sample_size(status_model):
    experiment = started(status_model)  # minimum detectable effect 2 points: thousands per variant
    cohort(experiment, "control", exposed=200, converted=20, prefix="a")
    cohort(experiment, "new", exposed=200, converted=50, prefix="b")

    results = experiment_results(experiment=experiment_get(key=experiment.key), as_of=at("2024-04-01"))

    assert results["state"] == "running"
    assert results["sample_size"]["baseline_rate"] == pytest.approx(0.1)
    needed = results["sample_size"]["per_variant"]
    assert needed > 200
    assert results["sample_size"]["still_needed"] == 2 * (needed - 200)
    assert [v["still_needed"] for v in results["variants"]] == [needed - 200] * 2
    assert results["variants"][1]["significant"] is True  # shown, but the state says it is provisional


def test_results_are_significant_once_the_planned_sample_size_is_reached(status_model):
    experiment = started(status_model, minimum_detectable_effect=0.1)
    cohort(experiment, "control", exposed=200, converted=20, prefix="a")
    cohort(experiment, "new", exposed=200, converted=50, prefix="b")

    results = experiment_results(experiment=experiment_get(key=experiment.key), as_of=at("2024-04-01"))

    # Fleiss: p1 = 0.1, p2 = 0.2, p̄ = 0.15 → n = (1.96·√(2·0.15·0.85) + 0.8416·√(0.09 + 0.16))² / 0.01 = 198.96
    assert results["sample_size"]["per_variant"] == 199
    assert results["sample_size"]["still_needed"] == 0
    z, p = pooled_z(20, 200, 50, 200)
    assert results["test"]["p_value"] == pytest.approx(p)
    assert results["state"] == "significant" and p < 0.05


def test_results_of_a_stopped_experiment_without_a_difference_are_not_significant(status_model):
    experiment = started(status_model)
    cohort(experiment, "control", exposed=100, converted=20, prefix="a")
    cohort(experiment, "new", exposed=100, converted=22, prefix="b")
    experiment_stop(experiment=experiment, at=at("2024-03-20"))

    results = experiment_results(experiment=experiment, as_of=at("2024-04-01"))

    assert results["state"] == "not_significant"
    assert "short of the planned sample size" in results["state_reason"]
    assert results["variants"][1]["significant"] is False


def test_results_of_three_variants_use_the_chi_square_test_across_all(status_model):
    experiment = started(status_model, variants=WEIGHTED)
    cohort(experiment, "control", exposed=100, converted=10, prefix="a")
    cohort(experiment, "ten-percent", exposed=100, converted=20, prefix="b")
    cohort(experiment, "free-shipping", exposed=100, converted=30, prefix="c")
    experiment_stop(experiment=experiment, at=at("2024-03-20"))

    results = experiment_results(experiment=experiment_get(key=experiment.key), as_of=at("2024-04-01"))

    # expected at the pooled 20 %: 20 converted and 80 not per variant
    statistic = (10**2 / 20 + 0 + 10**2 / 20) + (10**2 / 80 + 0 + 10**2 / 80)
    assert results["test"]["method"] == "chi-square" and results["test"]["dof"] == 2
    assert results["test"]["statistic"] == pytest.approx(statistic)
    assert results["test"]["p_value"] == pytest.approx(math.exp(-statistic / 2))
    assert results["state"] == "significant"
    free = results["variants"][2]
    assert free["p_value"] == pytest.approx(pooled_z(10, 100, 30, 100)[1])  # each variant vs control


def test_with_several_variants_significance_is_judged_on_holm_adjusted_p_values(status_model):
    experiment = started(status_model, variants=WEIGHTED)
    cohort(experiment, "control", exposed=100, converted=10, prefix="a")
    cohort(experiment, "ten-percent", exposed=100, converted=20, prefix="b")
    cohort(experiment, "free-shipping", exposed=100, converted=11, prefix="c")
    experiment_stop(experiment=experiment, at=at("2024-03-20"))

    results = experiment_results(experiment=experiment_get(key=experiment.key), as_of=at("2024-04-01"))

    control, ten, free = results["variants"]
    raw_ten, raw_free = pooled_z(10, 100, 20, 100)[1], pooled_z(10, 100, 11, 100)[1]
    assert raw_ten < 0.05  # alone it would pass
    assert ten["p_value"] == pytest.approx(raw_ten) and ten["p_value_adjusted"] == pytest.approx(2 * raw_ten)
    assert free["p_value_adjusted"] == pytest.approx(raw_free)  # the larger p: × 1, and not below the one before
    assert ten["significant"] is False and free["significant"] is False
    assert control["p_value_adjusted"] is None


def test_results_of_a_draft_have_not_enough_data(status_model):
    results = experiment_results(experiment=create(status_model))

    assert results["state"] == "not_enough_data"
    assert results["sample_size"] == {"baseline_rate": None, "per_variant": None, "still_needed": None}
    assert results["test"]["p_value"] is None
    assert [v["conversion_rate"] for v in results["variants"]] == [None, None]


@pytest.mark.parametrize("customers", [10, 300])
def test_results_run_one_query_whatever_the_number_of_customers(status_model, django_assert_max_num_queries, customers):
    experiment = started(status_model, variants=WEIGHTED)
    for key in ("control", "ten-percent", "free-shipping"):
        cohort(experiment, key, exposed=customers, converted=customers // 3, prefix=key)
    experiment = experiment_get(key=experiment.key)

    with django_assert_max_num_queries(1):
        results = experiment_results(experiment=experiment)

    assert sum(v["exposed"] for v in results["variants"]) == 3 * customers


# --- API ------------------------------------------------------------------------------------------


def post(client, url: str, payload=None):
    return client.post(url, data=json.dumps(payload or {}), content_type="application/json")


def a_payload(**overrides) -> dict:
    return {
        "key": "checkout-banner",
        "name": "Checkout banner",
        "model": "status",
        "stage": "new",
        "goal": "place_order",
        "window_days": 30,
        "minimum_detectable_effect": 0.2,
        "variants": [{"key": "control", "name": "Current", "is_control": True}, {"key": "new", "name": "New"}],
        **overrides,
    }


def test_api_creates_an_experiment(writer, status_model):
    response = post(writer, "/api/v1/experiments/", a_payload(channel="email", hypothesis="A banner helps."))

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["key"] == "checkout-banner" and body["status"] == "draft"
    assert (body["model"], body["stage"], body["channel"], body["goal_stage"]) == ("status", "new", "email", None)
    assert body["variants"] == [
        {"key": "control", "name": "Current", "weight": 1, "is_control": True},
        {"key": "new", "name": "New", "weight": 1, "is_control": False},
    ]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"variants": [{"key": "a", "weight": 0, "is_control": True}, {"key": "b", "weight": 0}]}, "variants"),
        ({"variants": [{"key": "a", "is_control": True}]}, "variants"),
        ({"variants": [{"key": "a"}, {"key": "b"}]}, "variants"),
        ({"variants": [{"key": "a", "weight": -2, "is_control": True}, {"key": "b"}]}, "variants"),
        ({"variants": "two"}, "variants"),
        ({"goal": "reach_stage", "goal_stage": "advocacy"}, "goal_stage"),  # a stage of the ecommerce model
        ({"goal": "reach_stage"}, "goal_stage"),
        ({"stage": "retention"}, "stage"),
        ({"model": "nope"}, "model"),
        ({"channel": "carrier-pigeon"}, "channel"),
        ({"goal": "win"}, "goal"),
        ({"window_days": 0}, "window_days"),
        ({"alpha": 2}, "alpha"),
        ({"key": "bad key!"}, "key"),
        ({"name": ""}, "name"),
    ],
)
def test_api_create_refuses_bad_input_naming_the_field_and_writes_nothing(writer, status_model, overrides, field):
    template_install(key="ecommerce")

    response = post(writer, "/api/v1/experiments/", a_payload(**overrides))

    assert response.status_code == 400
    assert any(re.match(rf"{field}\b", name) for name in error_fields(response)), response.json()
    assert not Experiment.objects.exists() and not Variant.objects.exists()


def test_api_create_refuses_a_key_in_use(writer, status_model):
    post(writer, "/api/v1/experiments/", a_payload())

    response = post(writer, "/api/v1/experiments/", a_payload(name="Other"))

    assert response.status_code == 400 and "key" in error_fields(response)


def test_api_create_needs_the_write_scope(reader, status_model):
    assert post(reader, "/api/v1/experiments/", a_payload()).status_code == 403
    assert not Experiment.objects.exists()


def test_api_lists_and_shows_experiments(reader, status_model, django_assert_max_num_queries):
    create(status_model)
    create(status_model, key="winback-offer", variants=WEIGHTED)

    with django_assert_max_num_queries(6):
        listed = reader.get("/api/v1/experiments/")
    detail = reader.get("/api/v1/experiments/winback-offer/")

    assert listed.status_code == 200
    assert {e["key"] for e in listed.json()} == {"checkout-banner", "winback-offer"}
    assert detail.status_code == 200 and len(detail.json()["variants"]) == 3
    assert reader.get("/api/v1/experiments/nope/").status_code == 404


def test_api_start_and_stop(writer, status_model):
    create(status_model)

    stop_draft = post(writer, "/api/v1/experiments/checkout-banner/stop/")
    start = post(writer, "/api/v1/experiments/checkout-banner/start/")
    start_again = post(writer, "/api/v1/experiments/checkout-banner/start/")
    stop = post(writer, "/api/v1/experiments/checkout-banner/stop/")

    assert stop_draft.status_code == 409 and "only a running experiment" in stop_draft.json()["detail"]
    assert start.status_code == 200 and start.json()["status"] == "running" and start.json()["started_at"]
    assert start_again.status_code == 409
    assert stop.status_code == 200 and stop.json()["status"] == "stopped"
    assert post(writer, "/api/v1/experiments/nope/start/").status_code == 404


def test_api_start_needs_the_write_scope(reader, status_model):
    create(status_model)

    assert post(reader, "/api/v1/experiments/checkout-banner/start/").status_code == 403


def test_api_assignment_is_idempotent(reader, status_model, django_assert_max_num_queries):
    started(status_model)
    in_stage(status_model, "new", external_id="c-3")
    url = "/api/v1/experiments/checkout-banner/assignment/c-3/"

    with django_assert_max_num_queries(12):
        first = reader.get(url)
    second = reader.get(url)

    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["state"] == "assigned" and first.json()["variant"] == "control"
    assert first.json()["new_exposure"] is True and second.json()["new_exposure"] is False
    assert first.json()["exposed_at"] == second.json()["exposed_at"]
    assert Exposure.objects.count() == 1


def test_api_assignment_of_unknown_customer_or_experiment_is_404(reader, status_model):
    started(status_model)
    in_stage(status_model, "new", external_id="c-1")

    unknown_customer = reader.get("/api/v1/experiments/checkout-banner/assignment/ghost/")
    unknown_experiment = reader.get("/api/v1/experiments/nope/assignment/c-1/")

    assert unknown_customer.status_code == 404 and "ghost" in unknown_customer.json()["detail"]
    assert unknown_experiment.status_code == 404 and "nope" in unknown_experiment.json()["detail"]
    assert not Exposure.objects.exists()


def test_api_assignment_of_an_ineligible_customer_says_why(reader, status_model):
    started(status_model)
    in_stage(status_model, "active", external_id="c-1")

    response = reader.get("/api/v1/experiments/checkout-banner/assignment/c-1/")

    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["variant"], body["new_exposure"]) == ("ineligible", None, False)
    assert "not in the stage 'new'" in body["reason"]
    assert not Exposure.objects.exists()


def test_api_assignment_after_the_stop(reader, writer, status_model):
    started(status_model)
    in_stage(status_model, "new", external_id="c-1")
    in_stage(status_model, "new", external_id="c-2")
    before = reader.get("/api/v1/experiments/checkout-banner/assignment/c-1/").json()
    post(writer, "/api/v1/experiments/checkout-banner/stop/")

    recorded = reader.get("/api/v1/experiments/checkout-banner/assignment/c-1/").json()
    never = reader.get("/api/v1/experiments/checkout-banner/assignment/c-2/").json()

    assert (recorded["state"], recorded["variant"], recorded["new_exposure"]) == ("assigned", before["variant"], False)
    assert (never["state"], never["variant"]) == ("stopped", None) and "has stopped" in never["reason"]
    assert Exposure.objects.count() == 1


def test_api_assignment_of_a_draft_is_a_conflict(reader, status_model):
    create(status_model)
    in_stage(status_model, "new", external_id="c-1")

    response = reader.get("/api/v1/experiments/checkout-banner/assignment/c-1/")

    assert response.status_code == 409 and "not started" in response.json()["detail"]


def test_api_results_refuse_a_bad_as_of(reader, status_model):
    create(status_model)

    response = reader.get("/api/v1/experiments/checkout-banner/results/?as_of=yesterday")

    assert response.status_code == 400 and "as_of" in error_fields(response)
    assert reader.get("/api/v1/experiments/nope/results/").status_code == 404


def test_experiment_end_to_end_through_the_api(writer, reader, status_model, django_assert_max_num_queries):
    created = post(writer, "/api/v1/experiments/", a_payload())
    assert created.status_code == 201
    assert post(writer, "/api/v1/experiments/checkout-banner/start/").status_code == 200
    for i in range(200):
        in_stage(status_model, "new", external_id=f"shop-{i}")
    in_stage(status_model, "active", external_id="regular")

    variant_of = {}
    for i in range(200):
        answer = reader.get(f"/api/v1/experiments/checkout-banner/assignment/shop-{i}/").json()
        variant_of[f"shop-{i}"] = answer["variant"]
    assert reader.get("/api/v1/experiments/checkout-banner/assignment/regular/").json()["state"] == "ineligible"

    # Outcomes arrive through the ingestion API: 1 in 10 control customers orders, every second new-banner customer;
    # a cancelled order and an order by the ineligible customer change nothing.
    groups = {key: sorted(c for c, v in variant_of.items() if v == key) for key in ("control", "new")}
    buyers = groups["control"][::10] + groups["new"][::2]
    now = timezone.now().isoformat()
    orders = [
        {"external_id": f"order-{c}", "customer_external_id": c, "placed_at": now, "amount": "30.00"} for c in buyers
    ]
    orders.append(
        {
            "external_id": "cancelled",
            "customer_external_id": groups["new"][1],
            "placed_at": now,
            "amount": "30.00",
            "status": "cancelled",
        }
    )
    orders.append({"external_id": "regular", "customer_external_id": "regular", "placed_at": now, "amount": "9.00"})
    assert post(writer, "/api/v1/orders/", orders).status_code == 201

    with django_assert_max_num_queries(8):
        response = reader.get("/api/v1/experiments/checkout-banner/results/")

    assert response.status_code == 200
    body = response.json()
    control, new = body["variants"]
    expected = {
        key: (len(groups[key]), len(groups[key][:: 10 if key == "control" else 2])) for key in ("control", "new")
    }
    assert (control["exposed"], control["converted"]) == expected["control"]
    assert (new["exposed"], new["converted"]) == expected["new"]
    z, p = pooled_z(*expected["control"][::-1], *expected["new"][::-1])
    assert new["p_value"] == pytest.approx(p) and body["test"]["p_value"] == pytest.approx(p)
    assert new["uplift"]["absolute"]["low"] > 0
    assert body["sample_size"]["still_needed"] == 0  # a 20-point effect needs far fewer than ~100 per variant
    assert body["state"] == "significant"


def test_api_writes_are_audited_with_the_person_or_without_a_user_for_an_api_key(client, writer, status_model):
    admin = User.objects.create_user("ada", password="a-long-password-1")
    admin.groups.add(Group.objects.get(name="admin"))
    client.force_login(admin)

    assert post(client, "/api/v1/experiments/", a_payload()).status_code == 201
    assert post(writer, "/api/v1/experiments/checkout-banner/start/").status_code == 200

    history = Experiment.objects.get().history.order_by("history_date")
    assert [(h.status, h.history_user) for h in history] == [("draft", admin), ("running", None)]


def test_the_admin_refuses_an_experiment_without_a_control(admin_client):
    model = LifecycleModel.objects.get(key="status")
    stage = model.stages.get(key="new")
    response = admin_client.post(
        "/admin/campaigns/experiment/add/",
        {
            "key": "admin-test",
            "name": "Admin test",
            "model": model.pk,
            "stage": stage.pk,
            "goal": "place_order",
            "window_days": 30,
            "minimum_detectable_effect": 0.02,
            "power": 0.8,
            "alpha": 0.05,
            "status": "draft",
            "variants-TOTAL_FORMS": 2,
            "variants-INITIAL_FORMS": 0,
            "variants-MIN_NUM_FORMS": 2,
            "variants-MAX_NUM_FORMS": 1000,
            "variants-0-key": "a",
            "variants-0-name": "A",
            "variants-0-weight": 1,
            "variants-1-key": "b",
            "variants-1-name": "B",
            "variants-1-weight": 1,
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "Exactly one variant must be the control" in response.content.decode()
    assert not Experiment.objects.filter(key="admin-test").exists()
