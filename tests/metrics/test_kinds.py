"""The metric registry: each kind's result type is what its computation stores, and what the API schema shows.

The stored results are checked against the registered TypedDicts on a history rich enough that every nested shape
occurs (every list has an item, RFM has its movement), so a key added, dropped or retyped in a compute function
without its TypedDict fails here.
"""

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from types import NoneType, UnionType
from typing import Any, TypedDict, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest
from drf_spectacular.generators import SchemaGenerator

from campaigns.models import MarketingSpend
from clm.base.days import day_end
from lifecycle.models import Channel, Customer, LifecycleModel
from lifecycle.services import model_reclassify
from metrics.cac import CacResult
from metrics.filters import MetricFilters
from metrics.kinds import KINDS
from metrics.models import MetricSnapshot
from metrics.services import metric_result
from tests.factories import FeedbackFactory, TouchpointFactory, at
from tests.metrics.test_clv import history_create

AS_OF = day_end(date(2024, 6, 30))
# clv_accuracy stores no default snapshot: the parameters of the API's request.
REQUESTED = {"clv_accuracy": [{"calibration_end": date(2024, 3, 31), "holdout_end": date(2024, 6, 30)}]}
WITH_ENDPOINT = sorted(name for name, kind in KINDS.items() if kind.input is not None)


def shape_problems(value: Any, hint: Any, where: str = "result", seen: set | None = None) -> list[str]:
    """Where `value` (JSON as stored) differs from the type `hint`: a missing or undeclared key of a TypedDict, or a
    value of another type. Every TypedDict met on the way is added to `seen`."""
    seen = set() if seen is None else seen
    origin, args = get_origin(hint), get_args(hint)
    if is_typeddict(hint):
        seen.add(hint)
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not an object"]
        hints = get_type_hints(hint)
        problems = [f"{where}: missing {key!r}" for key in sorted(hint.__required_keys__ - value.keys())]
        problems += [f"{where}: undeclared {key!r}" for key in sorted(value.keys() - hints.keys())]
        for key in sorted(value.keys() & hints.keys()):
            problems += shape_problems(value[key], hints[key], f"{where}.{key}", seen)
        return problems
    if origin in (Union, UnionType):
        if value is None and NoneType in args:
            return []
        (inner,) = [arg for arg in args if arg is not NoneType]
        return shape_problems(value, inner, where, seen)
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list"]
        return [
            problem for i, item in enumerate(value) for problem in shape_problems(item, args[0], f"{where}[{i}]", seen)
        ]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not an object"]
        return [
            problem for key, item in value.items() for problem in shape_problems(item, args[1], f"{where}.{key}", seen)
        ]
    if hint is float:  # a JSON number: 3 is as good as 3.0
        fits = type(value) in (int, float)
    elif hint in (int, str, bool):
        fits = type(value) is hint
    else:
        raise TypeError(f"{where}: no check for {hint!r}")
    return [] if fits else [f"{where}: {value!r} is not {hint.__name__}"]


def typed_dicts(hint: Any) -> set:
    """Every TypedDict in `hint`, nested ones included."""
    found = set()
    if is_typeddict(hint):
        found.add(hint)
        for inner in get_type_hints(hint).values():
            found |= typed_dicts(inner)
    for arg in get_args(hint):
        found |= typed_dicts(arg)
    return found


# --- the check itself ------------------------------------------------------------------------------


class _Inner(TypedDict):
    count: int
    share: float | None


class _Outer(TypedDict):
    name: str
    rows: list[_Inner]


def test_the_shape_check_finds_missing_undeclared_and_mistyped_keys():
    good = {"name": "a", "rows": [{"count": 1, "share": None}, {"count": 2, "share": 0.5}]}
    seen: set = set()
    assert shape_problems(good, _Outer, seen=seen) == [] and seen == {_Outer, _Inner}

    assert shape_problems({"name": "a", "rows": [{"count": 1}]}, _Outer) == ["result.rows[0]: missing 'share'"]
    assert shape_problems({**good, "extra": 1}, _Outer) == ["result: undeclared 'extra'"]
    assert shape_problems({"name": "a", "rows": [{"count": 1.5, "share": "x"}]}, _Outer) == [
        "result.rows[0].count: 1.5 is not int",
        "result.rows[0].share: 'x' is not float",
    ]


