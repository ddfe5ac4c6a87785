"""Admin of lifecycle models and their stages: stages are edited on their model's page (in evaluation order), the
fallback chosen there; templates are installed and stage histories backfilled from the model list and page.

Saving goes through lifecycle.rule_changes: an edit that changes where customers land queues a `rule_change` run,
a new model a first `full` run; a stage or model that customers are (or have been) in is not deleted.
"""

import logging
from typing import TYPE_CHECKING, Any, cast

from django.contrib import admin, messages
from django.contrib.admin.utils import NestedObjects
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import router, transaction
from django.forms.formsets import DELETION_FIELD_NAME
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clm.base.admin import AuditHistoryAdmin
from lifecycle.admin.common import AdminRoleEditing, run_not_queued_warning
from lifecycle.conditions import conditions_describe
from lifecycle.forms import (
    BACKFILL_STEP_LABELS,
    BackfillForm,
    LifecycleModelForm,
    StageForm,
    StageInlineForm,
    StageInlineFormSet,
    TemplateInstallForm,
    stage_delete_blockers,
)
from lifecycle.models import LifecycleModel, Stage, StageRule
from lifecycle.rule_changes import (
    classification_changed_run_queue,
    classification_signature,
    model_delete,
    model_delete_blockers,
    model_template_install,
    stage_delete,
)
from lifecycle.rules import RuleError, model_validate
from lifecycle.tasks import backfill_model

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups

logger = logging.getLogger(__name__)

# The columns of a model's stage rows (its page adds each stage's rules once the model exists).
STAGE_ROW_FIELDS = ("key", "name_en", "name_de", "kind", "position", "priority", "colour", "is_fallback", "description")


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
    fields = STAGE_ROW_FIELDS
    ordering = ["priority", "pk"]  # evaluation order, top to bottom
    show_change_link = True

    def get_fields(self, request: HttpRequest, obj: LifecycleModel | None = None) -> "_FieldGroups":
        return [*STAGE_ROW_FIELDS, "rules"] if obj is not None else list(STAGE_ROW_FIELDS)

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
        cast(Any, formset.form).hand_clean_DELETE = _stage_hand_clean_delete
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
        before = classification_signature(model_id=obj.pk) if change else None
        obj._signature_before = before  # type: ignore[attr-defined]
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
        before = getattr(model, "_signature_before", None)
        classification_changed_run_queue(model=model, before=before, on_queue_failure=run_not_queued_warning(request))

    # Deleting: a model keeps its customers' stage history, so only unused models can go.

    def get_deleted_objects(self, objs, request: HttpRequest):
        objs = list(objs)
        reasons = [reason for model in objs for reason in model_delete_blockers(model=model)]
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
        model_delete(model=obj, user=request.user)

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
                model, changed = model_template_install(
                    key=key,
                    make_default=form.cleaned_data["make_default"],
                    user=request.user,
                    on_queue_failure=run_not_queued_warning(request),
                )
                if changed:
                    self.log_addition(request, model, [{"added": {}}])
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
        obj._signature_before = classification_signature(model_id=obj.model_id)  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        stage = form.instance
        before = stage._signature_before
        classification_changed_run_queue(
            model=stage.model, before=before, on_queue_failure=run_not_queued_warning(request)
        )

    def get_deleted_objects(self, objs, request: HttpRequest):
        reasons = [reason for stage in objs for reason in stage_delete_blockers(stage)]
        if reasons:
            return [], {}, set(), reasons
        return super().get_deleted_objects(objs, request)

    def delete_model(self, request: HttpRequest, obj: Stage) -> None:
        stage_delete(stage=obj, user=request.user, on_queue_failure=run_not_queued_warning(request))
