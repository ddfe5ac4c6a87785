"""Dashboard pages: stage detail and flows (URLs at the bottom, included by metrics/urls.py).

Thin views like metrics/views.py: the numbers come from stored snapshots (flows, time in stage, channel
effectiveness), the stored pipeline series and the lifecycle/campaigns selectors, so each page's query count does
not depend on the number of customers.
"""

from datetime import date, timedelta
from typing import Any

from django.core.paginator import Paginator
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from campaigns.plans import channel_plan_matrix
from clm.base.days import day_end, day_start
from lifecycle.conditions import conditions_describe
from lifecycle.models import LifecycleModel, Stage
from lifecycle.pages import model_or_404, page_context
from lifecycle.selectors import customer_list
from metrics.filters import MetricFilters, period_default
from metrics.flows import flow_customers as flow_customer_queryset
from metrics.forms import PeriodForm
from metrics.selectors import pipeline_series
from metrics.services import metric_result
from metrics.views import PAGE_SIZE, customers_searched

TREND_DAYS = 365
EFFECTIVENESS_WINDOW_DAYS = 30
# The customer list's sort options: the `sort` parameter's values and the columns they order by.
CUSTOMER_SORTS: dict[str, tuple[str, ...]] = {
    "external_id": ("external_id",),
    "-external_id": ("-external_id",),
    "since": ("since", "pk"),
    "-since": ("-since", "-pk"),
    "first_seen": ("first_seen_at", "pk"),
    "-first_seen": ("-first_seen_at", "-pk"),
}
FLOW_CHARTS = ("sankey", "matrix")


class StagePeriodForm(PeriodForm):
    """The period filters without the funnel's conversion window, which flows and time in stage do not use
    (leaving it out also keeps these pages on the precomputed default snapshots)."""

    window_days = None


def _period(form: StagePeriodForm) -> tuple[date, date, str]:
    """The form's period; a start after the end (e.g. only an end before the default start given) falls back to
    the 30 days ending on the end, with a message for the page."""
    start, end = form.period()
    if start > end:
        start, _ignored = period_default(day_end(end))
        return start, end, _("The period started after its end; showing the 30 days ending on its last day.")
    return start, end, ""


def _query(params: QueryDict, drop: tuple[str, ...] = (), **values: Any) -> str:
    """The query string of `params` without the `drop` names, with `values` set (None: removed)."""
    query = params.copy()
    for name in drop:
        query.pop(name, None)
    for name, value in values.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value.isoformat() if isinstance(value, date) else value
    return query.urlencode()


def _flow_link(model: LifecycleModel, base_query: str, from_key: str | None, to_key: str) -> str:
    """The customer list behind a flow cell, with the page's filters and period (no from_stage: "(new)")."""
    cell = QueryDict(mutable=True)
    if from_key is not None:
        cell["from_stage"] = from_key
    cell["to_stage"] = to_key
    return reverse("flow-customers", args=[model.key]) + "?" + "&".join(q for q in (base_query, cell.urlencode()) if q)


def _flows_snapshot(model: LifecycleModel, filters: MetricFilters, start: date, end: date) -> Any:
    snapshot, _computed = metric_result(kind="flows", model=model, filters=filters, params={"start": start, "end": end})
    return snapshot


