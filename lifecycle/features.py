"""The registry of customer features that stage rules can test (SPEC §3), each evaluated as of a moment.

Every feature is one ORM expression over a `Customer` queryset; only events at or before `as_of` count. Order
features are aggregates over a join (the queryset is grouped by customer): a query that groups the classified
customers again must wrap it (clm.base.sql.grouped_counts), as the rule preview does.
Day-count features ("days since X") are kept as the timestamp X: rules compare it against `as_of` minus
whole days (lifecycle.rules), which is portable SQL and can use indexes.

To add a feature: write its expression here, register it with `feature_register` (its description marked with
gettext_noop: the rule editor shows it translated), document it in docs/LIFECYCLE.md. Apps above `lifecycle`
(e.g. metrics' CLV predictions) register theirs the same way.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import Combinable
from django.db.models.functions import Coalesce, NullIf
from django.utils.translation import gettext_noop

from lifecycle.models import Customer, Feedback, Order, OrderStatus, Touchpoint, TouchpointKind

ENGAGEMENT_KINDS = [
    TouchpointKind.SITE_VISIT,
    TouchpointKind.PRODUCT_VIEW,
    TouchpointKind.CART_ADD,
    TouchpointKind.EMAIL_CLICK,
    TouchpointKind.APP_PUSH_OPEN,
    TouchpointKind.SOCIAL_ENGAGEMENT,
    TouchpointKind.REVIEW,
]


class FeatureType(StrEnum):
    INTEGER = "integer"  # counts and scores
    DECIMAL = "decimal"  # money
    DAYS_SINCE = "days_since"  # whole days from a timestamp to as_of


@dataclass(frozen=True)
class EventClock:
    """Events whose timestamp, moved forward by a number of days, passing as_of can change a feature without new
    data: an order entering the last 365 days (0) or leaving them (365); the last order turning N days old
    (`thresholds`: the day counts the model's rules compare with, N and N + 1). Incremental passes look for
    customers with such an event between the last pass and this one (lifecycle.services)."""

    events: Callable[[], QuerySet]
    customer: str  # the column naming the customer whose feature changes, e.g. customer_id
    timestamp: str
    windows: tuple[int, ...] = (0,)
    thresholds: bool = False


@dataclass(frozen=True)
class Feature:
    name: str
    type: FeatureType
    description: str
    # Combinable: what annotate() takes, the common base of Expression, F and Subquery.
    expression: Callable[[datetime], Combinable]
    # None: the feature can change without an event we can see (e.g. a nightly model fit), so periodic passes of
    # a model using it are full passes.
    clocks: tuple[EventClock, ...] | None = None

    @property
    def alias(self) -> str:
        return f"feature_{self.name}"


FEATURES: dict[str, Feature] = {}


def feature_register(feature: Feature) -> Feature:
    FEATURES[feature.name] = feature
    return feature


def feature_of_customer(name: str, *, as_of: datetime, customer: str = "customer_id") -> Combinable:
    """Feature `name` as of `as_of` of the customer whose id is the outer query's column `customer` (e.g. on
    CustomerStage rows); NULL where no installed app registered the feature.

    The apps above lifecycle register their features here (metrics: the CLV predictions), so a query of any area
    can read them by name without importing the app that computes them.
    """
    feature = FEATURES.get(name)
    if feature is None:
        return Value(None, output_field=FloatField())
    of_customer = Customer.objects.filter(pk=OuterRef(customer)).annotate(**{feature.alias: feature.expression(as_of)})
    return Subquery(of_customer.values(feature.alias)[:1])


def _completed_orders(as_of: datetime, customer_ref: OuterRef | None = None) -> QuerySet:
    return Order.objects.filter(
        customer=customer_ref or OuterRef("pk"), status=OrderStatus.COMPLETED, placed_at__lte=as_of
    ).order_by()


def _aggregate(queryset: QuerySet, aggregate: Any, by: str = "customer") -> Subquery:
    """One aggregate per customer as a correlated subquery (NULL when there is no row)."""
    return Subquery(queryset.values(by).annotate(value=aggregate).values("value")[:1])


class PerCustomer(ExpressionWrapper):
    """A correlated subquery kept out of the GROUP BY that the order features need.

    Django would group by the whole expression, and PostgreSQL then evaluates it for every joined order row before
    grouping; left out (the customer's primary key is grouped, so the query stays valid), it is evaluated once per
    customer: 10× fewer subquery runs for customers with ten orders.
    """

    def get_group_by_cols(self) -> list:
        return []


def _count(queryset: QuerySet, by: str = "customer") -> Expression:
    return PerCustomer(
        Coalesce(_aggregate(queryset, Count("pk"), by), Value(0), output_field=IntegerField()),
        output_field=IntegerField(),
    )


def _engagements(as_of: datetime, customer_ref: OuterRef | None = None) -> QuerySet:
    return Touchpoint.objects.filter(
        customer=customer_ref or OuterRef("pk"), kind__in=ENGAGEMENT_KINDS, occurred_at__lte=as_of
    ).order_by()


def _joined_completed(as_of: datetime, **extra: Any) -> Q:
    """The joined orders that count as of `as_of`: completed and placed by then."""
    return Q(orders__status=OrderStatus.COMPLETED, orders__placed_at__lte=as_of, **extra)


# Order features are aggregates over one LEFT JOIN of the orders, grouped by customer: a single pass over the
# orders, where a correlated subquery per feature probes the orders index once per customer and feature
# (17× faster on CDNOW for the `status` model). Aggregates with the same filter share the join.
def _order_count(as_of: datetime, **extra: Any) -> Expression:
    return Count("orders", filter=_joined_completed(as_of, **extra))


def _total_spent(as_of: datetime) -> Expression:
    return Coalesce(
        Sum("orders__amount", filter=_joined_completed(as_of)),
        Value(Decimal(0)),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )


def _avg_order_value(as_of: datetime) -> Expression:
    # NULL without orders: the sum is NULL and the count is made NULL rather than 0.
    return Sum("orders__amount", filter=_joined_completed(as_of)) / NullIf(_order_count(as_of), Value(0))


def _engagements_since_last_order(as_of: datetime) -> Expression:
    last_order_at = _aggregate(_completed_orders(as_of, OuterRef(OuterRef("pk"))), Max("placed_at"))
    since = _engagements(as_of).filter(occurred_at__gt=last_order_at)
    # NULL for customers without an order: there is no "since".
    return PerCustomer(
        Case(
            When(Exists(_completed_orders(as_of)), then=_count(since)), default=Value(None), output_field=IntegerField()
        ),
        output_field=IntegerField(),
    )


def _all_orders() -> QuerySet:
    return Order.objects.all()


def _all_engagements() -> QuerySet:
    return Touchpoint.objects.filter(kind__in=ENGAGEMENT_KINDS)


def _all_customers() -> QuerySet:
    return Customer.objects.all()


ORDERS_PLACED = EventClock(_all_orders, "customer_id", "placed_at")
ENGAGEMENTS = EventClock(_all_engagements, "customer_id", "occurred_at")
# Every model: a customer exists from first_seen_at on.
EVENT_CLOCK_CUSTOMERS_APPEARING = EventClock(_all_customers, "id", "first_seen_at")

feature_register(
    Feature("order_count", FeatureType.INTEGER, gettext_noop("completed orders"), _order_count, (ORDERS_PLACED,))
)
feature_register(
    Feature(
        "orders_last_365d",
        FeatureType.INTEGER,
        gettext_noop("completed orders in the 365 days before as_of"),
        lambda a: _order_count(a, orders__placed_at__gt=a - timedelta(days=365)),
        (EventClock(_all_orders, "customer_id", "placed_at", windows=(0, 365)),),
    )
)
feature_register(
    Feature(
        "total_spent",
        FeatureType.DECIMAL,
        gettext_noop("sum of completed order amounts"),
        _total_spent,
        (ORDERS_PLACED,),
    )
)
feature_register(
    Feature(
        "avg_order_value",
        FeatureType.DECIMAL,
        gettext_noop("total_spent / order_count (null without orders)"),
        _avg_order_value,
        (ORDERS_PLACED,),
    )
)
feature_register(
    Feature(
        "days_since_first_order",
        FeatureType.DAYS_SINCE,
        gettext_noop("whole days since the first completed order (null without orders)"),
        lambda a: Min("orders__placed_at", filter=_joined_completed(a)),
        (EventClock(_all_orders, "customer_id", "placed_at", thresholds=True),),
    )
)
feature_register(
    Feature(
        "days_since_last_order",
        FeatureType.DAYS_SINCE,
        gettext_noop("whole days since the last completed order (null without orders)"),
        lambda a: Max("orders__placed_at", filter=_joined_completed(a)),
        (EventClock(_all_orders, "customer_id", "placed_at", thresholds=True),),
    )
)
feature_register(
    Feature(
        "days_since_first_seen",
        FeatureType.DAYS_SINCE,
        gettext_noop("whole days since first_seen_at"),
        lambda a: F("first_seen_at"),
        (EventClock(_all_customers, "id", "first_seen_at", thresholds=True),),
    )
)
feature_register(
    Feature(
        "engagements_last_30d",
        FeatureType.INTEGER,
        # Spelt out (not joined from ENGAGEMENT_KINDS) so that the catalogue can translate it as a whole.
        gettext_noop(
            "touchpoints of kinds site_visit, product_view, cart_add, email_click, app_push_open, social_engagement,"
            " review in the 30 days before as_of"
        ),
        lambda a: _count(_engagements(a).filter(occurred_at__gt=a - timedelta(days=30))),
        (EventClock(_all_engagements, "customer_id", "occurred_at", windows=(0, 30)),),
    )
)
feature_register(
    Feature(
        "engagements_since_last_order",
        FeatureType.INTEGER,
        gettext_noop("the same kinds after the last completed order (null without orders)"),
        _engagements_since_last_order,
        (ORDERS_PLACED, ENGAGEMENTS),
    )
)
feature_register(
    Feature(
        "referral_count",
        FeatureType.INTEGER,
        gettext_noop("customers referred by this customer and first seen at or before as_of"),
        lambda a: _count(
            Customer.objects.filter(referred_by=OuterRef("pk"), first_seen_at__lte=a).order_by(), by="referred_by"
        ),
        (EventClock(_all_customers, "referred_by_id", "first_seen_at"),),
    )
)
feature_register(
    Feature(
        "last_feedback_score",
        FeatureType.INTEGER,
        gettext_noop("latest NPS answer 0..10 (null without feedback)"),
        lambda a: Subquery(
            Feedback.objects.filter(customer=OuterRef("pk"), submitted_at__lte=a)
            .order_by("-submitted_at", "-id")
            .values("score")[:1]
        ),
        (EventClock(lambda: Feedback.objects.all(), "customer_id", "submitted_at"),),
    )
)


def features_evaluate(*, names: Iterable[str], as_of: datetime, customer_ids: Iterable[int]) -> dict[int, dict]:
    """Feature values of a few customers (journeys, previews, tests); day counts as whole days."""
    wanted = [FEATURES[name] for name in names]
    rows = (
        Customer.objects.filter(pk__in=list(customer_ids))
        .annotate(**{f.alias: f.expression(as_of) for f in wanted})
        .values("pk", *(f.alias for f in wanted))
    )
    values: dict[int, dict] = {}
    for row in rows:
        values[row["pk"]] = {
            f.name: (None if row[f.alias] is None else (as_of - row[f.alias]).days)
            if f.type == FeatureType.DAYS_SINCE
            else row[f.alias]
            for f in wanted
        }
    return values
