"""Dashboard pages of the campaigns area (SPEC §7, issue 6 pages 7 and 8): channel plans, campaigns, experiments.

Thin views over the services in campaigns/plans.py, campaigns.py, experiments.py and the stored channel
effectiveness snapshot. Everyone logged in reads (LoginRequiredMiddleware); changes need the marketer role
(admins included) and answer 403 to viewers, checked on the server for every POST. Services validate: their
errors are shown next to the form fields and nothing is saved.
"""

from datetime import UTC, date, datetime, time
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns.campaigns import campaign_create, campaign_get, campaign_list, campaign_results, campaign_update
from campaigns.campaigns import campaign_spend_record_status as spend_record
from campaigns.effectiveness import DEFAULT_WINDOW_DAYS
from campaigns.experiments import (
    ExperimentError,
    experiment_create,
    experiment_get,
    experiment_list,
    experiment_results,
    experiment_start,
    experiment_stop,
)
from campaigns.forms import (
    VARIANTS_INITIAL,
    AsOfForm,
    CampaignForm,
    ChannelPlanForm,
    ExperimentForm,
    SpendForm,
    VariantFormSet,
    errors_add,
    name_in_language,
    variants_data,
)
from campaigns.models import Campaign, CampaignStatus, ChannelPlan, Experiment
from campaigns.plans import channel_plan_matrix, channel_plan_upsert
from clm.pages import default_model_redirect, model_or_404, page_context
from clm.roles import Role, user_has_role
from lifecycle.models import Channel, LifecycleModel, Stage

EFFECTIVENESS_DAYS = 90  # the plan page's period: the 90 days ending today (precomputed hourly by metrics)


def marketer_required(request: HttpRequest) -> None:
    if not user_has_role(request.user, Role.MARKETER):
        raise PermissionDenied(_("Only marketers and admins can change plans, campaigns and experiments."))


def _pct(share: float | None) -> float | None:
    return None if share is None else share * 100


# --- channel plans ---------------------------------------------------------------------------------------


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
    from metrics.filters import MetricFilters
    from metrics.kinds import day_end, period_default
    from metrics.services import metric_result

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
        "treated_pct": _pct(cell["treated_share"]),
        "untreated_pct": _pct(cell["untreated_share"]),
        "difference_pts": _pct(cell["difference"]),
        "ci_low_pts": _pct(cell["ci_low"]),
        "ci_high_pts": _pct(cell["ci_high"]),
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


# --- campaigns -------------------------------------------------------------------------------------------


def _campaign_or_404(campaign_id: int) -> Campaign:
    campaign = campaign_get(campaign_id=campaign_id)
    if campaign is None:
        raise Http404("Unknown campaign.")
    return campaign


