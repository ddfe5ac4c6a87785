"""Sessions, login throttling, passwords and the Content-Security-Policy, on real requests (docs/SECURITY.md).

The production values of the settings themselves are checked in a subprocess by tests/clm/test_deploy.py.
"""

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum
from django.test import Client, override_settings

from clm.middleware import LOGIN_AT, SEEN_AT
from lifecycle.models import LifecycleModel
from lifecycle.services import model_reclassify
from tests.factories import CustomerFactory, OrderFactory, at

PASSWORD = "a-long-password-1"
LOGIN = "/accounts/login/"
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def make_viewer(username: str = "vera") -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    user.groups.add(Group.objects.get(name="viewer"))
    return user


@pytest.fixture
def vera(db) -> User:
    return make_viewer()


def log_in(client: Client, password: str = PASSWORD, **extra):
    return client.post(LOGIN, {"username": "vera", "password": password}, **extra)


def sent_to_login(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(f"{LOGIN}?next=")


# --- cookies and the session key -------------------------------------------------------------------------------------


@override_settings(SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)  # their production values (test_deploy)
def test_login_cookies_are_secure_httponly_and_samesite_under_https(client, vera):
    client.get(LOGIN, secure=True)
    response = log_in(client, secure=True)
    assert response.status_code == 302
    session = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    csrf = response.cookies[settings.CSRF_COOKIE_NAME]  # rotated at login
    assert csrf["secure"] and csrf["httponly"] and csrf["samesite"] == "Lax"


def test_the_session_key_changes_at_login_and_the_old_one_is_gone(client, vera):
    planted = client.session.session_key  # e.g. a key an attacker made the victim's browser use
    assert planted and SessionStore().exists(planted)
    assert log_in(client).status_code == 302
    current = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert current != planted
    assert not SessionStore().exists(planted)
    assert client.get("/").status_code == 200


# --- idle and absolute timeouts ---------------------------------------------------------------------------------------


def shift_session(client: Client, **seconds_back: int) -> None:
    """Time travel: move the session's recorded moments back."""
    session = client.session
    for name, seconds in seconds_back.items():
        session[name] -= seconds
    session.save()


@pytest.fixture
def logged_in(client, vera) -> Client:
    client.force_login(vera)
    assert client.get("/").status_code == 200  # the first request records login and activity
    assert {LOGIN_AT, SEEN_AT} <= set(client.session.keys())
    return client


def test_a_session_idle_for_the_idle_timeout_ends(logged_in):
    shift_session(logged_in, **{SEEN_AT: settings.CLM_SESSION_IDLE_TIMEOUT})
    response = logged_in.get("/")
    assert sent_to_login(response)
    page = logged_in.get(response["Location"])
    assert "Your session has expired" in page.content.decode()
    assert sent_to_login(logged_in.get("/"))  # logged out for good, not just for one request


def test_activity_keeps_a_session_alive(logged_in):
    almost = settings.CLM_SESSION_IDLE_TIMEOUT - 120
    shift_session(logged_in, **{SEEN_AT: almost, LOGIN_AT: almost})
    assert logged_in.get("/").status_code == 200  # in time: the activity is recorded again
    shift_session(logged_in, **{SEEN_AT: 180})
    assert logged_in.get("/").status_code == 200


def test_a_session_ends_at_the_absolute_timeout_however_active(logged_in):
    shift_session(logged_in, **{LOGIN_AT: settings.SESSION_COOKIE_AGE})
    assert sent_to_login(logged_in.get("/"))


def test_an_expired_session_no_longer_reaches_the_api(logged_in):
    assert logged_in.get("/api/v1/models/").status_code == 200
    shift_session(logged_in, **{SEEN_AT: settings.CLM_SESSION_IDLE_TIMEOUT})
    assert logged_in.get("/api/v1/models/").status_code in {401, 403}


def test_the_timeouts_are_set():
    assert 0 < settings.CLM_SESSION_IDLE_TIMEOUT < settings.SESSION_COOKIE_AGE <= 24 * 3600


# --- failed-login throttling (django-axes) ----------------------------------------------------------------------------


def test_failed_logins_lock_out_the_username_from_that_address(client, vera):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "wrong").status_code == 200  # the form again, with its error
    assert log_in(client, "wrong").status_code == 429
    locked = log_in(client)  # the right password no longer helps
    assert locked.status_code == 429 and "too many login attempts" in locked.content.decode()
    # The lock is on the username from that address: the user at another address still gets in.
    assert log_in(Client(REMOTE_ADDR="192.0.2.7")).status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, vera):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "wrong")
    assert log_in(client).status_code == 429
    for attempt in AccessAttempt.objects.all():  # time travel past the cool-off
        AccessAttempt.objects.filter(pk=attempt.pk).update(
            attempt_time=attempt.attempt_time - settings.AXES_COOLOFF_TIME
        )
    assert log_in(client).status_code == 302


