import sys

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error

from clm.base.api_errors import error_body
from clm.base.health import health_report
from clm.middleware import database_unavailable_response
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


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database lost while a middleware read the session or user gets the 503 of views."""
    return database_unavailable_response(request, sys.exc_info()[1]) or django_server_error(request)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: API clients get JSON like every other API error, also for paths that match no route."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(detail="Not found.", code="not_found"), status=404)
    return page_not_found(request, exception)
