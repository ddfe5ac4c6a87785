import pytest
from django.db import IntegrityError, transaction

from lifecycle.models import LifecycleModel
from metrics.models import MetricTarget
from metrics.targets import below_target, conversion_metric, funnel_targets, rates_with_targets

pytestmark = pytest.mark.django_db


def test_migrate_ships_a_target_per_rate_with_a_sourced_benchmark_or_none():
    targets = {target.metric: target for target in MetricTarget.objects.all()}
    assert {"conversion_rate", "repeat_purchase_rate", "retention_rate", "churn_rate", "nps"} <= set(targets)
    assert targets["repeat_purchase_rate"].benchmark == 0.28
    assert "metrilo.com" in targets["repeat_purchase_rate"].benchmark_source
    assert targets["churn_rate"].direction == MetricTarget.Direction.LOWER
    for target in targets.values():
        assert target.goal is None  # goals are the retailer's own
        assert target.benchmark is None or target.benchmark_source


def test_a_benchmark_without_a_source_is_refused_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        MetricTarget.objects.create(metric="x", label="x", benchmark=0.5, benchmark_source="")


def test_funnel_targets_are_read_per_step_of_the_model():
    model = LifecycleModel.objects.get(key="status")
    MetricTarget.objects.create(metric=conversion_metric(model_key="status", stage_key="new"), label="n", goal=0.4)
    MetricTarget.objects.create(metric=conversion_metric(model_key="other", stage_key="new"), label="o", goal=0.9)
    assert funnel_targets(model=model) == {"new": (0.4, None)}


def test_a_rate_below_its_goal_or_benchmark_is_flagged_and_lower_is_better_for_churn():
    MetricTarget.objects.filter(metric="churn_rate").update(goal=0.05)
    MetricTarget.objects.filter(metric="retention_rate").update(goal=0.5)
    result = rates_with_targets(
        {
            "rates": {
                "churn_rate": {"value": 0.08},
                "retention_rate": {"value": 0.6},
                "repeat_purchase_rate": {"value": 0.2},
                "referral_rate": {"value": None},
            }
        }
    )["rates"]
    assert result["churn_rate"]["below_goal"] is True  # 8% churn misses a 5% goal
    assert result["retention_rate"]["below_goal"] is False
    assert result["repeat_purchase_rate"]["below_benchmark"] is True  # 20% < 28%
    assert result["repeat_purchase_rate"]["benchmark_source"]
    assert result["referral_rate"]["below_goal"] is False


def test_missing_values_or_targets_miss_nothing():
    assert below_target(None, 0.5, "higher") is False
    assert below_target(0.1, None, "higher") is False
    assert below_target(0.1, 0.5, "higher") is True
    assert below_target(0.1, 0.05, "lower") is True
