"""Segments out (issue 5 item 5): the customers currently in one stage, as rows an email tool can import.

One query reads the segment with the customers' predictions joined in; the API streams it as CSV from a
server-side cursor, so memory stays flat whatever the segment size.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from django.apps import apps
from django.db.models import Exists, F, OuterRef, QuerySet, Value
from django.db.models.fields import FloatField

from campaigns.models import Experiment, Exposure, Variant
from lifecycle.models import Channel, CustomerStage, Stage, Touchpoint

SEGMENT_COLUMNS = ["external_id", "email", "name", "stage", "since", "p_alive", "predicted_clv_365d"]
_FIELDS = ["customer__external_id", "customer__email", "customer__name", "stage__key", "since", "p_alive", "clv"]
CHUNK = 2000


@dataclass(frozen=True)
class SegmentFilters:
    """Optional narrowing of a stage's customers; every part is already resolved to rows (or None)."""

    experiment: Experiment | None = None
    variant: Variant | None = None
    channel: Channel | None = None
    touchpoint: Literal["with", "without"] = "with"
    since: date | None = None


def _value_relation() -> str | None:
    """The Customer → metrics CustomerValue relation name, or None when metrics is not installed.

    metrics builds on campaigns (it reads spend for CAC), so importing metrics here would make the two apps
    depend on each other. The model is looked up in the app registry at call time instead; its reverse relation
    from Customer lets the segment query LEFT JOIN the predictions (one join, no per-row query).
    """
    try:
        customer_value = apps.get_model("metrics", "CustomerValue")
    except LookupError:
        return None
    return customer_value._meta.get_field("customer").related_query_name()


def segment_customers(*, stage: Stage, filters: SegmentFilters | None = None) -> QuerySet[CustomerStage]:
    """The customers currently in `stage` (of its model), ordered by customer id, one query.

    Each row has the customer, the stage, `since` (when they entered it), and `p_alive` / `clv` (expected spend
    over the next 365 days) from the latest CLV fit, None for customers without a prediction. Filters:
    exposed to an experiment (any variant, or `variant`); with / without a touchpoint on `channel` (at or after
    `since`, UTC midnight, when given).
    """
    filters = filters or SegmentFilters()
    rows = CustomerStage.objects.filter(model_id=stage.model_id, stage=stage)
    relation = _value_relation()
    if relation is None:
        rows = rows.annotate(p_alive=Value(None, FloatField()), clv=Value(None, FloatField()))
    else:
        rows = rows.annotate(
            p_alive=F(f"customer__{relation}__p_alive"), clv=F(f"customer__{relation}__expected_spend_365d")
        )
    exposures = Exposure.objects.filter(customer_id=OuterRef("customer_id"))
    if filters.variant is not None:
        rows = rows.filter(Exists(exposures.filter(variant=filters.variant)))
    elif filters.experiment is not None:
        rows = rows.filter(Exists(exposures.filter(experiment=filters.experiment)))
    if filters.channel is not None:
        touches = Touchpoint.objects.filter(customer_id=OuterRef("customer_id"), channel=filters.channel)
        if filters.since is not None:
            touches = touches.filter(occurred_at__gte=datetime.combine(filters.since, time.min, UTC))
        rows = rows.filter(Exists(touches) if filters.touchpoint == "with" else ~Exists(touches))
    return rows.order_by("customer_id")


def segment_rows(*, stage: Stage, filters: SegmentFilters | None = None) -> Iterator[tuple[Any, ...]]:
    """The segment's rows in SEGMENT_COLUMNS order, read in chunks (a server-side cursor on PostgreSQL)."""
    rows = segment_customers(stage=stage, filters=filters).values_list(*_FIELDS).iterator(chunk_size=CHUNK)
    for external_id, email, name, stage_key, since, p_alive, clv in rows:
        yield (
            external_id,
            email,
            name,
            stage_key,
            since,
            None if p_alive is None else round(p_alive, 4),
            None if clv is None else round(clv, 2),
        )
