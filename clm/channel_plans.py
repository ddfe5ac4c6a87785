"""The channel-plans page (SPEC §7): each stage × channel plan of campaigns, with the channel effectiveness that
metrics stores for the period, and each cell's edit form. Both areas meet here, on the top floor.

Everyone logged in reads; changes need the marketer role (admins included), checked on the server for every POST.
"""

from datetime import date
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from campaigns.effectiveness import DEFAULT_WINDOW_DAYS
from campaigns.forms import ChannelPlanForm, name_in_language
from campaigns.models import ChannelPlan
from campaigns.plans import channel_plan_matrix, channel_plan_upsert
from campaigns.views import marketer_required, percent
from clm.base.days import day_end
from clm.base.forms import errors_add
from lifecycle.models import Channel, LifecycleModel, Stage
from lifecycle.pages import model_or_404, page_context
from metrics.filters import MetricFilters, period_default
from metrics.services import metric_result

EFFECTIVENESS_DAYS = 90  # the plan page's period: the 90 days ending today (precomputed hourly by metrics)


def _as_of_day(request: HttpRequest) -> tuple[date, str]:
    """The page's `?as_of=YYYY-MM-DD` (default today) and a message when it could not be used."""
    today = timezone.now().date()
    text = request.GET.get("as_of", "").strip()
    if not text:
        return today, ""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return today, _("“%(value)s” is not a date (YYYY-MM-DD); showing today.") % {"value": text}
    if day > today:
        return today, _("%(value)s is in the future; showing today.") % {"value": text}
    return day, ""


def _effectiveness(model: LifecycleModel, day: date) -> dict[str, Any]:
    """The stored channel effectiveness of the 90 days ending on `day` (window 30) — the snapshot metrics
    precomputes hourly for today — computed and stored here when missing or stale."""
    as_of = day_end(day)
    start, end = period_default(as_of, days=EFFECTIVENESS_DAYS)
    params = {"start": start, "end": end, "window_days": DEFAULT_WINDOW_DAYS}
    snapshot, _computed = metric_result(
        kind="channel_effectiveness", model=model, filters=MetricFilters(as_of=as_of), params=params
    )
    return snapshot.result


def _effect(cell: dict[str, Any] | None) -> dict[str, Any] | None:
    if cell is None:
        return None
    return {
        **cell,
        "treated_pct": percent(cell["treated_share"]),
        "untreated_pct": percent(cell["untreated_share"]),
        "difference_pts": percent(cell["difference"]),
        "ci_low_pts": percent(cell["ci_low"]),
        "ci_high_pts": percent(cell["ci_high"]),
        # An interval wholly above (below) 0: touched customers advance more (less) often than the others.
        "direction": (
            "up"
            if cell["ci_low"] is not None and cell["ci_low"] > 0
            else "down"
            if cell["ci_high"] is not None and cell["ci_high"] < 0
            else ""
        ),
    }


def _target(plan: ChannelPlan | None) -> str:
    """A KPI target without trailing zeros (30, 12.5), as marketers write it."""
    if plan is None or plan.kpi_target is None:
        return ""
    return f"{plan.kpi_target.normalize():f}"


def _plan_initial(plan: ChannelPlan | None) -> dict[str, Any]:
    if plan is None:
        return {"active": True}
    return {**{name: getattr(plan, name) for name in ChannelPlanForm.base_fields}, "kpi_target": _target(plan) or None}


def _cell_form(stage: Stage, channel: Channel, plan: ChannelPlan | None, data: Any = None) -> ChannelPlanForm:
    # Every cell's form is on the same page: ids carry the cell so labels stay unique.
    return ChannelPlanForm(data, initial=_plan_initial(plan), auto_id=f"id_{stage.key}_{channel.key}_%s")


def _plans_page(
    request: HttpRequest, model: LifecycleModel, bound: tuple[Stage, Channel, ChannelPlanForm] | None = None
) -> HttpResponse:
    context = page_context(request, model, "plans")
    matrix = channel_plan_matrix(model=model)
    day, as_of_message = _as_of_day(request)
    effectiveness = _effectiveness(model, day)
    effects = {(cell["stage"], cell["channel"]): cell for cell in effectiveness["cells"]}
    rows = []
    for row in matrix["rows"]:
        cells = []
        for channel, plan in zip(matrix["channels"], row.cells, strict=True):
            is_bound = bound is not None and (bound[0].pk, bound[1].pk) == (row.stage.pk, channel.pk)
            form = None
            if context["can_edit"]:
                form = bound[2] if is_bound else _cell_form(row.stage, channel, plan)
            cells.append(
                {
                    "channel": channel,
                    "plan": plan,
                    "target": _target(plan),
                    "effect": _effect(effects.get((row.stage.key, channel.key))),
                    "form": form,
                    "open": is_bound,
                }
            )
        rows.append({"stage": row.stage, "name": name_in_language(row.stage), "cells": cells})
    context.update(
        {
            "model_name": name_in_language(model),
            "channels": [{"channel": channel, "name": name_in_language(channel)} for channel in matrix["channels"]],
            "rows": rows,
            "has_errors": bound is not None,
            "effectiveness": effectiveness,
            "period": {"start": effectiveness["start"][:10], "end": effectiveness["end"][:10]},
            "as_of": day,
            "as_of_message": as_of_message,
        }
    )
    return render(request, "campaigns/plans.html", context, status=400 if bound else 200)


@require_GET
def plans(request: HttpRequest, key: str) -> HttpResponse:
    return _plans_page(request, model_or_404(key))


def _cell_or_404(model: LifecycleModel, stage_key: str, channel_key: str) -> tuple[Stage, Channel]:
    stage = get_object_or_404(Stage, model=model, key=stage_key)
    channel = get_object_or_404(Channel, key=channel_key, active=True)
    return stage, channel


@require_http_methods(["GET", "POST"])
def plan_cell(request: HttpRequest, key: str, stage: str, channel: str) -> HttpResponse:
    """One cell: GET shows its plan and edit form on a page of its own; POST creates or changes the plan."""
    model = model_or_404(key)
    stage_obj, channel_obj = _cell_or_404(model, stage, channel)
    plan = ChannelPlan.objects.filter(stage=stage_obj, channel=channel_obj).first()
    if request.method == "POST":
        marketer_required(request)
        form = _cell_form(stage_obj, channel_obj, plan, request.POST)
        if form.is_valid():
            try:
                channel_plan_upsert(
                    stage=stage_obj, channel=channel_obj, model=model, user=request.user, **form.plan_fields()
                )
            except ValidationError as error:
                errors_add(form, error)
            else:
                messages.success(
                    request,
                    _("Saved the plan for %(stage)s × %(channel)s.")
                    % {"stage": name_in_language(stage_obj), "channel": name_in_language(channel_obj)},
                )
                return redirect(reverse("plans", args=[model.key]) + f"#cell-{stage_obj.key}-{channel_obj.key}")
        # Back to the matrix with this cell's form open and its errors next to the fields.
        return _plans_page(request, model, bound=(stage_obj, channel_obj, form))
    context = page_context(request, model, "plans")
    context.update(
        {
            "stage": stage_obj,
            "stage_name": name_in_language(stage_obj),
            "channel": channel_obj,
            "channel_name": name_in_language(channel_obj),
            "plan": plan,
            "target": _target(plan),
            "form": _cell_form(stage_obj, channel_obj, plan) if context["can_edit"] else None,
        }
    )
    return render(request, "campaigns/plan_cell.html", context)