# --- the registry -----------------------------------------------------------------------------------


def test_a_kind_whose_compute_returns_another_type_is_refused():
    with pytest.raises(TypeError, match="registers .*CacResult"):
        dataclasses.replace(KINDS["funnel"], result=CacResult)


def test_every_kind_but_channel_effectiveness_has_an_endpoint_in_the_metrics_api():
    # campaigns' API serves channel effectiveness (computed live); campaigns may not import metrics.
    assert set(KINDS) - set(WITH_ENDPOINT) == {"channel_effectiveness"}


@pytest.fixture
def history(db) -> LifecycleModel:
    """80 buyers of January–June 2024 (tests.metrics.test_clv), classified monthly in `status`, half of them
    acquired by email (with spend), with NPS answers and touchpoints."""
    customers = history_create()
    email = Channel.objects.get(key="email")
    Customer.objects.filter(pk__in=[customer.pk for customer in customers[::2]]).update(acquisition_channel=email)
    MarketingSpend.objects.create(channel=email, period="month", date=date(2024, 2, 1), amount=Decimal("300"))
    for score, customer in zip([10, 9, 8, 5, 2], customers, strict=False):
        FeedbackFactory(customer=customer, score=score, submitted_at=at("2024-05-02"))
        TouchpointFactory(customer=customer, channel=email, occurred_at=at("2024-05-03"))
    model = LifecycleModel.objects.get(key="status")
    for month in range(1, 7):
        model_reclassify(model=model, as_of=datetime(2024, month, 28, 23, tzinfo=UTC))
    return model


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_stored_result_has_exactly_the_shape_its_registered_type_declares(history, name):
    kind = KINDS[name]
    requests = REQUESTED.get(name) or kind.snapshots(AS_OF)
    seen: set = set()
    for params in requests:
        snapshot, _ = metric_result(
            kind=name, model=history if kind.per_model else None, filters=MetricFilters(as_of=AS_OF), params=params
        )
        stored = MetricSnapshot.objects.get(pk=snapshot.pk).result  # as JSON, read back from the database
        assert shape_problems(stored, kind.result, seen=seen) == [], params
    # Every nested shape was there to check: no list of the result was empty.
    assert seen == typed_dicts(kind.result)


# --- the schema -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _component(schema: dict, ref: dict) -> dict:
    return schema["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]


def _schema_keys_problems(component: dict, hint: Any, where: str) -> list[str]:
    """Where the schema's objects have other properties (or required ones) than the TypedDicts in `hint`."""
    if is_typeddict(hint):
        hints = get_type_hints(hint)
        problems = []
        if set(component.get("properties", {})) != set(hints):
            problems.append(f"{where}: properties {sorted(component.get('properties', {}))} ≠ {sorted(hints)}")
        if set(component.get("required", [])) != hint.__required_keys__:
            problems.append(f"{where}: required {sorted(component.get('required', []))}")
        for key, inner in hints.items():
            if key in component.get("properties", {}):
                problems += _schema_keys_problems(component["properties"][key], inner, f"{where}.{key}")
        return problems
    if get_origin(hint) in (Union, UnionType):
        (inner,) = [arg for arg in get_args(hint) if arg is not NoneType]
        return _schema_keys_problems(component, inner, where)
    if get_origin(hint) is list:
        return _schema_keys_problems(component["items"], get_args(hint)[0], f"{where}[]")
    return []


@pytest.mark.parametrize("name", WITH_ENDPOINT)
def test_the_schema_shows_each_metrics_result_with_the_keys_of_its_type(schema, name):
    kind = KINDS[name]
    operations = [
        operation["get"]
        for operation in schema["paths"].values()
        if operation.get("get", {}).get("operationId") in (f"model_{name}", f"metrics_{name}")
    ]
    assert len(operations) == 1
    answer = _component(schema, operations[0]["responses"]["200"]["content"]["application/json"]["schema"])
    result_ref = answer["properties"]["result"]
    assert result_ref["$ref"].endswith(f"/{kind.result.__name__}")
    result = _component(schema, result_ref)
    assert set(result["properties"]) == set(get_type_hints(kind.result))
    assert _schema_keys_problems(result, kind.result, name) == []
