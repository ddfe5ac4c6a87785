import random
import re
from collections import Counter
from datetime import date, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Min

from campaigns.models import MarketingSpend, SpendPeriod
from clm.demo.parameters import ACQUISITION_KINDS, MONTHLY_COST
from clm.demo.seed import DemoSeedResult, demo_data_seed
from lifecycle.cdnow import CdnowFormat, cdnow_default_path, cdnow_import
from lifecycle.models import Channel, Customer, Feedback, Order, Touchpoint, TouchpointKind

pytestmark = pytest.mark.django_db

BUYERS = 30
CAMPAIGN_CODE = re.compile(r"^(winback|spring|summer|xmas)\d\d-(paid|email|app)$")
CODE_SUFFIX = {"paid_ads": "paid", "email": "email", "app_notifications": "app"}


def write_history(path: Path, *, customers: int = BUYERS) -> Path:
    """A small CDNOW-like file: first purchases in Q1 1997, repeat purchases until June 1998."""
    rng = random.Random(7)
    lines = [" customer_id  date number_of_cds  dollar_value"]
    for customer in range(1, customers + 1):
        day = date(1997, 1, 1) + timedelta(days=rng.randrange(90))
        while day <= date(1998, 6, 30):
            lines.append(f" {customer:05d} {day:%Y%m%d}  {rng.randint(1, 4)}   {rng.uniform(5, 80):.2f}")
            day += timedelta(days=rng.randrange(20, 250))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def history(tmp_path) -> Path:
    path = write_history(tmp_path / "cdnow.txt")
    cdnow_import(path=path)
    return path


def dump() -> dict[str, list]:
    """Every row the generator writes, by external ids (not primary keys, which differ between databases)."""
    return {
        "customers": sorted(
            Customer.objects.values_list(
                "external_id", "email", "name", "first_seen_at", "acquisition_channel__key", "referred_by__external_id"
            )
        ),
        "touchpoints": sorted(
            Touchpoint.objects.values_list(
                "external_id",
                "customer__external_id",
                "occurred_at",
                "channel__key",
                "kind",
                "campaign_code",
                "value",
                "properties",
            )
        ),
        "feedback": sorted(
            Feedback.objects.values_list("external_id", "customer__external_id", "score", "comment", "submitted_at")
        ),
        "spend": sorted(
            MarketingSpend.objects.values_list("channel__key", "campaign_code", "period", "date", "amount")
        ),
    }


def order_rows() -> list[tuple]:
    return sorted(
        Order.objects.values_list(
            "external_id",
            "customer__external_id",
            "placed_at",
            "amount",
            "status",
            "channel_id",
            "campaign_code",
            "created_at",
            "updated_at",
        )
    )


def first_orders() -> dict[int, object]:
    return dict(
        Order.objects.values("customer_id").annotate(first=Min("placed_at")).values_list("customer_id", "first")
    )


def test_the_same_seed_on_a_fresh_database_gives_the_same_rows(history):
    demo_data_seed(seed=42)
    first = dump()
    Customer.objects.all().delete()  # cascades to orders, touchpoints and feedback
    MarketingSpend.objects.all().delete()
    cdnow_import(path=history)  # new primary keys, same data
    demo_data_seed(seed=42)
    assert dump() == first
    assert len(first["touchpoints"]) > 5 * BUYERS


def test_another_seed_gives_other_rows(history):
    demo_data_seed(seed=42)
    first = dump()
    Customer.objects.filter(external_id__startswith="demo-").delete()
    Touchpoint.objects.all().delete()
    Feedback.objects.all().delete()
    MarketingSpend.objects.all().delete()
    demo_data_seed(seed=7)
    assert dump()["touchpoints"] != first["touchpoints"]


def test_a_second_run_creates_and_changes_nothing(history):
    first = demo_data_seed(seed=42)
    assert first.created > 0
    before = dump()
    orders = order_rows()
    updated_at = sorted(Customer.objects.values_list("external_id", "updated_at"))
    second = demo_data_seed(seed=42)
    assert (second.created, second.updated) == (0, 0)
    assert second.touchpoints.rows == first.touchpoints.rows
    assert dump() == before
    assert order_rows() == orders
    assert sorted(Customer.objects.values_list("external_id", "updated_at")) == updated_at