def test_a_successful_login_resets_the_count(client, vera):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "wrong")
    assert log_in(client).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "wrong").status_code == 200
    assert log_in(client).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_concurrent_failed_logins_are_all_counted_and_lock_out():
    """AXES_FAILURE_LIMIT wrong passwords sent at the same moment from threads, each with its own database
    connection: every one is counted (axes increments under a row lock), so the limit is reached and the right
    password is refused afterwards. A lost update would leave the count short and let the attacker keep guessing."""
    make_viewer()
    attempts = settings.AXES_FAILURE_LIMIT
    start = threading.Barrier(attempts)

    def wrong_password(_: int) -> int:
        try:
            start.wait(timeout=30)
            return log_in(Client(), "wrong").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        statuses = list(pool.map(wrong_password, range(attempts)))
    assert set(statuses) <= {200, 429}
    counted = AccessAttempt.objects.filter(username="vera").aggregate(total=Sum("failures_since_start"))["total"]
    assert counted == attempts
    assert log_in(Client()).status_code == 429


@override_settings(CLM_TRUSTED_PROXIES=1)
def test_behind_a_proxy_the_lockout_is_by_the_address_the_proxy_saw(vera):
    """The client may send its own X-Forwarded-For; the proxy appends the real address, which alone counts."""
    for forged in range(settings.AXES_FAILURE_LIMIT):
        spoofing = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{forged}, 203.0.113.9")
        log_in(spoofing, "wrong")
    assert log_in(Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")).status_code == 429
    assert log_in(Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.10")).status_code == 302


def test_axes_guards_the_login_form():
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]] and settings.AXES_RESET_ON_SUCCESS


# --- passwords --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weak", ["password", "12345678", "short1", "verasmith"])  # common, numeric, short, the name
def test_weak_passwords_are_refused(weak, db):
    with pytest.raises(ValidationError):
        validate_password(weak, user=User(username="verasmith"))


def test_an_admin_cannot_give_a_user_a_weak_password(vera):
    form = AdminPasswordChangeForm(vera, data={"password1": "12345678", "password2": "12345678"})
    assert not form.is_valid()
    strong = "correct horse battery staple 7"
    assert AdminPasswordChangeForm(vera, data={"password1": strong, "password2": strong}).is_valid()


# --- Content-Security-Policy ------------------------------------------------------------------------------------------


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


@pytest.fixture
def dashboard(client, vera) -> Client:
    """Data enough for the charts, KPIs and heat maps to be drawn."""
    for name in ("ada", "bob"):
        customer = CustomerFactory(external_id=name, first_seen_at=at("2024-01-01", 0))
        OrderFactory(customer=customer, placed_at=at("2024-01-10"))
    OrderFactory(customer=customer, placed_at=at("2024-02-10"))
    model_reclassify(model=LifecycleModel.objects.get(key="status"), as_of=datetime(2024, 3, 31, 23, tzinfo=UTC))
    client.force_login(vera)
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/?as_of=2024-03-31",
        "/models/status/funnel/?as_of=2024-03-31",
        "/models/status/flows/?as_of=2024-03-31",
        "/models/status/stages/new/?as_of=2024-03-31",
        "/cohorts/?as_of=2024-03-31",
        "/value/?as_of=2024-03-31",
        "/customers/bob/",
        "/campaigns/",
        "/api/v1/docs/",
        LOGIN,
    ],
)
def test_pages_run_only_scripts_carrying_the_policy_nonce(dashboard, url):
    if url == LOGIN:
        dashboard.logout()
    response = dashboard.get(url)
    assert response.status_code == 200
    policy = directives(response)
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    # The nonce is in the policy when the page used it (a page without <script> or <style> has none).
    nonces = [source for source in policy["script-src"] if source.startswith("'nonce-")]
    assert policy["script-src"] == ["'self'", *nonces] and len(nonces) <= 1
    assert policy["style-src"] == ["'self'", *nonces]
    nonce = nonces[0][len("'nonce-") : -1] if nonces else None
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]

    html = response.content.decode()
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", html):
        if 'type="application/json"' in tag:  # json_script data: never executed
            continue
        assert nonce and f'nonce="{nonce}"' in tag, tag
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"\sstyle\s*=", html), "inline style attribute"


def test_the_nonce_differs_on_every_response(dashboard):
    first, second = (directives(dashboard.get("/cohorts/"))["script-src"][1] for _ in range(2))
    assert first != second


def test_no_template_has_inline_script_handlers_or_style_attributes():
    """Also the pages no test above renders: every <script> and <style> element carries the nonce, none holds
    code except JSON data, and no element has an on…= handler or a style attribute."""
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        name = path.relative_to(TEMPLATES)
        for tag in re.findall(r"<(?:script|style)\b[^>]*>", text):
            if 'nonce="{{ request.csp_nonce }}"' not in tag:
                problems.append(f"{name}: {tag} without the nonce")
        for body in re.findall(r"<script\b[^>]*>(.*?)</script>", text, flags=re.DOTALL):
            if body.strip():
                problems.append(f"{name}: inline script code")
        if re.search(r"\son[a-z]+\s*=\s*[\"']", text):
            problems.append(f"{name}: inline event handler")
        if re.search(r"\sstyle\s*=\s*[\"']", text):
            problems.append(f"{name}: style attribute")
    assert not problems, "\n".join(problems)
