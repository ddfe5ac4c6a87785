"""Admin of the shop data: channels, customers (with their data export and erasure), orders, touchpoints, feedback."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clm.base.admin import AuditHistoryAdmin
from lifecycle.admin.common import is_admin
from lifecycle.consent import consent_changes_log
from lifecycle.models import Channel, ConsentChange, Customer, Feedback, Order, Touchpoint
from lifecycle.privacy import REASON_MAX_LENGTH, customer_data_export, customer_erase


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


class ConsentChangeInline(admin.TabularInline):
    """The customer's consent log, read-only: it is written by whatever changed the consent."""

    model = ConsentChange
    extra = 0
    can_delete = False
    fields = ["channel", "from_state", "to_state", "at", "source", "recorded_at"]
    readonly_fields = ["channel", "from_state", "to_state", "at", "source", "recorded_at"]

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Customer)
class CustomerAdmin(AuditHistoryAdmin):
    """Besides browsing: admins export a customer's data as JSON and erase their personal data (docs/PRIVACY.md),
    both recorded in the customer's history."""

    list_display = ["external_id", "email", "name", "first_seen_at", "acquisition_channel", "referred_by"]
    list_filter = ["acquisition_channel", "email_consent", "sms_consent", ("first_seen_at", admin.DateFieldListFilter)]
    search_fields = ["external_id", "email", "name"]
    raw_id_fields = ["referred_by"]
    readonly_fields = ["erased_at"]
    list_select_related = ["acquisition_channel", "referred_by"]
    date_hierarchy = "first_seen_at"
    show_full_result_count = False
    inlines = [ConsentChangeInline]

    def save_model(self, request: HttpRequest, obj: Customer, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        consent_changes_log([(obj.pk, form.initial if change else None, form.cleaned_data)])

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_view)
        erase = self.admin_site.admin_view(self.erase_view)
        return [
            path("<path:object_id>/export/", export, name="lifecycle_customer_export"),
            path("<path:object_id>/erase/", erase, name="lifecycle_customer_erase"),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {**(extra_context or {}), "can_manage_personal_data": is_admin(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _customer_for_admin(self, request: HttpRequest, object_id: str) -> Customer:
        if not is_admin(request):
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
