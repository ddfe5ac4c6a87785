"""The value page: CLV by cohort and channel, CLV:CAC per channel, the CLV model's accuracy, at-risk customers, and
the customer search that leads to a customer's journey."""

from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.db.models import DecimalField, F, Max, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from clm.base.days import day_end
from lifecycle.models import Customer, Order, OrderStatus
from lifecycle.pages import page_context
from metrics.clv import ClvFitError
from metrics.filters import MetricFilters
from metrics.forms import FiltersForm
from metrics.models import CustomerValue
from metrics.selectors import clv_fit_latest
from metrics.services import metric_result
from metrics.views import PAGE_SIZE, customers_searched

AT_RISK_P_ALIVE = 0.5  # below it a customer is more likely gone than still buying
SEARCH_LIMIT = 20


class ValueForm(FiltersForm):
    window_days = None


class CalibrationForm(forms.Form):
    """The accuracy section's own small form (its filters are not the page's: the fit uses every customer)."""

    calibration_end = forms.DateField(
        label=_("Accuracy: calibration end"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The model is fitted on the orders up to this day and compared with the orders after it."),
    )

    def clean_calibration_end(self) -> date | None:
        value = self.cleaned_data.get("calibration_end")
        if value and value >= timezone.now().date():
            raise forms.ValidationError(_("The calibration end must be in the past."))
        return value


def calibration_end_default() -> date | None:
    """The midpoint between the first and last completed order: half the history to fit, half to check."""
    span = Order.objects.filter(status=OrderStatus.COMPLETED).aggregate(first=Min("placed_at"), last=Max("placed_at"))
    if span["first"] is None:
        return None
    middle = span["first"] + (span["last"] - span["first"]) / 2
    return min(middle.date(), timezone.now().date() - timedelta(days=1))


def accuracy_result(calibration_end: date | None) -> tuple[Any, str | None]:
    """The clv_accuracy snapshot (keyed as the API keys it) or why there is none."""
    if calibration_end is None:
        return None, str(_("There are no completed orders yet: nothing to measure the predictions against."))
    filters = MetricFilters(as_of=day_end(calibration_end))
    try:
        snapshot, _computed = metric_result(
            kind="clv_accuracy", model=None, filters=filters, params={"calibration_end": calibration_end}
        )
    except ClvFitError as exc:
        return None, str(exc)
    return snapshot, None


def at_risk_customers(filters: MetricFilters) -> Any:
    """Customers of the latest fit with p_alive below AT_RISK_P_ALIVE, the most revenue so far first."""
    values = CustomerValue.objects.filter(p_alive__lt=AT_RISK_P_ALIVE)
    if filters.filters_customers:
        values = values.filter(customer__in=filters.customers().values("pk"))
    completed = Q(customer__orders__status=OrderStatus.COMPLETED, customer__orders__placed_at__lte=filters.as_of)
    return (
        values.annotate(
            external_id=F("customer__external_id"),
            email=F("customer__email"),
            channel_key=F("customer__acquisition_channel__key"),
            revenue=Coalesce(
                Sum("customer__orders__amount", filter=completed),
                0,
                output_field=DecimalField(max_digits=14, decimal_places=2),
            ),
            last_order_at=Max("customer__orders__placed_at", filter=completed),
        )
        .order_by("-revenue", "-expected_spend_365d", "customer_id")
        .values(
            "external_id",
            "email",
            "channel_key",
            "revenue",
            "last_order_at",
            "p_alive",
            "frequency",
            "expected_spend_365d",
        )
    )


def customer_search(search: str) -> list[Customer]:
    return list(customers_searched(Customer.objects.all(), search).order_by("external_id")[:SEARCH_LIMIT])


@require_GET
def value(request: HttpRequest) -> HttpResponse:
    """CLV by cohort and channel, CLV:CAC per channel, the CLV model's accuracy, at-risk customers; customer search."""
    search = request.GET.get("q", "").strip()
    matches = None
    if search:
        exact = Customer.objects.filter(external_id=search).values_list("external_id", flat=True).first()
        matches = customer_search(search)
        if exact is None and len(matches) == 1:
            exact = matches[0].external_id
        if exact is not None:
            return HttpResponseRedirect(reverse("journey", args=[exact]))
    form = ValueForm(request.GET or None)
    filters = form.filters()
    historical, _computed = metric_result(kind="clv_historical", model=None, filters=filters, params={})
    cac, _computed = metric_result(kind="cac", model=None, filters=filters, params={})
    calibration = CalibrationForm(request.GET or None)
    chosen = calibration.cleaned_data.get("calibration_end") if calibration.is_valid() else None
    calibration_end = chosen or calibration_end_default()
    accuracy, accuracy_error = accuracy_result(calibration_end)
    fit = clv_fit_latest()
    at_risk = Paginator(at_risk_customers(filters) if fit else CustomerValue.objects.none(), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    # float noise (a p_alive of 1e-200) would print in exponent notation: the table shows cents and 4 digits
    at_risk.object_list = [
        {**row, "p_alive": round(row["p_alive"], 4), "expected_spend_365d": round(row["expected_spend_365d"], 2)}
        for row in at_risk.object_list
    ]
    by_cohort = historical.result["by_cohort"]
    weekly = accuracy.result["weekly"] if accuracy else []
    context = {
        **page_context(request, None, "value"),
        "form": form,
        "filters": filters,
        "snapshot": historical,
        "historical": historical.result,
        "cac": cac.result,
        "calibration_end": calibration_end,
        "calibration_form": calibration,
        "accuracy": accuracy.result if accuracy else None,
        "accuracy_snapshot": accuracy,
        "accuracy_error": accuracy_error,
        "fit": fit,
        "at_risk": at_risk,
        "at_risk_p_alive": AT_RISK_P_ALIVE,
        "search": search,
        "matches": matches,
        "chart": {
            "clv": {
                "labels": [row["cohort"] for row in by_cohort],
                "revenue_per_customer": [row["revenue_per_customer"] for row in by_cohort],
                "predicted": [row["predicted_clv_365d"] for row in by_cohort],
            },
            "accuracy": {
                "labels": [point["end"] for point in weekly],
                "predicted": [point["predicted"] for point in weekly],
                "actual": [point["actual"] for point in weekly],
            },
        },
    }
    return render(request, "metrics/value.html", context)
