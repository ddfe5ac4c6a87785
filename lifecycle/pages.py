"""What every dashboard page needs from the layout, shared by the apps' views (metrics, campaigns)."""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET

from clm.base.roles import Role, user_has_role
from lifecycle.models import LifecycleModel
from lifecycle.selectors import lifecycle_model_default


def model_or_404(key: str) -> LifecycleModel:
    return get_object_or_404(LifecycleModel, key=key)


def page_context(request: HttpRequest, model: LifecycleModel | None, page: str) -> dict[str, Any]:
    """The model selector (every model, the current one), the page's URL name (the selector links to the same
    page of another model), whether the user may edit plans, campaigns and experiments, and whether they may
    administer (the shop sources)."""
    return {
        "models": LifecycleModel.objects.order_by("-is_default", "key").only("key", "name_en", "name_de"),
        "current_model": model,
        "page": page,
        "can_edit": user_has_role(request.user, Role.MARKETER),
        "can_admin": user_has_role(request.user, Role.ADMIN),
    }


def default_model_redirect(page: str):
    """A view sending /<page>/ to the default model's page, keeping the query string."""

    @require_GET
    def view(request: HttpRequest) -> HttpResponse:
        model = lifecycle_model_default() or LifecycleModel.objects.order_by("key").first()
        if model is None:
            raise Http404("No lifecycle model yet.")
        query = request.META.get("QUERY_STRING", "")
        return HttpResponseRedirect(reverse(page, args=[model.key]) + (f"?{query}" if query else ""))

    return view
