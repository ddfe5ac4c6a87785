from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from clm.health import health_report
from lifecycle.models import LifecycleModel
from lifecycle.selectors import data_summary, lifecycle_model_default
from metrics.views_overview import overview_render


@login_not_required
@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    report, up = health_report()
    return JsonResponse(report, status=200 if up else 503)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The overview of the default model (of the first model when none is the default); the data summary and
    system health alone while there is no lifecycle model."""
    model = lifecycle_model_default() or LifecycleModel.objects.order_by("key").first()
    if model is not None:
        return overview_render(request, model)
    report, _ = health_report()
    return render(request, "home.html", {"summary": data_summary(), "health": report})
