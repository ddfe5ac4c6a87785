"""Dashboard pages: overview (URLs at the bottom, included by metrics/urls.py).

The overview of one lifecycle model as of a day: KPIs with their change against the previous period of the same
length, the funnel with every drop-off flagged, the stage trend of the last 365 days, the freshness of the data and
the state of the last runs. Everything is read from stored snapshots and small tables, so the number of queries does
not depend on the number of customers.
"""

import hashlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Avg, Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from clm.base.days import day_end
from clm.base.health import health_report
from lifecycle.models import ClassificationRun, LifecycleModel, Stage
from lifecycle.pages import model_or_404, page_context
from lifecycle.selectors import data_summary, model_pipeline
from metrics.filters import MetricFilters, period_default
from metrics.forms import FiltersForm
from metrics.kinds import params_key
from metrics.models import ClvFit, CustomerValue
from metrics.selectors import clv_fit_latest, metrics_runs_latest, pipeline_series
from metrics.services import metric_result

PERIOD_DAYS = 30  # the rates' period: the 30 days ending as of the filters' day (the default rates snapshot)
TREND_DAYS = 365

# The rates shown as KPIs, in order: (key in the rates result, label, unit).
RATE_KPIS = [
    ("conversion_rate", _("Conversion rate"), "share"),
    ("repeat_purchase_rate", _("Repeat purchase rate"), "share"),
    ("churn_rate", _("Churn rate"), "share"),
    ("nps", _("NPS"), "score"),
]
# How each unit is shown: `decimals` is floatformat's argument ("g": with thousands separators), then the value's
# suffix, the change's suffix and the factor from the raw value to the shown number.
UNITS: dict[str, dict[str, Any]] = {
    "share": {"decimals": "1", "suffix": " %", "change_suffix": _(" pp"), "factor": 100},
    "score": {"decimals": "1", "suffix": "", "change_suffix": _(" points"), "factor": 1},
    "money": {"decimals": "2g", "suffix": "", "change_suffix": "", "factor": 1},
    "count": {"decimals": "0g", "suffix": "", "change_suffix": "", "factor": 1},
}


def _shown(value: float | None, unit: str) -> float | None:
    return None if value is None else value * UNITS[unit]["factor"]


