"""Admin: browse the shop data; admins edit lifecycle models, stages, rules and channels (SPEC §1, §3).

- Editing lifecycle models, stages and rules needs the admin role (superusers count); other staff users
  with view permission see them read-only.
- Models, stages, rules and channels keep an audit history (django-simple-history): who, when, and the
  before/after of every field, on each object's History page. Past versions are shown, never restored:
  a restore would bypass validation, the preview and the reclassification run.
- A rule is edited as one row per condition. Saving goes through a preview (how many customers would move
  from which stage to which, lifecycle.preview); confirming saves it and queues a full `rule_change` run
  of the model once the change is committed. Stage or fallback changes that alter the classification
  queue the same run.
- A stage that customers are in (or have been in) is not deleted: the refusal gives the count
  (docs/LIFECYCLE_ADMIN.md explains the decision).
"""

import hashlib
import json
import logging
import math
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import NestedObjects, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import router, transaction
from django.forms.formsets import DELETION_FIELD_NAME
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from simple_history.template_utils import HistoricalRecordContextHelper

from clm.base.admin import AuditHistoryAdmin
from clm.base.roles import Role, user_has_role
from lifecycle.conditions import conditions_describe
from lifecycle.features import FEATURES
from lifecycle.forms import (
    BACKFILL_STEP_LABELS,
    MAX_CONDITIONS,
    BackfillForm,
    ConditionForm,
    ConditionFormSet,
    LifecycleModelForm,
    RuleForm,
    StageForm,
    StageInlineForm,
    StageInlineFormSet,
    TemplateInstallForm,
    stage_delete_blockers,
)
from lifecycle.models import (
    Channel,
    Customer,
    CustomerStage,
    Feedback,
    LifecycleModel,
    Order,
    RunKind,
    Stage,
    StageRule,
    StageTransition,
    Touchpoint,
)
from lifecycle.preview import RulesByStage, rules_by_stage_stored, rules_preview
from lifecycle.privacy import REASON_MAX_LENGTH, customer_data_export, customer_erase
from lifecycle.rules import RuleError, model_validate
from lifecycle.tasks import backfill_model, reclassify_model
from lifecycle.templates import template_install

logger = logging.getLogger(__name__)


def _is_admin(request: HttpRequest) -> bool:
    """The admin role (cached on the request: permission checks run many times per page)."""
    if not hasattr(request, "_clm_is_admin"):
        request._clm_is_admin = user_has_role(request.user, Role.ADMIN)  # type: ignore[attr-defined]
    return request._clm_is_admin  # type: ignore[attr-defined]


