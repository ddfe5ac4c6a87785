"""The filters every metric accepts (SPEC §4): as of a moment, a cohort of first-seen dates, an acquisition channel."""

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypedDict

from django.db.models import QuerySet

from clm.base.days import day_end, day_start
from lifecycle.models import Customer


class FiltersJson(TypedDict):
    """The filters a result was computed with; dates and moments in ISO 8601."""

    as_of: str
    cohort_start: str | None
    cohort_end: str | None
    channel: str | None
    window_days: int | None


def period_default(as_of: datetime, days: int = 30) -> tuple[date, date]:
    """The `days` whole days ending on as_of's day: the default period of flows and rates."""
    return as_of.date() - timedelta(days=days - 1), as_of.date()


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

    def as_json(self) -> FiltersJson:
        return {
            "as_of": self.as_of.isoformat(),
            "cohort_start": self.cohort_start.isoformat() if self.cohort_start is not None else None,
            "cohort_end": self.cohort_end.isoformat() if self.cohort_end is not None else None,
            "channel": self.channel,
            "window_days": self.window_days,
        }

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