def kpi(
    *,
    key: str,
    label: Any,
    unit: str,
    value: float | None,
    previous: float | None,
    lower_is_better: bool | None = False,
    compared: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """One KPI card: the raw value and previous value, and what the page shows (in the unit's scale).

    `change` is the shown value minus the shown previous value (percentage points for shares); `tone` says whether
    that change is good or bad (none when `lower_is_better` is None: more customers in a stage is neither).
    """
    shown, shown_previous = _shown(value, unit), _shown(previous, unit)
    change = shown - shown_previous if shown is not None and shown_previous is not None else None
    tone = ""
    if change and lower_is_better is not None:
        tone = "good" if (change < 0) == lower_is_better else "bad"
    return {
        "key": key,
        "label": label,
        "unit": unit,
        "value": value,
        "previous": previous,
        "shown": shown,
        "previous_shown": shown_previous,
        "change": change,
        "tone": tone,
        "compared": compared,
        **UNITS[unit],
        **extra,
    }


# How long the mean prediction of a fit for some filters is reused (customers come and go between fits).
PREDICTED_CLV_SECONDS = 60


def predicted_clv(*, fit: ClvFit | None, filters: MetricFilters) -> dict[str, Any]:
    """The mean predicted 365-day spend of the latest fit's customers (the filtered ones): one aggregate query over
    every prediction (~100 ms at a million), kept in the cache per fit and filters for PREDICTED_CLV_SECONDS."""
    if fit is None:
        return {"mean": None, "customers": 0}
    key = f"metrics:predicted-clv:{fit.pk}:{hashlib.sha256(params_key(filters, {}).encode()).hexdigest()}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    values = CustomerValue.objects.filter(fit=fit)
    if filters.filters_customers:
        values = values.filter(customer__in=filters.customers().values("pk"))
    row = values.aggregate(mean=Avg("expected_spend_365d"), customers=Count("pk"))
    result = {"mean": row["mean"], "customers": row["customers"]}
    cache.set(key, result, PREDICTED_CLV_SECONDS)
    return result


def classification_runs_latest() -> list[ClassificationRun]:
    """The latest classification run of each lifecycle model (models without a run are left out): one query."""
    latest = ClassificationRun.objects.filter(model=OuterRef("pk")).order_by("-started_at", "-pk").values("pk")[:1]
    run_ids = LifecycleModel.objects.annotate(run_id=Subquery(latest)).filter(run_id__isnull=False).values("run_id")
    return list(ClassificationRun.objects.filter(pk__in=run_ids).select_related("model").order_by("model__key"))


def stage_name(stage: Stage) -> str:
    """The stage's name in the page's language (chart labels are built here, not in the template)."""
    return stage.name_de if (get_language() or "").startswith("de") else stage.name_en


def trend(*, series: dict[str, Any], stages: list[Stage]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The stage trend: the chart's data (every day, one dataset per stage) and its table (each month's last day
    in the series, and the series' last day)."""
    days = series["days"]
    chart = {
        "labels": [day["day"].isoformat() for day in days],
        "datasets": [
            {
                "stage": stage.key,
                "label": stage_name(stage),
                "colour": stage.colour,
                "data": [day["counts"][stage.key] for day in days],
            }
            for stage in stages
        ],
    }
    rows = [
        {"day": day["day"], "counts": [day["counts"][stage.key] for stage in stages]}
        for i, day in enumerate(days)
        if i + 1 == len(days) or days[i + 1]["day"].month != day["day"].month
    ]
    return chart, rows


def overview_context(request: HttpRequest, model: LifecycleModel) -> dict[str, Any]:
    """Everything the overview shows for `model`, as of the filters' day."""
    form = FiltersForm(request.GET or None)
    filters = form.filters()
    start, end = period_default(filters.as_of, days=PERIOD_DAYS)
    previous_start, previous_end = start - timedelta(days=PERIOD_DAYS), end - timedelta(days=PERIOD_DAYS)
    previous_filters = replace(filters, as_of=day_end(previous_end))

    funnel, _computed = metric_result(kind="funnel", model=model, filters=filters, params={})
    rates, _computed = metric_result(kind="rates", model=model, filters=filters, params={"start": start, "end": end})
    rates_before, _computed = metric_result(
        kind="rates", model=model, filters=filters, params={"start": previous_start, "end": previous_end}
    )
    cac, _computed = metric_result(kind="cac", model=None, filters=filters, params={})
    cac_before, _computed = metric_result(kind="cac", model=None, filters=previous_filters, params={})
    fit = clv_fit_latest()
    clv = predicted_clv(fit=fit, filters=filters)

    kpis = []
    for key, label, unit in RATE_KPIS:
        rate, before = rates.result["rates"][key], rates_before.result["rates"][key]
        kpis.append(
            kpi(
                key=key,
                label=label,
                unit=unit,
                value=rate["value"],
                previous=before["value"],
                lower_is_better=key == "churn_rate",
                numerator=rate["numerator"],
                denominator=rate["denominator"],
                goal=_shown(rate.get("goal"), unit),
                benchmark=_shown(rate.get("benchmark"), unit),
                below_goal=rate.get("below_goal", False),
                below_benchmark=rate.get("below_benchmark", False),
            )
        )
    kpis.append(kpi(key="predicted_clv", label=_("Predicted CLV (365 days)"), unit="money", value=clv["mean"],
                    previous=None, compared=False, fit=fit, customers=clv["customers"]))  # fmt: skip
    kpis.append(
        kpi(
            key="cac",
            label=_("Blended CAC"),
            unit="money",
            value=cac.result["totals"]["cac"],
            previous=cac_before.result["totals"]["cac"],
            lower_is_better=True,
            numerator=cac.result["totals"]["spend"],
            denominator=cac.result["totals"]["new_customers"],
        )
    )

    # Customers per stage: now (the current stages) or, for a past day, from the transition log; the change is
    # against the stored pipeline series at the end of the previous period (when the series has been computed).
    stages = list(Stage.objects.filter(model=model).order_by("position", "pk"))
    series = pipeline_series(model=model, start=end - timedelta(days=TREND_DAYS - 1), end=end)
    is_now = end >= timezone.now().date()
    pipeline = model_pipeline(model=model, as_of=None if is_now else filters.as_of)
    counts_before = next((day["counts"] for day in series["days"] if day["day"] == previous_end), None)
    by_key = {stage.key: stage for stage in stages}
    stage_kpis = [
        kpi(
            key=row.key,
            label=stage_name(by_key[row.key]),
            unit="count",
            value=row.count,
            previous=counts_before[row.key] if series["computed_at"] and counts_before else None,
            lower_is_better=None,
            stage=by_key[row.key],
        )
        for row in pipeline
    ]
    chart, trend_rows = trend(series=series, stages=stages)
    steps = funnel.result["steps"]
    report, _up = health_report()
    return {
        **page_context(request, model, "overview"),
        "form": form,
        "filters": filters,
        "query": request.GET.urlencode(),
        "snapshot": funnel,
        "funnel": funnel.result,
        "biggest_drop_off": next((step for step in steps if step["biggest_drop_off"]), None),
        "kpis": kpis,
        "stage_kpis": stage_kpis,
        "stages_now": is_now,
        "period": {"start": start, "end": end, "previous_start": previous_start, "previous_end": previous_end},
        "rates": rates.result,
        "cac": cac.result,
        "clv_fit": fit,
        "series": series,
        "trend_chart": chart,
        "trend_stages": stages,
        "trend_rows": trend_rows,
        "classification_runs": classification_runs_latest(),
        "metrics_runs": metrics_runs_latest(),
        "summary": data_summary(),
        "health": report,
    }


def overview_render(request: HttpRequest, model: LifecycleModel) -> HttpResponse:
    return render(request, "metrics/overview.html", overview_context(request, model))


@require_GET
def overview(request: HttpRequest, key: str) -> HttpResponse:
    return overview_render(request, model_or_404(key))