class AdminRoleEditing:
    """Adding, changing and deleting need the admin role; viewing follows the model permissions."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return _is_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_admin(request)


def _run_enqueue(request: HttpRequest, model: LifecycleModel, kind: RunKind) -> None:
    """Queue a full run of an active model once the change is committed.

    If the broker cannot take it, the change is stored anyway and the next periodic pass applies it.
    """
    if not model.active:
        return
    model_id, name = model.pk, model.name_en

    def enqueue() -> None:
        try:
            reclassify_model.delay(model_id, kind)
        except Exception:
            logger.exception("could not queue the %s run of model %s", kind, model_id)
            messages.warning(
                request,
                _("The reclassification of “%(model)s” could not be queued; the next periodic run applies it.")
                % {"model": name},
            )

    transaction.on_commit(enqueue)


def _classification_signature(model_id: int | None) -> tuple:
    """Everything that decides where customers land; a run is queued when it changes."""
    if model_id is None:
        return ()
    return (
        LifecycleModel.objects.filter(pk=model_id).values_list("active", "fallback_stage_id").first(),
        list(Stage.objects.filter(model_id=model_id).order_by("pk").values_list("pk", "priority")),
        list(
            StageRule.objects.filter(stage__model_id=model_id)
            .order_by("stage", "position", "pk")
            .values_list("stage_id", "conditions")
        ),
    )


def _queue_run_if_classification_changed(request: HttpRequest, model: LifecycleModel, before: tuple | None) -> None:
    if before is None:
        _run_enqueue(request, model, RunKind.FULL)  # a new model: classify everyone a first time
    elif before != _classification_signature(model.pk):
        _run_enqueue(request, model, RunKind.RULE_CHANGE)


# --- shop data -------------------------------------------------------------------------------------


@admin.register(Channel)
class ChannelAdmin(AuditHistoryAdmin):
    list_display = ["key", "name_en", "name_de", "active"]
    list_filter = ["active"]
    search_fields = ["key", "name_en", "name_de"]


class CustomerEraseForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=REASON_MAX_LENGTH,
        help_text=gettext_lazy("Kept in the customer's history, e.g. the request's ticket number."),
    )
    confirm = forms.BooleanField(label=gettext_lazy("I understand that this cannot be undone"))


@admin.register(Customer)
class CustomerAdmin(AuditHistoryAdmin):
    """Besides browsing: admins export a customer's data as JSON and erase their personal data (docs/PRIVACY.md),
    both recorded in the customer's history."""

    list_display = ["external_id", "email", "name", "first_seen_at", "acquisition_channel", "referred_by"]
    list_filter = ["acquisition_channel", ("first_seen_at", admin.DateFieldListFilter)]
    search_fields = ["external_id", "email", "name"]
    raw_id_fields = ["referred_by"]
    readonly_fields = ["erased_at"]
    list_select_related = ["acquisition_channel", "referred_by"]
    date_hierarchy = "first_seen_at"
    show_full_result_count = False

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_view)
        erase = self.admin_site.admin_view(self.erase_view)
        return [
            path("<path:object_id>/export/", export, name="lifecycle_customer_export"),
            path("<path:object_id>/erase/", erase, name="lifecycle_customer_erase"),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {**(extra_context or {}), "can_manage_personal_data": _is_admin(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _customer_for_admin(self, request: HttpRequest, object_id: str) -> Customer:
        if not _is_admin(request):
            raise PermissionDenied
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            raise Http404
        return customer

    def export_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        customer = self._customer_for_admin(request, object_id)
        data = customer_data_export(customer=customer, actor=request.user)
        response = JsonResponse(data, json_dumps_params={"indent": 2, "ensure_ascii": False})
        response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.json"'
        return response

    def erase_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        customer = self._customer_for_admin(request, object_id)
        form = CustomerEraseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            erasure = customer_erase(customer=customer, actor=request.user, reason=form.cleaned_data["reason"])
            messages.success(
                request, _("Personal data erased; the customer is now %(token)s.") % {"token": erasure.external_id}
            )
            return HttpResponseRedirect(reverse("admin:lifecycle_customer_change", args=[customer.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Erase the personal data of %(customer)s") % {"customer": customer},
            "opts": self.opts,
            "original": customer,
            "form": form,
            "intro": _(
                "Email, name, feedback comments and touchpoint properties are cleared and the external id is replaced "
                "by a token; orders, touchpoints, feedback scores and the stage history stay, anonymised, so metrics "
                "do not change. Data sent later under the old id creates a new customer. This cannot be undone."
            ),
            "submit_label": _("Erase personal data"),
        }
        return TemplateResponse(request, "admin/lifecycle/lifecyclemodel/form_page.html", context)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "placed_at", "amount", "status", "channel", "campaign_code"]
    list_filter = ["status", "channel", ("placed_at", admin.DateFieldListFilter)]
    search_fields = ["external_id", "customer__external_id", "campaign_code"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer", "channel"]
    date_hierarchy = "placed_at"
    show_full_result_count = False


@admin.register(Touchpoint)
class TouchpointAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "occurred_at", "channel", "kind", "campaign_code", "value"]
    list_filter = ["kind", "channel", ("occurred_at", admin.DateFieldListFilter)]
    search_fields = ["external_id", "customer__external_id", "campaign_code"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer", "channel"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "submitted_at", "score", "comment"]
    list_filter = ["score", ("submitted_at", admin.DateFieldListFilter)]
    search_fields = ["external_id", "customer__external_id", "comment"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    date_hierarchy = "submitted_at"
    show_full_result_count = False


# --- lifecycle models and stages -------------------------------------------------------------------


def _rule_links(stage: Stage) -> str:
    if stage.pk is None:
        return "–"
    links = format_html_join(
        "",
        '<a href="{}">{}</a><br>',
        (
            (reverse("admin:lifecycle_stagerule_change", args=[rule.pk]), conditions_describe(rule.conditions))
            for rule in stage.rules.all()
        ),
    )
    add = reverse("admin:lifecycle_stagerule_add") + f"?stage={stage.pk}"
    return format_html('{}<a href="{}">{}</a>', links, add, _("+ add a rule"))


def _stage_hand_clean_delete(form) -> None:
    if form.cleaned_data.get(DELETION_FIELD_NAME) and not form.instance._state.adding:
        # The current fallback may go when another stage is ticked: the model admin moves it first.
        reasons = stage_delete_blockers(form.instance, check_fallback=False)
        if reasons:
            raise ValidationError(reasons)


class StageInline(AdminRoleEditing, admin.TabularInline):
    model = Stage
    fk_name = "model"
    form = StageInlineForm
    formset = StageInlineFormSet
    fields = ["key", "name_en", "name_de", "kind", "position", "priority", "colour", "is_fallback", "description"]
    ordering = ["priority", "pk"]  # evaluation order, top to bottom
    show_change_link = True

    def get_fields(self, request: HttpRequest, obj: LifecycleModel | None = None) -> list[str]:
        return [*self.fields, "rules"] if obj is not None else list(self.fields)

    def get_readonly_fields(self, request: HttpRequest, obj: LifecycleModel | None = None) -> list[str]:
        return ["rules"] if obj is not None else []

    def get_extra(self, request: HttpRequest, obj: LifecycleModel | None = None, **kwargs: Any) -> int:
        return 3 if obj is None else 1

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("rules")

    def get_formset(self, request: HttpRequest, obj: LifecycleModel | None = None, **kwargs: Any):
        formset = super().get_formset(request, obj, **kwargs)
        # The admin's own check lists every protected row, and a stage can hold a million customers:
        # answer with counts instead (the admin builds a fresh form class per call, so this stays local).
        formset.form.hand_clean_DELETE = _stage_hand_clean_delete
        return formset

    @admin.display(description=gettext_lazy("rules (joined by OR)"))
    def rules(self, stage: Stage) -> str:
        return _rule_links(stage)

    @admin.display(description=gettext_lazy("fallback"), boolean=True)
    def is_fallback(self, stage: Stage) -> bool:  # shown to users who may only look
        return stage.pk is not None and stage.model.fallback_stage_id == stage.pk


@admin.register(LifecycleModel)
class LifecycleModelAdmin(AdminRoleEditing, AuditHistoryAdmin):
    list_display = ["name_en", "key", "is_default", "active", "fallback_stage", "stage_count", "rules_link"]
    list_filter = ["active"]
    search_fields = ["key", "name_en", "name_de"]
    form = LifecycleModelForm
    fields = ["key", "name_en", "name_de", "description", "is_default", "active", "fallback_stage"]
    readonly_fields = ["fallback_stage"]
    inlines = [StageInline]
    change_list_template = "admin/lifecycle/lifecyclemodel/change_list.html"

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("fallback_stage").prefetch_related("stages")

    @admin.display(description=gettext_lazy("stages"))
    def stage_count(self, model: LifecycleModel) -> int:
        return len(model.stages.all())

    @admin.display(description=gettext_lazy("rules"))
    def rules_link(self, model: LifecycleModel) -> str:
        url = reverse("admin:lifecycle_stagerule_changelist") + f"?stage__model__id__exact={model.pk}"
        return format_html('<a href="{}">{}</a>', url, _("edit rules"))

    def get_form(self, request: HttpRequest, obj: LifecycleModel | None = None, **kwargs: Any):
        form = super().get_form(request, obj, **kwargs)
        if "is_default" in form.base_fields:
            form.base_fields["is_default"].help_text = _(
                "The model the dashboard shows first; untick it on the current default first."
            )
        return form

    def save_model(self, request: HttpRequest, obj: LifecycleModel, form, change: bool) -> None:
        obj._signature_before = _classification_signature(obj.pk) if change else None  # type: ignore[attr-defined]
        fallback_form = getattr(obj, "_fallback_form", None)
        if fallback_form is not None:
            # An existing stage becomes the fallback in this same save; a new one once it exists (save_related).
            # Until then nothing points at a stage that may be deleted in this request.
            obj.fallback_stage_id = fallback_form.instance.pk
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        model = form.instance
        fallback_form = getattr(model, "_fallback_form", None)
        if fallback_form is not None and model.fallback_stage_id != fallback_form.instance.pk:
            model.fallback_stage = fallback_form.instance
            model._history_user = request.user
            model.save(update_fields=["fallback_stage", "updated_at"])
        try:
            model_validate(model)
        except RuleError as exc:  # e.g. a stored rule names a feature that was removed from the code
            messages.warning(
                request,
                _("Model “%(model)s” cannot classify until this is fixed: %(error)s") % {"model": model, "error": exc},
            )
            return
        _queue_run_if_classification_changed(request, model, getattr(model, "_signature_before", None))

    # Deleting: a model keeps its customers' stage history, so only unused models can go.

    def get_deleted_objects(self, objs, request: HttpRequest):
        objs = list(objs)
        reasons = []
        for model in objs:
            customers = CustomerStage.objects.filter(model=model).count()
            if customers or StageTransition.objects.filter(model=model).exists():
                reasons.append(
                    _(
                        "Model “%(model)s” has classified %(count)s customers and keeps their stage history; "
                        "untick “active” to stop it classifying instead."
                    )
                    % {"model": model, "count": number_format(customers, force_grouping=True)}
                )
        if reasons:
            return [], {}, set(), reasons
        collector = NestedObjects(using=router.db_for_write(LifecycleModel), origin=objs)
        collector.collect(objs)
        # The model's own link to its fallback stage is cleared on delete, so it protects nothing.
        others = [obj for obj in collector.protected if not isinstance(obj, LifecycleModel)]
        if others:
            return [], {}, set(), [f"{capfirst(obj._meta.verbose_name)}: {obj}" for obj in others]
        to_delete = [
            [str(model), [_("Stage: %(stage)s") % {"stage": stage} for stage in model.stages.all()]] for model in objs
        ]
        counts = {
            LifecycleModel._meta.verbose_name_plural: len(objs),
            Stage._meta.verbose_name_plural: Stage.objects.filter(model__in=objs).count(),
            StageRule._meta.verbose_name_plural: StageRule.objects.filter(stage__model__in=objs).count(),
        }
        return to_delete, counts, set(), []

    def delete_model(self, request: HttpRequest, obj: LifecycleModel) -> None:
        LifecycleModel.objects.filter(pk=obj.pk).update(fallback_stage=None)
        obj.fallback_stage = None
        super().delete_model(request, obj)

    # Installing a shipped template.

    def get_urls(self):
        install = self.admin_site.admin_view(self.template_install_view)
        backfill = self.admin_site.admin_view(self.backfill_view)
        return [
            path("install-template/", install, name="lifecycle_lifecyclemodel_install_template"),
            path("<path:object_id>/backfill/", backfill, name="lifecycle_lifecyclemodel_backfill"),
            *super().get_urls(),
        ]

    def template_install_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = TemplateInstallForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            key = form.cleaned_data["template"]
            with transaction.atomic():
                model, changed = template_install(key=key, make_default=form.cleaned_data["make_default"])
                if changed:
                    # template_install bulk-creates the rules; give them their first history record too.
                    StageRule.history.bulk_history_create(
                        list(StageRule.objects.filter(stage__model=model)),
                        default_user=request.user,
                        default_change_reason=f"installed template {key}",
                    )
                    self.log_addition(request, model, [{"added": {}}])
                    _run_enqueue(request, model, RunKind.FULL)
            if changed:
                messages.success(
                    request, _("Installed “%(model)s”; its customers are being classified.") % {"model": model}
                )
            else:
                messages.info(request, _("“%(model)s” is installed already; nothing changed.") % {"model": model})
            return HttpResponseRedirect(reverse("admin:lifecycle_lifecyclemodel_change", args=[model.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Install a lifecycle model template"),
            "opts": self.opts,
            "form": form,
            "intro": _(
                "A template adds a lifecycle model with its stages and default rules; edit them afterwards like any "
                "model. Installing a template that is installed already changes nothing."
            ),
            "submit_label": _("Install"),
        }
        return TemplateResponse(request, "admin/lifecycle/lifecyclemodel/form_page.html", context)

    # Reconstructing the stage history of an imported order history.

    def backfill_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        model = self.get_object(request, object_id)
        if model is None:
            raise Http404
        if not self.has_change_permission(request, model):
            raise PermissionDenied
        form = BackfillForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            start, end, step = (form.cleaned_data[name] for name in ("start", "end", "step"))

            def enqueue() -> None:
                try:
                    backfill_model.delay(model.pk, start.isoformat(), end.isoformat(), step)
                except Exception:
                    logger.exception("could not enqueue the backfill of %s", model.key)
                    messages.warning(request, _("The backfill could not be queued: is the worker's broker running?"))

            transaction.on_commit(enqueue)
            messages.success(
                request,
                _(
                    "Backfill of “%(model)s” from %(start)s to %(end)s by %(step)s queued; the worker rebuilds the "
                    "history."
                )
                % {"model": model, "start": start, "end": end, "step": BACKFILL_STEP_LABELS[step]},
            )
            return HttpResponseRedirect(reverse("admin:lifecycle_lifecyclemodel_change", args=[model.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Backfill the stage history of %(model)s") % {"model": model},
            "opts": self.opts,
            "original": model,
            "form": form,
            "intro": _(
                "Rebuild this model's stage history from the order and touchpoint history: customers are classified "
                "as of the end of every day or week of the range, and earlier backfills of the range are replaced "
                "(docs/LIFECYCLE_BACKFILL.md). It runs on the worker."
            ),
            "submit_label": _("Backfill"),
        }
        return TemplateResponse(request, "admin/lifecycle/lifecyclemodel/form_page.html", context)


@admin.register(Stage)
class StageAdmin(AdminRoleEditing, AuditHistoryAdmin):
    form = StageForm
    list_display = ["name_en", "key", "model", "kind", "position", "priority"]
    list_filter = ["model", "kind"]
    list_select_related = ["model"]
    ordering = ["model__key", "priority", "pk"]
    search_fields = ["key", "name_en", "name_de"]
    fields = ["model", "key", "name_en", "name_de", "kind", "position", "priority", "colour", "description", "rules"]
    readonly_fields = ["model", "rules"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # stages are added on their model's page, where its fallback is chosen

    @admin.display(description=gettext_lazy("rules (joined by OR)"))
    def rules(self, stage: Stage) -> str:
        return _rule_links(stage)

    def save_model(self, request: HttpRequest, obj: Stage, form, change: bool) -> None:
        obj._signature_before = _classification_signature(obj.model_id)  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        stage = form.instance
        _queue_run_if_classification_changed(request, stage.model, stage._signature_before)

    def get_deleted_objects(self, objs, request: HttpRequest):
        reasons = [reason for stage in objs for reason in stage_delete_blockers(stage)]
        if reasons:
            return [], {}, set(), reasons
        return super().get_deleted_objects(objs, request)

    def delete_model(self, request: HttpRequest, obj: Stage) -> None:
        model = obj.model
        super().delete_model(request, obj)
        _run_enqueue(request, model, RunKind.RULE_CHANGE)


# --- rules -----------------------------------------------------------------------------------------


class RuleHistoryContextHelper(HistoricalRecordContextHelper):
    """Show a rule's conditions in words in its history, e.g. `order_count >= 2` → `order_count >= 3`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, max_displayed_delta_change_chars=400, **kwargs)

    def prepare_delta_change_value(self, change, value):
        if change.field == "conditions" and isinstance(value, list):
            return conditions_describe(value)
        return super().prepare_delta_change_value(change, value)


def _stage_rules_with(stage_id: int, *, without: int | None = None, new: tuple[int, list] | None = None) -> list:
    """A stage's rules (condition lists, in order) with one rule left out and/or a new version put in."""
    rows = [
        (position, pk, conditions)
        for pk, position, conditions in StageRule.objects.filter(stage_id=stage_id)
        .exclude(pk=without)
        .values_list("pk", "position", "conditions")
    ]
    if new is not None:
        rows.append((new[0], math.inf, new[1]))
    return [conditions for _, _, conditions in sorted(rows, key=lambda row: (row[0], row[1]))]


def _rule_history_start(rule_pk: int) -> None:
    """Rules created in bulk (template_install) have no history record yet: record their saved state before
    the first audited change (by nobody in particular), so that the change shows its before → after."""
    if StageRule.history.filter(id=rule_pk).exists():
        return
    historical = StageRule.history.model
    for rule in StageRule.objects.filter(pk=rule_pk):
        historical.objects.create(
            **{field.attname: getattr(rule, field.attname) for field in StageRule._meta.concrete_fields},
            history_date=timezone.now(),
            history_type="+",
            history_change_reason="saved state before the first audited change",
            history_user=None,
        )


def _rules_version(rules: RulesByStage) -> str:
    """A fingerprint of the saved rules: a confirmation is refused if they changed since its preview."""
    return hashlib.sha256(json.dumps(sorted(rules.items()), sort_keys=True).encode()).hexdigest()[:16]


@admin.register(StageRule)
class StageRuleAdmin(AdminRoleEditing, AuditHistoryAdmin):
    """The rule editor: one row per condition, a preview of the impact, then confirm."""

    list_display = ["rule", "stage", "model_name", "position"]
    list_filter = ["stage__model"]
    list_select_related = ["stage__model"]
    ordering = ["stage__model__key", "stage__priority", "position", "pk"]
    form = RuleForm
    delete_confirmation_template = "admin/lifecycle/stagerule/delete_confirmation.html"
    editor_template = "admin/lifecycle/stagerule/rule_editor.html"
    preview_template = "admin/lifecycle/stagerule/rule_preview.html"

    @admin.display(description=gettext_lazy("rule (conditions joined by AND)"))
    def rule(self, rule: StageRule) -> str:
        return conditions_describe(rule.conditions)

    @admin.display(description=gettext_lazy("model"), ordering="stage__model__key")
    def model_name(self, rule: StageRule) -> LifecycleModel:
        return rule.stage.model

    def get_historical_record_context_helper(self, request, historical_record):
        return RuleHistoryContextHelper(self.model, historical_record)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        return self.rule_edit_view(request, None)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        return self.rule_edit_view(request, object_id)

    def rule_edit_view(self, request: HttpRequest, object_id: str | None) -> HttpResponse:
        rule = None
        if object_id is not None:
            rule = self.get_object(request, unquote(object_id))
            if rule is None:
                return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        can_edit = self.has_change_permission(request, rule) if rule else self.has_add_permission(request)
        if not can_edit and (request.method != "GET" or rule is None or not self.has_view_permission(request, rule)):
            raise PermissionDenied
        if request.method != "POST":
            conditions = rule.conditions if rule and isinstance(rule.conditions, list) else []
            form = RuleForm(instance=rule, initial=None if rule else self._new_rule_initial(request))
            formset = ConditionFormSet(
                initial=[ConditionForm.initial_from(c) for c in conditions if isinstance(c, dict)],
                prefix="conditions",
            )
            return self._render_editor(request, rule, form, formset, read_only=not can_edit)
        return self._rule_post(request, rule)

    def _new_rule_initial(self, request: HttpRequest) -> dict[str, Any]:
        stage_id = request.GET.get("stage", "")
        if not stage_id.isdigit():
            return {}
        positions = StageRule.objects.filter(stage_id=stage_id).values_list("position", flat=True)
        return {"stage": int(stage_id), "position": max(positions, default=0) + 1}

    def _rule_post(self, request: HttpRequest, rule: StageRule | None) -> HttpResponse:
        form = RuleForm(request.POST, instance=rule)
        formset = ConditionFormSet(request.POST, prefix="conditions")
        if "_edit" in request.POST:  # back from the preview, with what was typed
            return self._render_editor(request, rule, form, formset)
        if "_add_condition" in request.POST:  # one more row, without JavaScript
            data = request.POST.copy()
            rows = data.get("conditions-TOTAL_FORMS", "")
            data["conditions-TOTAL_FORMS"] = str(min(int(rows) + 1, MAX_CONDITIONS) if rows.isdigit() else rows)
            form = RuleForm(data, instance=rule)
            formset = ConditionFormSet(data, prefix="conditions")
            return self._render_editor(request, rule, form, formset)
        if not (form.is_valid() & formset.is_valid()):  # both, so that every error is shown at once
            return self._render_editor(request, rule, form, formset)
        stage: Stage = form.cleaned_data["stage"]
        model = stage.model
        position, conditions = form.cleaned_data["position"], formset.conditions
        if rule is not None and (position, conditions) == tuple(
            StageRule.objects.filter(pk=rule.pk).values_list("position", "conditions").first() or ()
        ):
            messages.info(request, _("Nothing changed."))
            return HttpResponseRedirect(self._rules_url(model))
        stored = rules_by_stage_stored(model=model)
        proposed = {
            **stored,
            stage.pk: _stage_rules_with(stage.pk, without=rule.pk if rule else None, new=(position, conditions)),
        }
        try:
            preview = rules_preview(model=model, rules_by_stage=proposed)
        except RuleError as exc:  # the model as a whole cannot classify (e.g. no fallback stage)
            return self._render_editor(request, rule, form, formset, errors=[msg for _, msg in exc.errors])
        version = _rules_version(stored)
        if "_confirm" in request.POST:
            if request.POST.get("rules_version") == version:
                return self._rule_save(request, rule, form, conditions, model, preview.moving)
            messages.warning(
                request, _("The model's rules were changed by someone else since this preview: check again.")
            )
        context = {
            "stage": stage,
            "before": [conditions_describe(c) for c in stored.get(stage.pk, [])],
            "after": [conditions_describe(c) for c in proposed[stage.pk]],
            "preview": preview,
            "rules_version": version,
            "carried": [
                (name, value)
                for name in request.POST
                if name not in {"csrfmiddlewaretoken", "rules_version", "_preview", "_confirm", "_edit"}
                for value in request.POST.getlist(name)
            ],
        }
        title = _("Preview: rule of “%(stage)s”") % {"stage": stage}
        return self._render(request, self.preview_template, rule, title, context)

    def _rule_save(self, request, rule, form, conditions, model, moving: int) -> HttpResponse:
        with transaction.atomic():
            if rule is not None:
                _rule_history_start(rule.pk)
            saved = form.save(commit=False)
            saved.conditions = conditions
            saved._history_user = request.user
            saved._change_reason = f"rule change confirmed after preview: {moving} customers to move"
            saved.save()
            if rule is None:
                self.log_addition(request, saved, [{"added": {}}])
            else:
                self.log_change(request, saved, [{"changed": {"fields": ["conditions", "position"]}}])
            _run_enqueue(request, model, RunKind.RULE_CHANGE)
        messages.success(
            request,
            ngettext(
                "Saved the rule of “%(stage)s”; %(count)s customer moves on the rule-change run.",
                "Saved the rule of “%(stage)s”; %(count)s customers move on the rule-change run.",
                moving,
            )
            % {"stage": saved.stage, "count": number_format(moving, force_grouping=True)},
        )
        return HttpResponseRedirect(self._rules_url(model))

    def _rules_url(self, model: LifecycleModel) -> str:
        return reverse("admin:lifecycle_stagerule_changelist") + f"?stage__model__id__exact={model.pk}"

    def _render_editor(self, request, rule, form, formset, *, errors=(), read_only: bool = False) -> HttpResponse:
        if rule is None:
            title = _("Add a stage rule")
        elif read_only:
            title = _("View rule of “%(stage)s”") % {"stage": rule.stage}
        else:
            title = _("Edit rule of “%(stage)s”") % {"stage": rule.stage}
        if read_only:
            for each in [form, *formset.forms]:
                for field in each.fields.values():
                    field.disabled = True
        context = {
            "form": form,
            "formset": formset,
            "errors": list(errors),
            "read_only": read_only,
            # Descriptions are marked with gettext_noop in the registry (API and docs stay English).
            "features": [{"name": f.name, "type": f.type, "description": _(f.description)} for f in FEATURES.values()],
        }
        return self._render(request, self.editor_template, rule, title, context)

    def _render(self, request, template: str, rule, title: str, context: dict) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "original": rule,
            "has_delete_permission": rule is not None and self.has_delete_permission(request, rule),
            **context,
        }
        return TemplateResponse(request, template, context)

    # Deleting a rule is a rule change too: the confirmation page shows its preview.

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None):
        context = dict(extra_context or {})
        rule = self.get_object(request, unquote(object_id))
        if rule is not None and request.method == "GET":
            model = rule.stage.model
            proposed = {
                **rules_by_stage_stored(model=model),
                rule.stage_id: _stage_rules_with(rule.stage_id, without=rule.pk),
            }
            try:
                context["preview"] = rules_preview(model=model, rules_by_stage=proposed)
            except RuleError as exc:
                context["preview_error"] = str(exc)
        return super().delete_view(request, object_id, context)

    def delete_model(self, request: HttpRequest, obj: StageRule) -> None:
        model = obj.stage.model
        _rule_history_start(obj.pk)
        obj._change_reason = "rule deleted"
        super().delete_model(request, obj)
        _run_enqueue(request, model, RunKind.RULE_CHANGE)
