from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from clm.health import health_report
from lifecycle.selectors import data_summary


@login_not_required
@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    report, up = health_report()
    return JsonResponse(report, status=200 if up else 503)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    report, _ = health_report()
    return render(request, "home.html", {"summary": data_summary(), "health": report})