@require_GET
def campaigns(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    if status not in (None, *CampaignStatus.values):
        status = None
    context = page_context(request, None, "campaign-list")
    context.update({"campaigns": campaign_list(status=status), "status": status, "statuses": CampaignStatus.choices})
    return render(request, "campaigns/campaign_list.html", context)


def _campaign_detail_page(
    request: HttpRequest, campaign: Campaign, spend_form: SpendForm | None = None, status: int = 200
) -> HttpResponse:
    as_of_form = AsOfForm(request.GET or None)
    as_of = None
    if as_of_form.is_valid() and as_of_form.cleaned_data["as_of"]:
        as_of = datetime.combine(as_of_form.cleaned_data["as_of"], time.max, UTC)
    results = campaign_results(campaign=campaign, as_of=as_of)
    revenue = results["revenue"]
    chart = {
        "labels": [_("Spend"), _("Revenue: campaign code"), _("Revenue: touchpoint window")],
        "values": [results["spend"], revenue["campaign_code"]["revenue"], revenue["touchpoint_window"]["revenue"]],
    }
    context = page_context(request, None, "campaign-list")
    context.update(
        {
            "campaign": campaign,
            "stage_names": [name_in_language(stage) for stage in campaign.stages.all()],
            "results": results,
            "advancement_pct": _pct(results["advancement"]["rate"]),
            "as_of_form": as_of_form,
            "chart": chart,
            "spend_form": spend_form if spend_form is not None else (SpendForm() if context["can_edit"] else None),
        }
    )
    return render(request, "campaigns/campaign_detail.html", context, status=status)


@require_GET
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    return _campaign_detail_page(request, _campaign_or_404(campaign_id))


@require_POST
def campaign_spend(request: HttpRequest, campaign_id: int) -> HttpResponse:
    marketer_required(request)
    campaign = _campaign_or_404(campaign_id)
    form = SpendForm(request.POST)
    if form.is_valid():
        try:
            recorded = spend_record(campaign=campaign, **form.cleaned_data)
        except ValidationError as error:
            errors_add(form, error)
        else:
            text = {
                "created": _("Spend recorded."),
                "updated": _("Spend updated: the amount for that period replaces the one recorded before."),
                "unchanged": _("That spend was already recorded; nothing changed."),
            }[recorded.status]
            messages.success(request, text)
            return redirect("campaign-detail", campaign_id=campaign.pk)
    return _campaign_detail_page(request, campaign, spend_form=form, status=400)


def _campaign_form_page(request: HttpRequest, form: CampaignForm, campaign: Campaign | None, status: int = 200):
    context = page_context(request, None, "campaign-list")
    context.update({"form": form, "campaign": campaign})
    return render(request, "campaigns/campaign_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
def campaign_new(request: HttpRequest) -> HttpResponse:
    marketer_required(request)
    if request.method != "POST":
        return _campaign_form_page(request, CampaignForm(), None)
    form = CampaignForm(request.POST)
    if form.is_valid():
        try:
            campaign = campaign_create(actor=request.user, **form.campaign_fields())
        except ValidationError as error:
            errors_add(form, error)
        else:
            messages.success(request, _("Campaign %(name)s created.") % {"name": campaign.name})
            return redirect("campaign-detail", campaign_id=campaign.pk)
    return _campaign_form_page(request, form, None, status=400)


@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    marketer_required(request)
    campaign = _campaign_or_404(campaign_id)
    if request.method != "POST":
        initial = {
            **{name: getattr(campaign, name) for name in CampaignForm.base_fields if name != "stages"},
            "stages": list(campaign.stages.all()),
        }
        return _campaign_form_page(request, CampaignForm(initial=initial), campaign)
    form = CampaignForm(request.POST)
    if form.is_valid():
        try:
            campaign_update(campaign=campaign, data=form.campaign_fields(), actor=request.user)
        except ValidationError as error:
            errors_add(form, error)
        else:
            messages.success(request, _("Campaign %(name)s saved.") % {"name": campaign.name})
            return redirect("campaign-detail", campaign_id=campaign.pk)
    return _campaign_form_page(request, form, campaign, status=400)


# --- experiments -----------------------------------------------------------------------------------------


def _experiment_or_404(key: str) -> Experiment:
    experiment = experiment_get(key=key)
    if experiment is None:
        raise Http404("Unknown experiment.")
    return experiment


@require_GET
def experiments(request: HttpRequest) -> HttpResponse:
    context = page_context(request, None, "experiment-list")
    context["experiments"] = experiment_list()
    return render(request, "campaigns/experiment_list.html", context)


def _interval_pts(interval: dict[str, float] | None) -> dict[str, float] | None:
    if interval is None:
        return None
    return {name: value * 100 for name, value in interval.items()}


@require_GET
def experiment_detail(request: HttpRequest, key: str) -> HttpResponse:
    experiment = _experiment_or_404(key)
    results = experiment_results(experiment=experiment)
    variants = []
    for row in results["variants"]:
        uplift = row["uplift"] or {}
        variants.append(
            {
                **row,
                "rate_pct": _pct(row["conversion_rate"]),
                "absolute_pts": _interval_pts(uplift.get("absolute")),
                "relative_pct": _interval_pts(uplift.get("relative")),
            }
        )
    compared = [row for row in variants if row["absolute_pts"] is not None]
    chart = {
        "labels": [row["name"] for row in compared],
        "estimate": [row["absolute_pts"]["estimate"] for row in compared],
        "interval": [[row["absolute_pts"]["low"], row["absolute_pts"]["high"]] for row in compared],
        "confidence": round((1 - experiment.alpha) * 100, 1),
    }
    chart["axis_label"] = _("Uplift vs control (points)")
    chart["estimate_label"] = _("Uplift")
    chart["interval_label"] = _("%(level)s %% confidence interval") % {"level": f"{chart['confidence']:g}"}
    context = page_context(request, None, "experiment-list")
    context.update(
        {
            "experiment": experiment,
            "results": results,
            "variants": variants,
            "chart": chart,
            "enough_data": results["state"] != "not_enough_data",
            "confidence_pct": f"{chart['confidence']:g}",
        }
    )
    return render(request, "campaigns/experiment_detail.html", context)


@require_http_methods(["GET", "POST"])
def experiment_new(request: HttpRequest) -> HttpResponse:
    marketer_required(request)
    variant_errors: list[str] = []
    if request.method != "POST":
        form, formset, status = ExperimentForm(), VariantFormSet(prefix="variants", initial=VARIANTS_INITIAL), 200
    else:
        form, formset, status = ExperimentForm(request.POST), VariantFormSet(request.POST, prefix="variants"), 400
        if form.is_valid() and formset.is_valid():
            try:
                experiment = experiment_create(
                    user=request.user, variants=variants_data(formset), **form.experiment_fields()
                )
            except ValidationError as error:
                # The variants' problems (no control, weights all 0, …) go above the variant rows.
                variant_errors = error.message_dict.get("variants", [])
                errors_add(form, error, skip=("variants",))
            else:
                messages.success(request, _("Experiment %(name)s created as a draft.") % {"name": experiment.name})
                return redirect("experiment-detail", key=experiment.key)
    context = page_context(request, None, "experiment-list")
    context.update({"form": form, "formset": formset, "variant_errors": variant_errors})
    return render(request, "campaigns/experiment_form.html", context, status=status)


def _experiment_change(request: HttpRequest, key: str, change: Any, done: str) -> HttpResponse:
    marketer_required(request)
    experiment = _experiment_or_404(key)
    try:
        change(experiment=experiment, user=request.user)
    except ExperimentError as error:
        messages.error(request, str(error))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, done % {"name": experiment.name})
    return redirect("experiment-detail", key=experiment.key)


@require_POST
def experiment_start_view(request: HttpRequest, key: str) -> HttpResponse:
    return _experiment_change(request, key, experiment_start, _("Experiment %(name)s started."))


@require_POST
def experiment_stop_view(request: HttpRequest, key: str) -> HttpResponse:
    return _experiment_change(request, key, experiment_stop, _("Experiment %(name)s stopped."))


urlpatterns = [
    path("plans/", default_model_redirect("plans"), name="plans-default"),
    path("models/<slug:key>/plans/", plans, name="plans"),
    path("models/<slug:key>/plans/<slug:stage>/<slug:channel>/", plan_cell, name="plan-cell"),
    path("campaigns/", campaigns, name="campaign-list"),
    path("campaigns/new/", campaign_new, name="campaign-new"),
    path("campaigns/<int:campaign_id>/", campaign_detail, name="campaign-detail"),
    path("campaigns/<int:campaign_id>/edit/", campaign_edit, name="campaign-edit"),
    path("campaigns/<int:campaign_id>/spend/", campaign_spend, name="campaign-spend"),
    path("experiments/", experiments, name="experiment-list"),
    path("experiments/new/", experiment_new, name="experiment-new"),
    path("experiments/<slug:key>/", experiment_detail, name="experiment-detail"),
    path("experiments/<slug:key>/start/", experiment_start_view, name="experiment-start"),
    path("experiments/<slug:key>/stop/", experiment_stop_view, name="experiment-stop"),
]
