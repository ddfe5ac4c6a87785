"""Admin of stage rules: the rule editor (one row per condition), a preview of the impact, then confirm.

The workflow behind it (preview, version check, save with history, the `rule_change` run) is
lifecycle.rule_changes; this module is its forms, pages and messages.
"""

from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from simple_history.template_utils import HistoricalRecordContextHelper

from clm.base.admin import AuditHistoryAdmin
from lifecycle.admin.common import AdminRoleEditing, run_not_queued_warning
from lifecycle.conditions import conditions_describe
from lifecycle.features import FEATURES
from lifecycle.forms import MAX_CONDITIONS, BaseConditionFormSet, ConditionForm, ConditionFormSet, RuleForm
from lifecycle.models import LifecycleModel, Stage, StageRule
from lifecycle.rule_changes import (
    RuleChange,
    RulesChangedSincePreview,
    rule_change_preview,
    rule_delete,
    rule_delete_preview,
    rule_save,
    rule_unchanged,
)
from lifecycle.rules import RuleError


class RuleHistoryContextHelper(HistoricalRecordContextHelper):
    """Show a rule's conditions in words in its history, e.g. `order_count >= 2` → `order_count >= 3`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, max_displayed_delta_change_chars=400, **kwargs)

    def prepare_delta_change_value(self, change, value):
        if change.field == "conditions" and isinstance(value, list):
            return conditions_describe(value)
        return super().prepare_delta_change_value(change, value)


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
        position, conditions = form.cleaned_data["position"], cast(BaseConditionFormSet, formset).conditions
        if rule_unchanged(rule=rule, position=position, conditions=conditions):
            messages.info(request, _("Nothing changed."))
            return HttpResponseRedirect(self._rules_url(stage.model))
        try:
            change = rule_change_preview(stage=stage, rule=rule, position=position, conditions=conditions)
        except RuleError as exc:  # the model as a whole cannot classify (e.g. no fallback stage)
            return self._render_editor(request, rule, form, formset, errors=[msg for _, msg in exc.errors])
        if "_confirm" in request.POST:
            try:
                return self._rule_save(request, change)
            except RulesChangedSincePreview as exc:
                messages.warning(request, " ".join(exc.messages))
        context = {
            "stage": stage,
            "before": [conditions_describe(c) for c in change.stored.get(stage.pk, [])],
            "after": [conditions_describe(c) for c in change.proposed[stage.pk]],
            "preview": change.preview,
            "rules_version": change.version,
            "carried": [
                (name, value)
                for name in request.POST
                if name not in {"csrfmiddlewaretoken", "rules_version", "_preview", "_confirm", "_edit"}
                for value in request.POST.getlist(name)
            ],
        }
        title = _("Preview: rule of “%(stage)s”") % {"stage": stage}
        return self._render(request, self.preview_template, rule, title, context)

    def _rule_save(self, request: HttpRequest, change: RuleChange) -> HttpResponse:
        """Raises RulesChangedSincePreview (nothing saved) unless the rules are still those of the confirmed preview."""
        with transaction.atomic():
            saved = rule_save(
                change=change,
                expected_version=request.POST.get("rules_version", ""),
                user=request.user,
                on_queue_failure=run_not_queued_warning(request),
            )
            if change.rule is None:
                self.log_addition(request, saved, [{"added": {}}])
            else:
                self.log_change(request, saved, [{"changed": {"fields": ["conditions", "position"]}}])
        moving = change.preview.moving
        messages.success(
            request,
            ngettext(
                "Saved the rule of “%(stage)s”; %(count)s customer moves on the rule-change run.",
                "Saved the rule of “%(stage)s”; %(count)s customers move on the rule-change run.",
                moving,
            )
            % {"stage": saved.stage, "count": number_format(moving, force_grouping=True)},
        )
        return HttpResponseRedirect(self._rules_url(change.model))

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
            try:
                context["preview"] = rule_delete_preview(rule=rule)
            except RuleError as exc:
                context["preview_error"] = str(exc)
        return super().delete_view(request, object_id, context)

    def delete_model(self, request: HttpRequest, obj: StageRule) -> None:
        rule_delete(rule=obj, user=request.user, on_queue_failure=run_not_queued_warning(request))