@require_GET
def stage(request: HttpRequest, key: str, stage_key: str) -> HttpResponse:
    """One stage: its rules in words, count trend, inflow and outflow, time in stage, channel plan and
    effectiveness, and its current customers (paged, sortable, searchable, exportable)."""
    model = model_or_404(key)
    current = get_object_or_404(Stage.objects.prefetch_related("rules"), model=model, key=stage_key)
    form = StagePeriodForm(request.GET or None)
    filters = form.filters()
    start, end, period_message = _period(form)
    # The filters and period as the links to flow customers carry them (explicit dates: the API's defaults differ).
    base_query = _query(request.GET, drop=("page", "q", "sort", "chart"), start=start, end=end)

    rules = [conditions_describe(rule.conditions) for rule in current.rules.all()]

    trend_end = filters.as_of.date()
    series = pipeline_series(model=model, start=trend_end - timedelta(days=TREND_DAYS - 1), end=trend_end)
    trend = [{"day": row["day"].isoformat(), "count": row["counts"].get(current.key, 0)} for row in series["days"]]

    flows = _flows_snapshot(model, filters, start, end)
    inflow = [
        {**cell, "link": _flow_link(model, base_query, cell["from"], cell["to"])}
        for cell in flows.result["cells"]
        if cell["to"] == current.key
    ]
    outflow = [
        {**cell, "link": _flow_link(model, base_query, cell["from"], cell["to"])}
        for cell in flows.result["cells"]
        if cell["from"] == current.key
    ]

    stage_time, _computed = metric_result(kind="time_in_stage", model=model, filters=filters, params={})
    # A stage added after the snapshot was stored has no row in it yet: shown as no stays.
    time_row = next((row for row in stage_time.result["stages"] if row["stage"] == current.key), None) or {
        "completed": 0,
        "ongoing": 0,
        "median_days": None,
        "p75_days": None,
        "p90_days": None,
        "histogram": [0] * len(stage_time.result["bins"]),
    }
    histogram = [
        {"label": bin_["label"], "count": count}
        for bin_, count in zip(stage_time.result["bins"], time_row["histogram"], strict=True)
    ]
    to_next = next((row for row in stage_time.result["conversions"] if row["from_stage"] == current.key), None)

    # Effectiveness reads the whole history (no cohort or channel filter), so only as_of keys its snapshot.
    effectiveness, _computed = metric_result(
        kind="channel_effectiveness",
        model=model,
        filters=MetricFilters(as_of=filters.as_of),
        params={"start": start, "end": end, "window_days": EFFECTIVENESS_WINDOW_DAYS},
    )
    effect = {cell["channel"]: cell for cell in effectiveness.result["cells"] if cell["stage"] == current.key}
    matrix = channel_plan_matrix(model=model)
    row = next(row for row in matrix["rows"] if row.stage.pk == current.pk)
    plan_rows = [
        {
            "channel": channel,
            "plan": plan,
            # 0.2500 shows as 0.25, 10.0000 as 10
            "target": format(plan.kpi_target.normalize(), "f") if plan and plan.kpi_target is not None else None,
            "effect": effect.get(channel.key),
        }
        for channel, plan in zip(matrix["channels"], row.cells, strict=True)
    ]

    sort = request.GET.get("sort", "external_id")
    if sort not in CUSTOMER_SORTS:
        sort = "external_id"
    search = request.GET.get("q", "").strip()
    customers = customers_searched(customer_list(model=model, stage=current), search).order_by(*CUSTOMER_SORTS[sort])
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    list_query = _query(request.GET, drop=("page", "sort"))

    chart = {
        "trend": {"labels": [point["day"] for point in trend], "counts": [point["count"] for point in trend]},
        "histogram": {"labels": [b["label"] for b in histogram], "counts": [b["count"] for b in histogram]},
        "colour": current.colour,
    }
    context = {
        **page_context(request, model, "flows"),
        "form": form,
        "stage": current,
        "is_fallback": model.fallback_stage_id == current.pk,
        "rules": rules,
        "period_start": start,
        "period_end": end,
        "period_message": period_message,
        "trend": trend,
        "trend_computed_at": series["computed_at"],
        "snapshot": flows,
        "flows": flows.result,
        "inflow": inflow,
        "outflow": outflow,
        "inflow_total": flows.result["totals"]["in"].get(current.key, 0),
        "outflow_total": flows.result["totals"]["out"].get(current.key, 0),
        "time": time_row,
        "time_snapshot": stage_time,
        "histogram": histogram,
        "to_next": to_next,
        "plan_rows": plan_rows,
        "effectiveness": effectiveness.result,
        "page_obj": page,
        "search": search,
        "sort": sort,
        "sort_query": list_query,
        "filter_query": _query(request.GET, drop=("page", "q", "sort")),
        "export_url": reverse("api-segment-export", args=[model.key, current.key]),
        "chart": chart,
    }
    return render(request, "metrics/stage.html", context)


