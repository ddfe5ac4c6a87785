"""The channel-plans page (clm/channel_plans.py): the matrix with each plan and the measured effectiveness, the cell
editor, and the as-of day."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from campaigns.effectiveness import channel_effectiveness_compute
from campaigns.models import ChannelPlan
from campaigns.plans import channel_plan_create
from clm.base.days import day_end, day_start
from lifecycle.models import Channel
from tests.factories import CustomerFactory, TouchpointFactory, transitions_record
from tests.pages import cell_effect, days_ago, stage, user_client

pytestmark = pytest.mark.django_db

MAX_PLAN_QUERIES = 12  # session, user, groups, the model selector; the model, the matrix (3), the stored effectiveness


@pytest.fixture
def recent_history(status_model):
    """Prospects in the last 90 days: two touched by email (one advanced to new), two untouched (one advanced)."""
    email = Channel.objects.get(key="email")
    for name, path, touched in [
        ("ann", [("prospect", days_ago(80)), ("new", days_ago(70))], days_ago(75)),
        ("ben", [("prospect", days_ago(80))], days_ago(60)),
        ("cat", [("prospect", days_ago(40)), ("new", days_ago(30))], None),
        ("dan", [("prospect", days_ago(40))], None),
    ]:
        customer = CustomerFactory(external_id=name, first_seen_at=days_ago(100))
        transitions_record(status_model, customer, path)
        if touched:
            TouchpointFactory(customer=customer, channel=email, occurred_at=touched)
    return status_model


def test_the_plan_matrix_shows_each_plan_and_the_channel_effectiveness(
    viewer, recent_history, django_assert_max_num_queries, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)  # the page's "today" is the test's, even at midnight
    model = recent_history
    channel_plan_create(
        stage=stage(model, "prospect"),
        channel=Channel.objects.get(key="email"),
        objective="Welcome series",
        kpi="first order rate (%)",
        kpi_target=Decimal("12.5"),
        owner="CRM team",
    )
    viewer.get("/models/status/plans/")  # computes and stores the effectiveness snapshot
    with django_assert_max_num_queries(MAX_PLAN_QUERIES):
        response = viewer.get("/models/status/plans/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Welcome series" in page and "first order rate (%)" in page and "12.5" in page and "CRM team" in page
    cell = next(
        c for c in response.context["effectiveness"]["cells"] if (c["stage"], c["channel"]) == ("prospect", "email")
    )
    today = timezone.now().date()
    expected = channel_effectiveness_compute(
        model=model,
        start=day_start(today - timedelta(days=89)),
        end=day_end(today),
        window_days=30,
    )
    assert cell == next(c for c in expected["cells"] if (c["stage"], c["channel"]) == ("prospect", "email"))
    assert (cell["treated"], cell["treated_advanced"]) == (2, 1)
    # Touched and not touched are both 1 of 2 here: each is read from its own <dd>, not found anywhere in the page.
    effect = cell_effect(page, "prospect", "email")
    assert effect["Touched"].endswith(f"({cell['treated_advanced']}/{cell['treated']})")
    assert effect["Not touched"].endswith(f"({cell['untreated_advanced']}/{cell['untreated']})")
    # Viewers read; they get no edit forms.
    main = page.split("<main>")[1]
    assert 'action="/models/status/plans/prospect/email/' not in page and 'method="post"' not in main


def test_the_plans_link_goes_to_the_default_model(viewer, status_model):
    response = viewer.get("/plans/")
    assert response.status_code == 302 and response["Location"] == "/models/status/plans/"


def test_a_marketer_edits_a_plan_cell_in_place(marketer, status_model):
    page = marketer.get("/models/status/plans/").content.decode()
    assert 'action="/models/status/plans/active/email/#cell-active-email"' in page and "csrfmiddlewaretoken" in page
    data = {"objective": "Keep active customers buying", "kpi": "repeat rate (%)", "kpi_target": "30", "active": "on"}
    response = marketer.post("/models/status/plans/active/email/", data)
    assert response.status_code == 302 and response["Location"] == "/models/status/plans/#cell-active-email"
    plan = ChannelPlan.objects.get(stage__model=status_model, stage__key="active", channel__key="email")
    assert (plan.objective, plan.kpi_target, plan.active) == ("Keep active customers buying", Decimal("30"), True)
    assert plan.history.count() == 1 and plan.history.first().history_user.username == "mia"

    response = marketer.post("/models/status/plans/active/email/", {**data, "owner": "CRM team"}, follow=True)
    plan.refresh_from_db()
    assert plan.owner == "CRM team" and plan.history.count() == 2
    assert "Saved the plan" in response.content.decode()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"objective": "  ", "kpi_target": "30"}, "objective"),
        ({"objective": "Grow", "kpi_target": "30 %"}, "kpi_target"),
    ],
)
def test_an_invalid_plan_shows_the_errors_in_the_cell_and_saves_nothing(marketer, status_model, data, field):
    response = marketer.post("/models/status/plans/new/email/", data)
    assert response.status_code == 400
    form = next(c["form"] for r in response.context["rows"] for c in r["cells"] if c["open"])
    assert field in form.errors
    page = response.content.decode()
    assert "<details open>" in page and 'class="errorlist"' in page and 'role="alert"' in page
    assert not ChannelPlan.objects.exists() and not ChannelPlan.history.exists()


def test_a_viewer_cannot_post_a_plan(viewer, status_model):
    response = viewer.post("/models/status/plans/new/email/", {"objective": "Grow"})
    assert response.status_code == 403
    assert not ChannelPlan.objects.exists()


def test_a_plan_post_without_csrf_token_is_refused(status_model):
    client = user_client("mia", "marketer", csrf=True)
    response = client.post("/models/status/plans/new/email/", {"objective": "Grow"})
    assert response.status_code == 403
    assert not ChannelPlan.objects.exists()


def test_the_cell_page_shows_the_plan_and_its_form(marketer, status_model):
    response = marketer.get("/models/status/plans/new/email/")
    assert response.status_code == 200 and 'name="objective"' in response.content.decode()


def test_unknown_models_stages_and_channels_are_404(marketer, status_model):
    assert marketer.get("/models/nope/plans/").status_code == 404
    assert marketer.get("/models/status/plans/nope/email/").status_code == 404
    assert marketer.post("/models/status/plans/new/nope/", {"objective": "x"}).status_code == 404
    Channel.objects.filter(key="email").update(active=False)
    assert marketer.post("/models/status/plans/new/email/", {"objective": "x"}).status_code == 404


@pytest.mark.parametrize(("as_of", "message"), [("1998-02-30", "not a date"), ("2999-01-01", "in the future")])
def test_the_plan_page_says_when_its_as_of_day_cannot_be_used(client, as_of, message):
    viewer = User.objects.create_user("vic", password="a-long-password-1")
    viewer.groups.add(Group.objects.get(name="viewer"))
    client.force_login(viewer)
    response = client.get("/models/status/plans/", {"as_of": as_of})
    assert response.status_code == 200 and message in response.content.decode()


def test_the_plan_page_measures_effectiveness_over_the_90_days_ending_as_of(client):
    viewer = User.objects.create_user("vic", password="a-long-password-1")
    viewer.groups.add(Group.objects.get(name="viewer"))
    client.force_login(viewer)
    response = client.get("/models/status/plans/", {"as_of": "1998-06-30"})
    assert response.context["period"] == {"start": "1998-04-02", "end": "1998-06-30"}
