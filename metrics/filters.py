"""The filters every metric accepts (SPEC §4): as of a moment, a cohort of first-seen dates, an acquisition channel."""

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet

from clm.base.days import day_end, day_start
from lifecycle.models import Customer


@dataclass(frozen=True)
class MetricFilters:
    """`as_of` is a moment (API dates mean the end of that day); cohort dates are inclusive, UTC."""

    as_of: datetime
    cohort_start: date | None = None
    cohort_end: date | None = None
    channel: str | None = None  # acquisition channel key
    window_days: int | None = None  # funnel conversion window

    def key(self) -> str:
        """Canonical text of everything but `as_of`: with (kind, model, as_of day) it identifies a snapshot."""
        return json.dumps({k: v for k, v in self.as_json().items() if k != "as_of" and v is not None}, sort_keys=True)

    def as_json(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(self).items()}

    def customers(self) -> QuerySet[Customer]:
        """The customers these filters select (first seen by as_of, in the cohort, acquired through the channel)."""
        customers = Customer.objects.filter(first_seen_at__lte=self.as_of)
        if self.cohort_start is not None:
            customers = customers.filter(first_seen_at__gte=day_start(self.cohort_start))
        if self.cohort_end is not None:
            customers = customers.filter(first_seen_at__lte=day_end(self.cohort_end))
        if self.channel is not None:
            customers = customers.filter(acquisition_channel__key=self.channel)
        return customers

    @property
    def filters_customers(self) -> bool:
        """Whether anything beyond `as_of` narrows the customers (callers can skip the join when not)."""
        return any(v is not None for v in (self.cohort_start, self.cohort_end, self.channel))
