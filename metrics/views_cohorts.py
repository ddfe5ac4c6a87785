"""Dashboard pages: cohorts, value and the customer journey (URLs at the bottom, included by metrics/urls.py).

Thin views like metrics/views.py: the metrics come from stored snapshots (metric_result), the customer's data
from the lifecycle and metrics selectors; what is left here is arranging numbers for tables and charts.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.db.models import DecimalField, F, Max, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from clm.base.days import day_end
from lifecycle.features import features_evaluate
from lifecycle.models import Customer, Feedback, Order, OrderStatus, Touchpoint
from lifecycle.pages import page_context
from lifecycle.selectors import customer_current_stages, customer_get, customer_transitions
from metrics.clv import ClvFitError
from metrics.cohorts import MEASURES, cohort_customers
from metrics.filters import MetricFilters
from metrics.forms import FiltersForm
from metrics.models import CustomerValue
from metrics.rfm import SEGMENTS, segment_of
from metrics.selectors import clv_fit_latest, customer_value_get
from metrics.services import metric_result
from metrics.views import PAGE_SIZE, customers_searched

AT_RISK_P_ALIVE = 0.5  # below it a customer is more likely gone than still buying
JOURNEY_LIMIT = 200  # newest events per kind on the journey page
SEARCH_LIMIT = 20
MAX_MONTH = 23  # the retention matrix has months 0..23
MOVEMENT_DAYS = 90  # default period of the RFM segment movement


# --- forms -------------------------------------------------------------------------------------------


class CohortsForm(FiltersForm):
    window_days = None  # the funnel's conversion window means nothing here
    measure = forms.ChoiceField(
        label=_("Retention measure"),
        required=False,
        choices=[("share", _("share of the cohort ordering")), ("revenue", _("cumulative revenue per customer"))],
    )
    interval = forms.ChoiceField(
        label=_("Activity per"), required=False, choices=[("week", _("week")), ("month", _("month"))]
    )
    movement_start = forms.DateField(
        label=_("Segment movement since"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, as_of = data.get("movement_start"), data.get("as_of") or timezone.now().date()
        if start and start >= as_of:
            self.add_error("movement_start", _("The start of the movement must be before the “as of” day."))
        return data

    def choices(self) -> dict[str, Any]:
        """measure, interval and the movement start (default: MOVEMENT_DAYS before as_of), defaults if invalid."""
        data = self.cleaned_data if self.is_valid() else {}
        as_of = self.filters().as_of.date()
        return {
            "measure": data.get("measure") or "share",
            "interval": data.get("interval") or "week",
            "movement_start": data.get("movement_start") or as_of - timedelta(days=MOVEMENT_DAYS),
        }


class ValueForm(FiltersForm):
    window_days = None


class CalibrationForm(forms.Form):
    """The accuracy section's own small form (its filters are not the page's: the fit uses every customer)."""

    calibration_end = forms.DateField(
        label=_("Accuracy: calibration end"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The model is fitted on the orders up to this day and compared with the orders after it."),
    )

    def clean_calibration_end(self) -> date | None:
        value = self.cleaned_data.get("calibration_end")
        if value and value >= timezone.now().date():
            raise forms.ValidationError(_("The calibration end must be in the past."))
        return value


# --- helpers -----------------------------------------------------------------------------------------


def filter_query(filters: MetricFilters) -> dict[str, str]:
    """The validated filters as query parameters (what the API and the drill-down pages accept)."""
    values = {
        "as_of": filters.as_of.date().isoformat(),
        "cohort_start": filters.cohort_start.isoformat() if filters.cohort_start else None,
        "cohort_end": filters.cohort_end.isoformat() if filters.cohort_end else None,
        "channel": filters.channel,
    }
    return {name: value for name, value in values.items() if value is not None}


def percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def heat_rows(cohorts: list[dict[str, Any]], measure: str) -> list[dict[str, Any]]:
    """Cohort rows with a 0..1 shade per cell: share scaled by the largest value after month 0 (month 0 is always
    100 %), revenue by the largest value."""
    values = [value for row in cohorts for k, value in enumerate(row["values"]) if value is not None]
    if measure == "share":
        values = [value for row in cohorts for k, value in enumerate(row["values"]) if value is not None and k > 0]
    top = max(values, default=0) or 1
    rows = []
    for row in cohorts:
        cells = []
        for k, (value, active) in enumerate(zip(row["values"], row["active"], strict=True)):
            shade = None if value is None else round(min(value / top, 1.0), 2)
            cells.append(
                {
                    "k": k,
                    "value": value,
                    "display": percent(value) if measure == "share" else value,
                    "active": active,
                    "shade": shade,
                    "alpha": None if shade is None else int(10 + 80 * shade),
                    "dark": shade is not None and shade > 0.6,
                }
            )
        rows.append({"label": row["label"], "cohort": row.get("cohort"), "size": row["size"], "cells": cells})
    return rows


def _query_with(request: HttpRequest, **values: str) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    for name, value in values.items():
        query[name] = value
    return query.urlencode()


def movement_table(movement: dict[str, Any] | None) -> tuple[list[str], list[dict[str, Any]]]:
    """The RFM from × to counts as a table: segment names as columns (where customers are now), a row per segment
    they were in at the start (and one for those who were not buyers yet); rows without anybody are left out."""
    if movement is None:
        return [], []
    none = movement["none_label"]
    names = {**SEGMENTS, none: str(_("(not a buyer yet)"))}
    counts = {(cell["from"], cell["to"]): cell["customers"] for cell in movement["cells"]}
    targets = [label for label in movement["labels"] if label != none]
    rows = []
    for source in movement["labels"]:
        cells = [{"count": counts.get((source, target), 0), "stay": source == target} for target in targets]
        total = sum(cell["count"] for cell in cells)
        if total:
            rows.append({"label": names[source], "cells": cells, "total": total})
    return [names[target] for target in targets], rows


# --- cohorts -----------------------------------------------------------------------------------------


@require_GET
def cohorts(request: HttpRequest) -> HttpResponse:
    """Retention heatmap (share or revenue), by channel; activity lifecycle; RFM segments and their movement."""
    form = CohortsForm(request.GET or None)
    filters = form.filters()
    choice = form.choices()
    retention, _computed = metric_result(
        kind="cohorts", model=None, filters=filters, params={"measure": choice["measure"]}
    )
    activity, _computed = metric_result(
        kind="activity", model=None, filters=filters, params={"interval": choice["interval"]}
    )
    rfm, _computed = metric_result(kind="rfm", model=None, filters=filters, params={"start": choice["movement_start"]})
    measure, result = choice["measure"], retention.result
    months = result["months"]
    last_column = max(
        (k for row in result["cohorts"] for k, value in enumerate(row["values"]) if value is not None),
        default=0,
    )
    columns = list(range(min(months, last_column + 1)))

    def trimmed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**row, "cells": row["cells"][: len(columns)]} for row in rows]

    # all channels first, then each acquisition channel (None: customers without one)
    channel_rows = trimmed(
        heat_rows(
            [
                {**result["average"], "label": _("All channels")},
                *({**row, "label": row["channel"] or _("unknown channel")} for row in result["by_channel"]),
            ],
            measure,
        )
    )
    movement_columns, movement_rows = movement_table(rfm.result["movement"])
    query = filter_query(filters)
    periods = activity.result["periods"]
    context = {
        **page_context(request, None, "cohorts"),
        "form": form,
        "filters": filters,
        "snapshot": retention,
        "measure": measure,
        "interval": choice["interval"],
        "interval_label": dict(CohortsForm.base_fields["interval"].choices)[choice["interval"]],
        "columns": columns,
        "cohort_rows": trimmed(heat_rows([{**row, "label": row["cohort"]} for row in result["cohorts"]], measure)),
        "channel_rows": channel_rows,
        "periods": periods,
        "rfm": rfm.result,
        "segments": [{**segment, "percent": percent(segment["share"])} for segment in rfm.result["segments"]],
        "movement": rfm.result["movement"],
        "movement_rows": movement_rows,
        "movement_columns": movement_columns,
        "movement_start": choice["movement_start"],
        "query": urlencode(query),
        "measure_links": [
            {"measure": name, "query": _query_with(request, measure=name), "current": name == measure}
            for name in MEASURES
        ],
        "rfm_export_url": reverse("api-metrics-rfm-customers") + "?" + urlencode({**query, "export": "csv"}),
        "chart": {
            "activity": {
                "labels": [period["period"] for period in periods],
                **{category: [period[category] for period in periods] for category in CATEGORY_KEYS},
            },
            "retention": {
                "measure": measure,
                "labels": [str(k) for k in columns],
                "series": [
                    {"label": str(row["label"]), "values": [cell["value"] for cell in row["cells"]]}
                    for row in channel_rows
                ],
            },
            "segments": {
                "labels": [str(segment["name"]) for segment in rfm.result["segments"]],
                "customers": [segment["customers"] for segment in rfm.result["segments"]],
            },
        },
    }
    return render(request, "metrics/cohorts.html", context)


CATEGORY_KEYS = ("new", "returning", "resurrecting", "dormant")


@require_GET
def cohort_customers_view(request: HttpRequest) -> HttpResponse:
    """The customers behind a retention cell: first order in month `cohort`, an order in month cohort + `month`."""
    form = CohortsForm(request.GET or None)
    filters = form.filters()
    cohort = request.GET.get("cohort", "")
    try:
        month = int(request.GET.get("month", ""))
        if month > MAX_MONTH:
            raise ValueError(f"month must be 0..{MAX_MONTH}.")
        customers = cohort_customers(filters=filters, cohort=cohort, month_offset=month)
    except ValueError as exc:
        raise Http404(str(exc)) from exc
    search = request.GET.get("q", "").strip()
    customers = customers_searched(customers, search).annotate(channel_key=F("acquisition_channel__key")).order_by("pk")
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    query = filter_query(filters)
    context = {
        **page_context(request, None, "cohorts"),
        "cohort": cohort,
        "month": month,
        "page_obj": page,
        "search": search,
        "back_url": reverse("cohorts") + "?" + urlencode(query),
        "export_url": reverse("api-metrics-cohort-customers")
        + "?"
        + urlencode({**query, "cohort": cohort, "month": month, "export": "csv"}),
    }
    return render(request, "metrics/cohort_customers.html", context)


# --- value -------------------------------------------------------------------------------------------


def calibration_end_default() -> date | None:
    """The midpoint between the first and last completed order: half the history to fit, half to check."""
    span = Order.objects.filter(status=OrderStatus.COMPLETED).aggregate(first=Min("placed_at"), last=Max("placed_at"))
    if span["first"] is None:
        return None
    middle = span["first"] + (span["last"] - span["first"]) / 2
    return min(middle.date(), timezone.now().date() - timedelta(days=1))


def accuracy_result(calibration_end: date | None) -> tuple[Any, str | None]:
    """The clv_accuracy snapshot (keyed as the API keys it) or why there is none."""
    if calibration_end is None:
        return None, str(_("There are no completed orders yet: nothing to measure the predictions against."))
    filters = MetricFilters(as_of=day_end(calibration_end))
    try:
        snapshot, _computed = metric_result(
            kind="clv_accuracy", model=None, filters=filters, params={"calibration_end": calibration_end}
        )
    except ClvFitError as exc:
        return None, str(exc)
    return snapshot, None


def at_risk_customers(filters: MetricFilters) -> Any:
    """Customers of the latest fit with p_alive below AT_RISK_P_ALIVE, the most revenue so far first."""
    values = CustomerValue.objects.filter(p_alive__lt=AT_RISK_P_ALIVE)
    if filters.filters_customers:
        values = values.filter(customer__in=filters.customers().values("pk"))
    completed = Q(customer__orders__status=OrderStatus.COMPLETED, customer__orders__placed_at__lte=filters.as_of)
    return (
        values.annotate(
            external_id=F("customer__external_id"),
            email=F("customer__email"),
            channel_key=F("customer__acquisition_channel__key"),
            revenue=Coalesce(
                Sum("customer__orders__amount", filter=completed),
                0,
                output_field=DecimalField(max_digits=14, decimal_places=2),
            ),
            last_order_at=Max("customer__orders__placed_at", filter=completed),
        )
        .order_by("-revenue", "-expected_spend_365d", "customer_id")
        .values(
            "external_id",
            "email",
            "channel_key",
            "revenue",
            "last_order_at",
            "p_alive",
            "frequency",
            "expected_spend_365d",
        )
    )


def customer_search(search: str) -> list[Customer]:
    return list(customers_searched(Customer.objects.all(), search).order_by("external_id")[:SEARCH_LIMIT])


@require_GET
def value(request: HttpRequest) -> HttpResponse:
    """CLV by cohort and channel, CLV:CAC per channel, the CLV model's accuracy, at-risk customers; customer search."""
    search = request.GET.get("q", "").strip()
    matches = None
    if search:
        exact = Customer.objects.filter(external_id=search).values_list("external_id", flat=True).first()
        matches = customer_search(search)
        if exact is None and len(matches) == 1:
            exact = matches[0].external_id
        if exact is not None:
            return HttpResponseRedirect(reverse("journey", args=[exact]))
    form = ValueForm(request.GET or None)
    filters = form.filters()
    historical, _computed = metric_result(kind="clv_historical", model=None, filters=filters, params={})
    cac, _computed = metric_result(kind="cac", model=None, filters=filters, params={})
    calibration = CalibrationForm(request.GET or None)
    chosen = calibration.cleaned_data.get("calibration_end") if calibration.is_valid() else None
    calibration_end = chosen or calibration_end_default()
    accuracy, accuracy_error = accuracy_result(calibration_end)
    fit = clv_fit_latest()
    at_risk = Paginator(at_risk_customers(filters) if fit else CustomerValue.objects.none(), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    # float noise (a p_alive of 1e-200) would print in exponent notation: the table shows cents and 4 digits
    at_risk.object_list = [
        {**row, "p_alive": round(row["p_alive"], 4), "expected_spend_365d": round(row["expected_spend_365d"], 2)}
        for row in at_risk.object_list
    ]
    by_cohort = historical.result["by_cohort"]
    weekly = accuracy.result["weekly"] if accuracy else []
    context = {
        **page_context(request, None, "value"),
        "form": form,
        "filters": filters,
        "snapshot": historical,
        "historical": historical.result,
        "cac": cac.result,
        "calibration_end": calibration_end,
        "calibration_form": calibration,
        "accuracy": accuracy.result if accuracy else None,
        "accuracy_snapshot": accuracy,
        "accuracy_error": accuracy_error,
        "fit": fit,
        "at_risk": at_risk,
        "at_risk_p_alive": AT_RISK_P_ALIVE,
        "search": search,
        "matches": matches,
        "chart": {
            "clv": {
                "labels": [row["cohort"] for row in by_cohort],
                "revenue_per_customer": [row["revenue_per_customer"] for row in by_cohort],
                "predicted": [row["predicted_clv_365d"] for row in by_cohort],
            },
            "accuracy": {
                "labels": [point["end"] for point in weekly],
                "predicted": [point["predicted"] for point in weekly],
                "actual": [point["actual"] for point in weekly],
            },
        },
    }
    return render(request, "metrics/value.html", context)


# --- customer journey --------------------------------------------------------------------------------


def _event(at: datetime, kind: str, label: Any, channel: str | None, detail: str) -> dict[str, Any]:
    return {"at": at, "kind": kind, "label": label, "channel": channel, "detail": detail}


def journey_events(customer: Customer) -> tuple[list[dict[str, Any]], dict[str, bool]]:
    """The newest JOURNEY_LIMIT orders, touchpoints, feedback and stage transitions, newest first, and per kind
    whether older ones were left out: four queries."""
    limit = JOURNEY_LIMIT
    orders = list(
        Order.objects.filter(customer=customer)
        .annotate(channel_key=F("channel__key"))
        .order_by("-placed_at", "-pk")[: limit + 1]
    )
    touchpoints = list(
        Touchpoint.objects.filter(customer=customer)
        .annotate(channel_key=F("channel__key"))
        .order_by("-occurred_at", "-pk")[: limit + 1]
    )
    feedback = list(Feedback.objects.filter(customer=customer).order_by("-submitted_at", "-pk")[: limit + 1])
    transitions, more_transitions = customer_transitions(customer=customer, limit=limit)
    events = [
        *(
            _event(
                order.placed_at,
                "order",
                _("Order"),
                order.channel_key,
                f"{order.amount} · {order.get_status_display()}"
                + (f" · {order.campaign_code}" if order.campaign_code else ""),
            )
            for order in orders[:limit]
        ),
        *(
            _event(
                touchpoint.occurred_at,
                "touchpoint",
                _("Touchpoint"),
                touchpoint.channel_key,
                touchpoint.get_kind_display()
                + (f" · {touchpoint.campaign_code}" if touchpoint.campaign_code else "")
                + (f" · {touchpoint.value}" if touchpoint.value is not None else ""),
            )
            for touchpoint in touchpoints[:limit]
        ),
        *(
            _event(
                item.submitted_at,
                "feedback",
                _("Feedback"),
                None,
                f"{item.score}/10" + (f" · {item.comment}" if item.comment else ""),
            )
            for item in feedback[:limit]
        ),
        *(
            _event(
                transition.at,
                "transition",
                _("Stage change"),
                None,
                f"{transition.model_key}: {transition.from_key or '—'} → {transition.to_key} ({transition.cause})",
            )
            for transition in transitions
        ),
    ]
    events.sort(key=lambda event: event["at"], reverse=True)
    truncated = {
        "order": len(orders) > limit,
        "touchpoint": len(touchpoints) > limit,
        "feedback": len(feedback) > limit,
        "transition": more_transitions,
    }
    return events, truncated


KIND_NAMES = {
    "order": _("orders"),
    "touchpoint": _("touchpoints"),
    "feedback": _("feedback"),
    "transition": _("stage changes"),
}


EVENT_KINDS = ("order", "touchpoint", "feedback", "transition")


def events_per_month(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of the listed events per calendar month (UTC) and kind, oldest month first."""
    counts: dict[str, dict[str, int]] = {}
    for event in events:
        month = event["at"].astimezone(UTC).strftime("%Y-%m")
        counts.setdefault(month, dict.fromkeys(EVENT_KINDS, 0))[event["kind"]] += 1
    months = sorted(counts)
    return {
        "labels": months,
        **{kind: [counts[month][kind] for month in months] for kind in EVENT_KINDS},
        "rows": [{"month": month, **counts[month]} for month in months],
    }


@require_GET
def journey(request: HttpRequest, external_id: str) -> HttpResponse:
    """One customer's timeline, current stages, RFM scores, p_alive and predicted CLV."""
    customer = customer_get(external_id=external_id)
    if customer is None:
        raise Http404("No such customer.")
    events, truncated = journey_events(customer)
    now = timezone.now()
    features = features_evaluate(
        names=["r_score", "f_score", "m_score", "order_count", "total_spent", "days_since_last_order"],
        as_of=now,
        customer_ids=[customer.pk],
    ).get(customer.pk, {})
    scores = [features.get(name) for name in ("r_score", "f_score", "m_score")]
    segment = segment_of(r=scores[0], f=scores[1], m=scores[2]) if None not in scores else None
    customer_value = customer_value_get(customer_id=customer.pk)
    per_month = events_per_month(events)
    context = {
        **page_context(request, None, "journey"),
        "customer": customer,
        "events": events,
        "truncated": [KIND_NAMES[kind] for kind, more in truncated.items() if more],
        "journey_limit": JOURNEY_LIMIT,
        "stages": customer_current_stages(customer=customer),
        "features": features,
        "segment": SEGMENTS.get(segment) if segment else None,
        "value": customer_value,
        "prediction": customer_value
        and {
            "p_alive_percent": round(customer_value.p_alive * 100, 1),
            "expected_spend_365d": round(customer_value.expected_spend_365d, 2),
            "expected_purchases_365d": round(customer_value.expected_purchases_365d, 2),
        },
        "fitted": customer_value is not None or clv_fit_latest() is not None,
        "per_month": per_month["rows"],
        "chart": {key: per_month[key] for key in ("labels", *EVENT_KINDS)},
    }
    return render(request, "metrics/journey.html", context)
