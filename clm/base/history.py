"""Who changed what: the user recorded in the audit history (django-simple-history) of every audited model."""

from typing import Any

from django.contrib.auth import get_user_model


def history_user(request: Any = None, **kwargs: Any) -> Any:
    """The request's user when it is a person (a User row); None for an API-key client, which is no User row —
    services record such a client's name as the change reason instead."""
    user = getattr(request, "user", None)
    return user if isinstance(user, get_user_model()) else None


def audit_as(instance: Any, *, actor: Any, reason: str = "") -> None:
    """Name who makes the next save of an audited object and why (services call it when they know the actor).

    A person is recorded as the history user; an API-key client, which is no User row, by name in the reason.
    """
    is_person = isinstance(actor, get_user_model())
    instance._history_user = actor if is_person else None
    if not is_person and actor is not None:
        reason = f"{reason} (by {actor})" if reason else f"by {actor}"
    instance._change_reason = reason[:100] or None  # simple_history's history_change_reason column
