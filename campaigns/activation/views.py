"""The destinations pages (admins only): the list with a form for a new one, and a destination's page with its
deliveries, their attempts, replay, a test event, secret rotation and enabling."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from campaigns.activation.forms import DestinationForm
from campaigns.activation.models import Delivery, Destination
from campaigns.activation.services import (
    delivery_replay,
    destination_save,
    destination_state_set,
    destination_test_queue,
    secret_rotate,
)
from clm.base.forms import errors_add
from clm.base.roles import Role, user_has_role
from lifecycle.pages import page_context

RECENT_DELIVERIES = 50
# The session key under which a secret made by the last request waits to be shown once by the next page.
SECRET_SESSION_KEY = "destination-secret"  # noqa: S105 - a key name, not a secret


def _admin_required(request: HttpRequest) -> None:
    if not user_has_role(request.user, Role.ADMIN):
        raise PermissionDenied(_("Only admins can set up where CLM sends data."))


def _saved(request: HttpRequest, form: DestinationForm, destination: Destination | None) -> Destination | None:
    if not form.is_valid():
        return None
    try:
        saved, secret = destination_save(
            destination=destination,
            name=form.cleaned_data["name"],
            url=form.cleaned_data["url"],
            event_types=form.cleaned_data["event_types"],
            lifecycle_models=list(form.cleaned_data["lifecycle_models"]),
            actor=request.user,
        )
    except ValidationError as error:
        errors_add(form, error)
        return None
    if secret:
        request.session[SECRET_SESSION_KEY] = {"destination": saved.pk, "secret": secret}
    return saved


@require_http_methods(["GET", "POST"])
def destination_list(request: HttpRequest) -> HttpResponse:
    _admin_required(request)
    form = DestinationForm(request.POST or None)
    if request.method == "POST" and (destination := _saved(request, form, None)) is not None:
        return redirect("destination-detail", destination.pk)
    context = page_context(request, None, "destination-list")
    context.update({"destinations": Destination.objects.all(), "form": form})
    return render(request, "activation/destination_list.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def destination_detail(request: HttpRequest, destination_id: int) -> HttpResponse:
    _admin_required(request)
    destination = get_object_or_404(Destination, pk=destination_id)
    initial = {
        "name": destination.name,
        "url": destination.url,
        "event_types": destination.event_types,
        "lifecycle_models": destination.lifecycle_models.all(),
    }
    form = DestinationForm(request.POST or None, initial=initial)
    if request.method == "POST" and _saved(request, form, destination) is not None:
        return redirect("destination-detail", destination.pk)
    shown = request.session.pop(SECRET_SESSION_KEY, None)
    deliveries = destination.deliveries.select_related("customer").prefetch_related("attempt_log")[:RECENT_DELIVERIES]
    context = page_context(request, None, "destination-list")
    context.update(
        {
            "destination": destination,
            "form": form,
            "secret": shown["secret"] if shown and shown["destination"] == destination.pk else None,
            "deliveries": deliveries,
        }
    )
    return render(request, "activation/destination_detail.html", context, status=400 if form.errors else 200)


@require_POST
def destination_action(request: HttpRequest, destination_id: int, action: str) -> HttpResponse:
    _admin_required(request)
    destination = get_object_or_404(Destination, pk=destination_id)
    if action == "test":
        destination_test_queue(destination=destination)
        messages.success(request, _("A test event is on its way."))
    elif action == "rotate":
        request.session[SECRET_SESSION_KEY] = {
            "destination": destination.pk,
            "secret": secret_rotate(destination=destination, actor=request.user),
        }
    elif action in ("enable", "disable"):
        destination_state_set(destination=destination, active=action == "enable", actor=request.user)
    elif action == "delete":
        destination.delete()
        return redirect("destination-list")
    else:
        raise Http404("Unknown action.")
    return redirect("destination-detail", destination.pk)


@require_POST
def delivery_replay_view(request: HttpRequest, delivery_id: int) -> HttpResponse:
    _admin_required(request)
    delivery = get_object_or_404(Delivery, pk=delivery_id)
    try:
        delivery_replay(delivery=delivery)
        messages.success(request, _("The delivery is sent again, with its message id."))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("destination-detail", delivery.destination_id)
