"""The cohorts page: the retention heatmap (share or revenue, by channel), the activity lifecycle, RFM segments and
their movement; and the customers behind a retention cell."""

from datetime import timedelta
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from lifecycle.pages import page_context
from metrics.cohorts import MEASURES, cohort_customers
from metrics.filters import MetricFilters
from metrics.forms import FiltersForm
from metrics.rfm import SEGMENTS
from metrics.services import metric_result
from metrics.views import PAGE_SIZE, customers_searched

MAX_MONTH = 23  # the retention matrix has months 0..23
MOVEMENT_DAYS = 90  # default period of the RFM segment movement


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
