"""Who changed what: the user recorded in the audit history (django-simple-history) of every audited model."""

from typing import Any

from django.contrib.auth import get_user_model


def history_user(request: Any = None, **kwargs: Any) -> Any:
    """The request's user when it is a person (a User row); None for an API-key client, which is no User row —
    services record such a client's name as the change reason instead."""
    user = getattr(request, "user", None)
    return user if isinstance(user, get_user_model()) else None
