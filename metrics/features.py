"""Rule features from the stored CLV predictions (SPEC §3, §5): `p_alive` and `predicted_clv_365d`.

They read the customer's CustomerValue row of the latest fit (the nightly job), whatever the `as_of` of the
classification: NULL before any fit and for customers who had no completed order when it ran, so a rule on
them matches nobody then. Backfills of past dates therefore see today's predictions; rules meant for backfills
should use the order-based features.
"""

from datetime import datetime

from django.db.models import Expression, OuterRef, Subquery
from django.utils.translation import gettext_noop

from lifecycle.features import Feature, FeatureType, feature_register
from metrics.models import CustomerValue


def _stored(field: str) -> Expression:
    # One row per customer (OneToOne), so the correlated subquery is an index lookup on customer_id.
    return Subquery(CustomerValue.objects.filter(customer=OuterRef("pk")).values(field)[:1])


def _p_alive(as_of: datetime) -> Expression:
    return _stored("p_alive")


def _predicted_clv_365d(as_of: datetime) -> Expression:
    return _stored("expected_spend_365d")


feature_register(
    Feature(
        "p_alive",
        FeatureType.DECIMAL,
        gettext_noop(
            "probability 0..1 that the customer is still active (BG/NBD, latest fit; null before a fit or without "
            "orders)"
        ),
        _p_alive,
    )
)
feature_register(
    Feature(
        "predicted_clv_365d",
        FeatureType.DECIMAL,
        gettext_noop(
            "expected spend over the next 365 days (BG/NBD × Gamma-Gamma, latest fit; null before a fit or without "
            "orders)"
        ),
        _predicted_clv_365d,
    )
)
