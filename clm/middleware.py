"""Session timeouts, roles, the client address that failed logins are counted by (docs/SECURITY.md), and the
answer while the database is unavailable (docs/RELIABILITY.md).

A logged-in session ends SESSION_COOKIE_AGE seconds after login (absolute) and CLM_SESSION_IDLE_TIMEOUT seconds
after its last request (idle), whichever comes first. Both moments are kept in the session itself, so the limits
hold server-side whatever the browser does with its cookie. The session's own expiry slides with every save; the
absolute limit is enforced here.
"""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from clm.base.api_errors import error_body
from clm.base.roles import user_role

logger = logging.getLogger(__name__)

LOGIN_AT = "clm_login_at"
SEEN_AT = "clm_seen_at"
# Recording every request would save the session on every request; a minute's precision is enough.
SEEN_PRECISION = 60


class SessionTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            self._check(request)
        return self.get_response(request)

    @staticmethod
    def _check(request: HttpRequest) -> None:
        session = request.session
        now = int(time.time())
        if LOGIN_AT not in session:  # a session from before these limits existed
            session[LOGIN_AT] = session[SEEN_AT] = now
            return
        if now - session[LOGIN_AT] >= settings.SESSION_COOKIE_AGE or (
            now - session.get(SEEN_AT, 0) >= settings.CLM_SESSION_IDLE_TIMEOUT
        ):
            logout(request)  # the user is anonymous from here on: LoginRequiredMiddleware sends them to log in
            messages.info(request, _("Your session has expired. Please log in again."))
            return
        if now - session.get(SEEN_AT, 0) >= SEEN_PRECISION:
            session[SEEN_AT] = now


def session_clock_start(sender, request: HttpRequest, user, **kwargs) -> None:
    """At login (user_logged_in), so that the first page after it does not have to save the session."""
    request.session[LOGIN_AT] = request.session[SEEN_AT] = int(time.time())


class RoleRequiredMiddleware:
    """A logged-in account that holds no role (viewer, marketer, admin) sees no page and no API data: 403.

    Logging out and switching the language stay open; the admin site decides by staff status itself.
    """

    OPEN_URL_NAMES = {"logout", "set_language"}

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Callable, view_args: tuple, view_kwargs: dict) -> None:
        if not request.user.is_authenticated or not getattr(view_func, "login_required", True):
            return
        match = request.resolver_match
        if (match and (match.url_name in self.OPEN_URL_NAMES or match.app_name == "admin")) or user_role(request.user):
            return
        raise PermissionDenied(_("Your account has no role yet; ask an administrator to give you one."))


def client_ip(request: HttpRequest) -> str:
    """The client's address for django-axes (AXES_CLIENT_IP_CALLABLE).

    REMOTE_ADDR, unless CLM_TRUSTED_PROXIES reverse proxies stand in front of CLM: then the address the outermost
    of them saw, the CLM_TRUSTED_PROXIES-th entry of X-Forwarded-For from the right (each proxy appends the address
    it was called from; entries further left come from the client and prove nothing).
    """
    proxies = settings.CLM_TRUSTED_PROXIES
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


RETRY_AFTER_SECONDS = 30


def database_unavailable_response(request: HttpRequest, exception: BaseException | None) -> HttpResponse | None:
    """503 with Retry-After when the database cannot be reached (down, restarting, connection cut): a client and a
    load balancer know to try again, where a 500 says the request itself was wrong. None for other errors."""
    if not isinstance(exception, OperationalError | InterfaceError):
        return None
    logger.error("database unavailable during %s %s: %s", request.method, request.path, exception)
    message = _("The database is unavailable for a moment; please try again.")
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(error_body(detail=message, code="database_unavailable"), status=503)
    else:
        response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """Maps a lost database in a view to 503 (clm.views.server_error does it for errors raised in middleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return database_unavailable_response(request, exception)
