"""Benchmarks and goals are edited by admins in the admin (with audit history); marketers may only look."""

import pytest
from django.contrib.auth.models import Group, User

from metrics.models import MetricTarget

pytestmark = pytest.mark.django_db


def _staff(role: str) -> User:
    user = User.objects.create_user(role, password="a-long-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def _form(target: MetricTarget, goal: str) -> dict:
    return {
        "metric": target.metric,
        "label": target.label,
        "direction": target.direction,
        "benchmark": target.benchmark if target.benchmark is not None else "",
        "benchmark_source": target.benchmark_source,
        "goal": goal,
    }


def test_an_admin_sets_a_goal_and_the_change_is_in_its_history(client):
    client.force_login(_staff("admin"))
    target = MetricTarget.objects.get(metric="repeat_purchase_rate")
    response = client.post(f"/admin/metrics/metrictarget/{target.pk}/change/", _form(target, "0.35"))
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.goal == 0.35
    assert target.history.first().history_user.username == "admin"


def test_a_marketer_cannot_change_a_goal(client):
    client.force_login(_staff("marketer"))
    target = MetricTarget.objects.get(metric="repeat_purchase_rate")
    response = client.post(f"/admin/metrics/metrictarget/{target.pk}/change/", _form(target, "0.99"))
    assert response.status_code == 403
    target.refresh_from_db()
    assert target.goal is None


def test_a_benchmark_without_its_source_is_refused_in_the_form(client):
    client.force_login(_staff("admin"))
    target = MetricTarget.objects.get(metric="churn_rate")
    data = {**_form(target, ""), "benchmark": "0.05", "benchmark_source": ""}
    response = client.post(f"/admin/metrics/metrictarget/{target.pk}/change/", data)
    assert response.status_code == 200  # the form again, with the error
    target.refresh_from_db()
    assert target.benchmark is None
