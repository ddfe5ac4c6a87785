"""What the lifecycle admin pages share: who may edit, and telling the user when a run could not be queued."""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest
from django.utils.translation import gettext as _

from clm.base.roles import Role, user_has_role
from lifecycle.models import LifecycleModel
from lifecycle.rule_changes import QueueFailure


def is_admin(request: HttpRequest) -> bool:
    """The admin role (cached on the request: permission checks run many times per page)."""
    if not hasattr(request, "_clm_is_admin"):
        request._clm_is_admin = user_has_role(request.user, Role.ADMIN)  # type: ignore[attr-defined]
    return request._clm_is_admin  # type: ignore[attr-defined]


class AdminRoleEditing:
    """Adding, changing and deleting need the admin role; viewing follows the model permissions."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return is_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_admin(request)


def run_not_queued_warning(request: HttpRequest) -> QueueFailure:
    """For lifecycle.rule_changes: a change is saved even when its run cannot be queued; say so."""

    def warn(model: LifecycleModel) -> None:
        messages.warning(
            request,
            _("The reclassification of “%(model)s” could not be queued; the next periodic run applies it.")
            % {"model": model.name_en},
        )

    return warn