def test_orders_are_never_changed(history):
    before = order_rows()
    demo_data_seed(seed=42)
    assert order_rows() == before


def test_buyers_get_an_acquisition_channel_and_first_seen_moves_to_their_first_touch(history):
    demo_data_seed(seed=42)
    first_touch = dict(
        Touchpoint.objects.values("customer_id").annotate(first=Min("occurred_at")).values_list("customer_id", "first")
    )
    for customer_id, first_order in first_orders().items():
        customer = Customer.objects.get(pk=customer_id)
        assert customer.acquisition_channel is not None
        assert first_touch[customer_id] < first_order
        assert customer.first_seen_at == first_touch[customer_id]


def test_touchpoints_before_a_first_order_are_acquisition_kinds(history):
    demo_data_seed(seed=42)
    first = first_orders()
    before = [
        (kind, channel)
        for customer_id, at, kind, channel in Touchpoint.objects.values_list(
            "customer_id", "occurred_at", "kind", "channel__key"
        )
        if customer_id in first and at < first[customer_id]
    ]
    assert len(before) >= BUYERS  # 1-4 each
    assert {kind for kind, _ in before} <= ACQUISITION_KINDS
    assert all(channel == "paid_ads" for kind, channel in before if kind in ("ad_impression", "ad_click"))


def test_touchpoints_after_orders_are_on_sensible_channels_and_campaign_codes_match_them(history):
    demo_data_seed(seed=42)
    rows = list(Touchpoint.objects.values_list("kind", "channel__key", "campaign_code", "value"))
    kinds = Counter(kind for kind, *_ in rows)
    assert kinds[TouchpointKind.EMAIL_OPEN] > 0 and kinds[TouchpointKind.APP_PUSH_OPEN] > 0
    expected_channel = {"email_open": "email", "email_click": "email", "app_push_open": "app_notifications"}
    for kind, channel, code, value in rows:
        if kind in expected_channel:
            assert channel == expected_channel[kind]
        if code:
            assert CAMPAIGN_CODE.match(code) and code.endswith(f"-{CODE_SUFFIX[channel]}")
        if kind == TouchpointKind.REVIEW:
            assert 1 <= value <= 5
        else:
            assert value is None
    assert any(code for *_, code, _ in rows)


def test_referrals_point_to_earlier_buyers_who_sent_them_shortly_before(history):
    result = demo_data_seed(seed=42)
    first = first_orders()
    referred = list(Customer.objects.filter(referred_by__isnull=False).select_related("acquisition_channel"))
    assert len(referred) == result.referred >= 1
    for customer in referred:
        assert customer.referred_by_id != customer.pk
        assert first[customer.referred_by_id] < first[customer.pk]
        assert customer.acquisition_channel.key == "referral"
        sent = Touchpoint.objects.get(customer_id=customer.referred_by_id, kind=TouchpointKind.REFERRAL_SENT)
        assert sent.channel.key == "referral"
        assert sent.properties == {"referred_customer": customer.external_id}
        assert first[customer.referred_by_id] < sent.occurred_at < customer.first_seen_at
        assert customer.first_seen_at - sent.occurred_at < timedelta(days=4)
    assert Touchpoint.objects.filter(kind=TouchpointKind.REFERRAL_SENT).count() == len(referred)


def test_leads_are_first_seen_during_the_history_with_a_few_touches_and_no_orders(history):
    demo_data_seed(seed=42)
    leads = Customer.objects.filter(external_id__startswith="demo-lead-")
    assert leads.count() == round(0.2 * BUYERS)
    assert not Order.objects.filter(customer__in=leads).exists()
    span = Order.objects.aggregate(first=Min("placed_at"))["first"]
    for lead in leads:
        touches = list(lead.touchpoints.values_list("occurred_at", flat=True))
        assert 1 <= len(touches) <= 5
        assert lead.first_seen_at == min(touches) >= span
        assert lead.acquisition_channel is not None
        assert lead.email == "" or re.fullmatch(r"lead\d+@example\.com", lead.email)
        assert lead.name == "" or lead.email


