"""Dashboard pages (SPEC §7): thin views over the metrics selectors and snapshots; charts drawn by static/js/metrics/.

Every page reads the stored snapshot of its metric (or computes and stores it once), so its query count does not
depend on the number of customers; every number is also in a table, readable without JavaScript.
"""

from django.core.paginator import Paginator
from django.db.models import F, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from lifecycle.models import Customer
from lifecycle.pages import model_or_404, page_context
from metrics.forms import FiltersForm
from metrics.funnel import OUTCOMES
from metrics.funnel import funnel_customers as funnel_customer_queryset
from metrics.services import metric_result

PAGE_SIZE = 50


@require_GET
def funnel(request: HttpRequest, key: str) -> HttpResponse:
    model = model_or_404(key)
    form = FiltersForm(request.GET or None)
    filters = form.filters()
    snapshot, _ = metric_result(kind="funnel", model=model, filters=filters, params={})
    steps = snapshot.result["steps"]
    chart = {
        "labels": [step["name"] for step in steps],
        "reached": [step["reached"] for step in steps],
        "flagged": [step["biggest_drop_off"] or step["below_goal"] or step["below_benchmark"] for step in steps],
    }
    context = {
        **page_context(request, model, "funnel"),
        "form": form,
        "filters": filters,
        "snapshot": snapshot,
        "result": snapshot.result,
        "chart": chart,
        "query": request.GET.urlencode(),
    }
    return render(request, "metrics/funnel.html", context)


def customers_searched(customers: QuerySet[Customer], search: str) -> QuerySet[Customer]:
    if not search:
        return customers
    return customers.filter(Q(external_id__icontains=search) | Q(email__icontains=search))


@require_GET
def funnel_customers(request: HttpRequest, key: str) -> HttpResponse:
    """The customers behind a funnel count (reached a step, converted from it, or dropped off after it)."""
    model = model_or_404(key)
    form = FiltersForm(request.GET or None)
    filters = form.filters()
    stage_key, outcome = request.GET.get("stage", ""), request.GET.get("outcome", "reached")
    if outcome not in OUTCOMES:
        raise Http404(f"Unknown outcome {outcome!r}.")
    try:
        customers = funnel_customer_queryset(model=model, filters=filters, stage_key=stage_key, outcome=outcome)
    except ValueError as exc:
        raise Http404(str(exc)) from exc
    search = request.GET.get("q", "").strip()
    customers = customers_searched(customers, search).annotate(channel_key=F("acquisition_channel__key")).order_by("pk")
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    export = request.GET.copy()
    export.pop("page", None)
    export.pop("q", None)
    export["export"] = "csv"
    context = {
        **page_context(request, model, "funnel"),
        "form": form,
        "stage": model.stages.get(key=stage_key),
        "outcome": outcome,
        "page_obj": page,
        "search": search,
        "export_url": reverse("api-model-funnel-customers", args=[model.key]) + "?" + export.urlencode(),
    }
    return render(request, "metrics/funnel_customers.html", context)