@require_GET
def flows(request: HttpRequest, key: str) -> HttpResponse:
    """From × to over a period: a Sankey or a heat matrix, and a table of every cell linking to its customers."""
    model = model_or_404(key)
    form = StagePeriodForm(request.GET or None)
    filters = form.filters()
    start, end, period_message = _period(form)
    chart_kind = request.GET.get("chart", "sankey")
    if chart_kind not in FLOW_CHARTS:
        chart_kind = "sankey"
    snapshot = _flows_snapshot(model, filters, start, end)
    result = snapshot.result
    base_query = _query(request.GET, drop=("page", "q", "chart"), start=start, end=end)
    cells = [{**cell, "link": _flow_link(model, base_query, cell["from"], cell["to"])} for cell in result["cells"]]
    colours = dict(Stage.objects.filter(model=model).values_list("key", "colour"))
    stages = []
    for row in result["stages"]:
        into, out = result["totals"]["in"][row["key"]], result["totals"]["out"][row["key"]]
        stages.append({**row, "colour": colours.get(row["key"]), "in": into, "out": out, "net": into - out})
    chart = {
        "kind": chart_kind,
        "new_label": _("(new)"),
        "stages": [{"key": row["key"], "name": row["name"], "colour": row["colour"]} for row in stages],
        "cells": [{"from": cell["from"], "to": cell["to"], "count": cell["count"]} for cell in result["cells"]],
    }
    context = {
        **page_context(request, model, "flows"),
        "form": form,
        "snapshot": snapshot,
        "result": result,
        "cells": cells,
        "stages": stages,
        "period_start": start,
        "period_end": end,
        "period_message": period_message,
        "chart_kind": chart_kind,
        "chart_query": _query(request.GET, drop=("chart",)),
        "filter_query": _query(request.GET, drop=("chart", "page", "q")),
        "chart": chart,
    }
    return render(request, "metrics/flows.html", context)


@require_GET
def flow_customers(request: HttpRequest, key: str) -> HttpResponse:
    """The distinct customers behind one flow cell (from_stage omitted: first classifications)."""
    model = model_or_404(key)
    form = StagePeriodForm(request.GET or None)
    filters = form.filters()
    start, end, period_message = _period(form)
    from_key, to_key = request.GET.get("from_stage") or None, request.GET.get("to_stage", "")
    stages = {row.key: row for row in Stage.objects.filter(model=model)}
    if to_key not in stages or (from_key is not None and from_key not in stages):
        raise Http404("Unknown stage.")
    customers = flow_customer_queryset(
        model=model, start=day_start(start), end=day_end(end), filters=filters, from_key=from_key, to_key=to_key
    )
    search = request.GET.get("q", "").strip()
    customers = customers_searched(customers, search).annotate(channel_key=F("acquisition_channel__key")).order_by("pk")
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    export = QueryDict(_query(request.GET, drop=("page", "q", "chart"), start=start, end=end), mutable=True)
    export["export"] = "csv"
    context = {
        **page_context(request, model, "flows"),
        "form": form,
        "from_stage": stages.get(from_key) if from_key else None,
        "to_stage": stages[to_key],
        "period_start": start,
        "period_end": end,
        "period_message": period_message,
        "page_obj": page,
        "search": search,
        "back_query": _query(request.GET, drop=("page", "q", "from_stage", "to_stage")),
        "export_url": reverse("api-model-flow-customers", args=[model.key]) + "?" + export.urlencode(),
    }
    return render(request, "metrics/flow_customers.html", context)
