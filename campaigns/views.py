"""Dashboard pages of the campaigns area (SPEC §7, issue 6 pages 7 and 8): campaigns and experiments.

Thin views over the services in campaigns/campaigns/ and experiments/ (the channel-plans page, which shows
metrics' effectiveness beside the plans, is on the top floor: clm/channel_plans.py). Everyone logged in reads
(LoginRequiredMiddleware); changes need the marketer role (admins included) and answer 403 to viewers, checked on
the server for every POST. Services validate: their errors are shown next to the form fields and nothing is saved.
"""

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns.campaigns.crud import campaign_create, campaign_get, campaign_list, campaign_update
from campaigns.campaigns.results import campaign_results
from campaigns.campaigns.spend import campaign_spend_record_status as spend_record
from campaigns.experiments.crud import (
    experiment_create,
    experiment_get,
    experiment_list,
    experiment_start,
    experiment_stop,
)
from campaigns.experiments.errors import ExperimentError
from campaigns.experiments.results import experiment_results
from campaigns.forms import (
    VARIANTS_INITIAL,
    AsOfForm,
    CampaignForm,
    ExperimentForm,
    SpendForm,
    VariantFormSet,
    name_in_language,
    variants_data,
)
from campaigns.models import Campaign, CampaignStatus, Experiment
from clm.base.days import day_end
from clm.base.forms import errors_add
from clm.base.roles import Role, user_has_role
from lifecycle.pages import page_context


def marketer_required(request: HttpRequest) -> None:
    if not user_has_role(request.user, Role.MARKETER):
        raise PermissionDenied(_("Only marketers and admins can change plans, campaigns and experiments."))


def percent(share: float | None) -> float | None:
    return None if share is None else share * 100


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
        as_of = day_end(as_of_form.cleaned_data["as_of"])
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
            "advancement_pct": percent(results["advancement"]["rate"]),
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
                "rate_pct": percent(row["conversion_rate"]),
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
            "several_compared": sum(row["p_value"] is not None for row in variants) > 1,
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