def test_feedback_scores_are_nps_answers_a_few_days_after_an_order(history):
    demo_data_seed(seed=42)
    answers = list(Feedback.objects.values_list("customer_id", "score", "submitted_at"))
    assert 1 <= len(answers) <= round(0.15 * BUYERS)
    for customer_id, score, submitted_at in answers:
        assert 0 <= score <= 10
        placed = Order.objects.filter(customer_id=customer_id).values_list("placed_at", flat=True)
        assert any(timedelta(days=2) <= submitted_at - at <= timedelta(days=10) for at in placed)


def test_spend_covers_each_month_of_the_history_and_the_paid_campaign_days(history):
    demo_data_seed(seed=42)
    placed = Order.objects.values_list("placed_at", flat=True)
    month, last = min(placed).date().replace(day=1), max(placed).date().replace(day=1)
    monthly = set(MarketingSpend.objects.filter(period=SpendPeriod.MONTH).values_list("channel__key", "date"))
    assert {day.day for _channel, day in monthly} == {1}  # the rule of the marketing_spend kind the demo writes through
    while month <= last:
        assert {(channel, month) for channel in MONTHLY_COST} <= monthly
        month = (month + timedelta(days=32)).replace(day=1)
    daily = MarketingSpend.objects.filter(period=SpendPeriod.DAY)
    assert daily.exists()
    assert set(daily.values_list("channel__key", flat=True)) == {"paid_ads"}
    assert all(
        re.fullmatch(r"(spring|summer|xmas)\d\d-paid", code) for code in daily.values_list("campaign_code", flat=True)
    )
    assert not MarketingSpend.objects.filter(amount__lte=0).exists()


def test_a_channel_the_shop_recorded_is_kept(history):
    customer = Customer.objects.get(external_id="cdnow-00001")
    customer.acquisition_channel = Channel.objects.get(key="app_notifications")  # never drawn for buyers
    customer.save()
    demo_data_seed(seed=42)
    customer.refresh_from_db()
    assert customer.acquisition_channel.key == "app_notifications"


def test_queries_do_not_grow_with_the_customers(tmp_path, django_assert_max_num_queries):
    cdnow_import(path=write_history(tmp_path / "cdnow.txt", customers=200))
    with django_assert_max_num_queries(80):
        demo_data_seed(seed=42)


def test_the_command_prints_counts_and_a_second_run_creates_nothing(history):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert f"around {BUYERS} customers with orders" in out.getvalue()
    out = StringIO()
    call_command("seed_demo", "--seed", "42", stdout=out)
    assert "0 rows created, 0 updated." in out.getvalue()


def test_the_command_needs_an_order_history():
    with pytest.raises(CommandError, match="No customers with orders"):
        call_command("seed_demo", stdout=StringIO())


def test_proportions_on_the_cdnow_sample_are_those_of_a_plausible_shop():
    cdnow_import(path=cdnow_default_path(CdnowFormat.SAMPLE))
    result: DemoSeedResult = demo_data_seed(seed=42)
    buyers = result.buyers
    assert buyers == 2357
    buyer_touches = Touchpoint.objects.exclude(customer__external_id__startswith="demo-lead-").count()
    assert 5 <= buyer_touches / buyers <= 8
    assert result.referred == round(0.03 * buyers)
    assert result.leads.rows == round(0.2 * buyers)
    scores = list(Feedback.objects.values_list("score", flat=True))
    assert abs(len(scores) - 0.15 * buyers) <= 5
    promoters = sum(score >= 9 for score in scores) / len(scores)
    detractors = sum(score <= 6 for score in scores) / len(scores)
    assert 0.4 < promoters < 0.6 and 0.1 < detractors < 0.3
    channels = Counter(
        Customer.objects.exclude(external_id__startswith="demo-lead-").values_list(
            "acquisition_channel__key", flat=True
        )
    )
    assert channels.most_common(1)[0][0] == "organic_search"
    assert 0.2 < channels["paid_ads"] / buyers < 0.35
    paid_months = MarketingSpend.objects.filter(channel__key="paid_ads", period=SpendPeriod.MONTH)
    assert all(0 < amount < 50_000 for amount in paid_months.values_list("amount", flat=True))
