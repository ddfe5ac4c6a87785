"""The sources pages (admins only): the list, connecting a shop, a source's status with its import progress."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clm.base.forms import errors_add
from clm.base.roles import Role, user_has_role
from lifecycle.pages import page_context
from lifecycle.sources.forms import SourceForm
from lifecycle.sources.models import Platform, Source
from lifecycle.sources.platforms import PLATFORMS
from lifecycle.sources.services import (
    channel_rules_format,
    channel_rules_parse,
    history_import_queue,
    source_connection_check,
    source_disconnect,
    source_save,
)

RECENT_DELIVERIES = 20


def admin_required(request: HttpRequest) -> None:
    if not user_has_role(request.user, Role.ADMIN):
        raise PermissionDenied(_("Only admins can connect shops and import their files."))


def _source_or_404(source_id: int) -> Source:
    return get_object_or_404(Source, pk=source_id)


@require_GET
def source_list(request: HttpRequest) -> HttpResponse:
    admin_required(request)
    context = page_context(request, None, "source-list")
    context.update({"sources": Source.objects.all(), "platforms": Platform.choices})
    return render(request, "sources/source_list.html", context)


def _form_save(form: SourceForm, *, source: Source | None, platform: str, actor) -> Source | None:
    if not form.is_valid():
        return None
    try:
        rules = channel_rules_parse(form.cleaned_data["channel_rules"])
        return source_save(
            source=source,
            actor=actor,
            platform=platform,
            name=form.cleaned_data["name"],
            shop_url=form.cleaned_data["shop_url"],
            currency=form.cleaned_data["currency"],
            credentials=form.credentials(),
            webhook_secret=form.cleaned_data["webhook_secret"],
            id_prefix=form.cleaned_data["id_prefix"],
            completed_statuses=form.completed_status_list(),
            channel_rules=rules,
        )
    except ValidationError as error:
        if not hasattr(error, "error_dict"):  # the rules' line errors
            error = ValidationError({"channel_rules": error.messages})
        errors_add(form, error)
        return None


@require_http_methods(["GET", "POST"])
def source_new(request: HttpRequest, platform: str) -> HttpResponse:
    admin_required(request)
    if platform not in PLATFORMS:
        raise Http404("Unknown platform.")
    initial = {
        "completed_statuses": ", ".join(PLATFORMS[platform].default_completed_statuses),
        "channel_rules": channel_rules_format(list(PLATFORMS[platform].default_channel_rules)),
    }
    form = SourceForm(request.POST or None, platform=platform, initial=initial)
    if request.method == "POST":
        source = _form_save(form, source=None, platform=platform, actor=request.user)
        if source is not None:
            return redirect("source-detail", source.pk)
    return _form_page(request, form, platform=platform, source=None)


@require_http_methods(["GET", "POST"])
def source_edit(request: HttpRequest, source_id: int) -> HttpResponse:
    admin_required(request)
    source = _source_or_404(source_id)
    initial = {
        "name": source.name,
        "shop_url": source.shop_url,
        "currency": source.currency,
        "id_prefix": source.id_prefix,
        "completed_statuses": ", ".join(source.completed_statuses),
        "channel_rules": channel_rules_format(source.channel_rules),
    }
    form = SourceForm(request.POST or None, platform=source.platform, source=source, initial=initial)
    if request.method == "POST" and _form_save(form, source=source, platform=source.platform, actor=request.user):
        return redirect("source-detail", source.pk)
    return _form_page(request, form, platform=source.platform, source=source)


def _form_page(request: HttpRequest, form: SourceForm, *, platform: str, source: Source | None) -> HttpResponse:
    context = page_context(request, None, "source-list")
    context.update({"form": form, "platform": Platform(platform), "source": source})
    return render(request, "sources/source_form.html", context, status=400 if form.errors else 200)


def _progress(source: Source) -> dict:
    done = source.customers_imported + source.orders_imported
    return {
        "status": source.status,
        "status_display": source.get_status_display(),
        "status_message": source.status_message,
        "import_state": source.import_state,
        "import_state_display": source.get_import_state_display(),
        "customers_imported": source.customers_imported,
        "orders_imported": source.orders_imported,
        "items_skipped": source.items_skipped,
        "import_total": source.import_total,
        "percent": round(min(done / source.import_total, 1) * 100) if source.import_total else None,
    }


@require_GET
def source_detail(request: HttpRequest, source_id: int) -> HttpResponse:
    admin_required(request)
    source = _source_or_404(source_id)
    context = page_context(request, None, "source-list")
    context.update(
        {
            "source": source,
            "progress": _progress(source),
            "webhook_url": request.build_absolute_uri(reverse("source-webhook", args=[source.webhook_token])),
            # Shopware's app asks this address for the secret it signs webhooks with (docs/SOURCES.md).
            "registration_url": request.build_absolute_uri(
                reverse("shopware-registration", args=[source.webhook_token])
            )
            if source.platform == Platform.SHOPWARE
            else None,
            "topics": PLATFORMS[source.platform].webhook_topics,
            "deliveries": source.deliveries.order_by("-received_at", "-id")[:RECENT_DELIVERIES],
        }
    )
    return render(request, "sources/source_detail.html", context)


@require_GET
def source_progress(request: HttpRequest, source_id: int) -> JsonResponse:
    """What the status page's progress bar polls."""
    admin_required(request)
    return JsonResponse(_progress(_source_or_404(source_id)))


@require_POST
def source_action(request: HttpRequest, source_id: int, action: str) -> HttpResponse:
    admin_required(request)
    source = _source_or_404(source_id)
    if action == "check":
        source_connection_check(source=source)
    elif action == "import":
        try:
            history_import_queue(source=source, actor=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    elif action == "disconnect":
        source_disconnect(source=source, actor=request.user)
    else:
        raise Http404("Unknown action.")
    return redirect("source-detail", source.pk)
