"""Segments out (issue 5 item 5): the customers currently in one stage, as rows an email tool can import.

One query reads the segment with the customers' predictions joined in; the API streams it as CSV from a
server-side cursor, so memory stays flat whatever the segment size. By default only customers subscribed to email
marketing are in it (lifecycle.consent; issue 16 item 5): the destinations that send to a segment rely on that.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from campaigns.models import Experiment, Exposure, Variant
from clm.base.days import day_start
from lifecycle.consent import EXPORT_CONSENT_DEFAULT, ExportConsent, consented
from lifecycle.features import feature_of_customer
from lifecycle.models import Channel, CustomerStage, Stage, Touchpoint

# The consent columns show each row's states, so a file passed on still tells what it may be used for.
SEGMENT_COLUMNS = [
    "external_id",
    "email",
    "name",
    "stage",
    "since",
    "p_alive",
    "predicted_clv_365d",
    "email_consent",
    "sms_consent",
]
_FIELDS = [
    "customer__external_id",
    "customer__email",
    "customer__name",
    "stage__key",
    "since",
    "p_alive",
    "clv",
    "customer__email_consent",
    "customer__sms_consent",
]
CHUNK = 2000


@dataclass(frozen=True)
class SegmentFilters:
    """Optional narrowing of a stage's customers; every part is already resolved to rows (or None)."""

    experiment: Experiment | None = None
    variant: Variant | None = None
    channel: Channel | None = None
    touchpoint: Literal["with", "without"] = "with"
    since: date | None = None
    consent: ExportConsent = EXPORT_CONSENT_DEFAULT


def segment_customers(*, stage: Stage, filters: SegmentFilters | None = None) -> QuerySet[CustomerStage]:
    """The customers currently in `stage` (of its model), ordered by customer id, one query.

    Each row has the customer, the stage, `since` (when they entered it), and `p_alive` / `clv` (expected spend
    over the next 365 days) from the latest CLV fit, None for customers without a prediction. Filters:
    subscribed to marketing on the `consent` channel (email unless `any`); exposed to an experiment (any variant,
    or `variant`); with / without a touchpoint on `channel` (at or after `since`, UTC midnight, when given).
    """
    filters = filters or SegmentFilters()
    now = timezone.now()  # the predictions are those of the latest fit, whatever the moment
    rows = CustomerStage.objects.filter(model_id=stage.model_id, stage=stage).annotate(
        p_alive=feature_of_customer("p_alive", as_of=now), clv=feature_of_customer("predicted_clv_365d", as_of=now)
    )
    rows = consented(rows, consent=filters.consent, customer="customer__")
    exposures = Exposure.objects.filter(customer_id=OuterRef("customer_id"))
    if filters.variant is not None:
        rows = rows.filter(Exists(exposures.filter(variant=filters.variant)))
    elif filters.experiment is not None:
        rows = rows.filter(Exists(exposures.filter(experiment=filters.experiment)))
    if filters.channel is not None:
        touches = Touchpoint.objects.filter(customer_id=OuterRef("customer_id"), channel=filters.channel)
        if filters.since is not None:
            touches = touches.filter(occurred_at__gte=day_start(filters.since))
        rows = rows.filter(Exists(touches) if filters.touchpoint == "with" else ~Exists(touches))
    return rows.order_by("customer_id")


def segment_rows(*, stage: Stage, filters: SegmentFilters | None = None) -> Iterator[tuple[Any, ...]]:
    """The segment's rows in SEGMENT_COLUMNS order, read in chunks (a server-side cursor on PostgreSQL)."""
    rows = segment_customers(stage=stage, filters=filters).values_list(*_FIELDS).iterator(chunk_size=CHUNK)
    for external_id, email, name, stage_key, since, p_alive, clv, email_consent, sms_consent in rows:
        yield (
            external_id,
            email,
            name,
            stage_key,
            since,
            None if p_alive is None else round(p_alive, 4),
            None if clv is None else round(clv, 2),
            email_consent,
            sms_consent,
        )
