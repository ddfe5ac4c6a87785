"""The permission matrix: every URL pattern of the project, walked through the resolver, is classified below, and
each classification is checked against real requests with real objects behind the URLs.

- A URL pattern missing from ACCESS fails `test_every_url_pattern_is_classified`: a new view must be given its
  roles before it ships.
- Pages: anonymous visitors are sent to the login page; each role gets exactly the methods it may use (allowed:
  the view runs and answers below 500 without 401/403/405, and not 404: the objects behind the URL exist;
  refused: 403, or 405 for a method the view does not have); an API key opens no page.
- API: anonymous calls get 401; people get the methods their role allows (read: viewer, write and admin: the
  admin role); keys the methods their scopes allow; a revoked key gets 401 everywhere.
- Django admin: staff only, as one group: every admin URL sends anonymous and non-staff users to a login page.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest
from django.contrib.auth.models import Group, User
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from campaigns.activation.services import destination_save, destination_test_queue
from campaigns.campaigns.crud import campaign_create
from campaigns.experiments.crud import experiment_create
from campaigns.models import ChannelPlan
from clm.base.models import ApiKey
from clm.base.roles import ROLE_ORDER, Role
from lifecycle.models import Channel, ClassificationRun, LifecycleModel, RunKind, Stage
from lifecycle.sources.models import Platform, Source, Upload
from tests.factories import CustomerFactory, OrderFactory, at
from tests.pages import user_client

pytestmark = pytest.mark.django_db

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


@dataclass(frozen=True)
class Page:
    """A dashboard page: the lowest role allowed each method (a method not named is not served)."""

    methods: dict[str, Role]
    kwargs: dict[str, str] = field(default_factory=dict)
    query: str = ""


@dataclass(frozen=True)
class Api:
    """A REST endpoint: the scopes that allow each method (any one of them suffices; "any": any authenticated
    caller). People hold a scope through their role (PERSON_ROLE)."""

    methods: dict[str, frozenset[str]]
    kwargs: dict[str, str] = field(default_factory=dict)
    query: str = ""


@dataclass(frozen=True)
class Public:
    """Needs no login: the methods anyone may use."""

    methods: frozenset[str]


@dataclass(frozen=True)
class Signed:
    """Called by a shop platform, authenticated by the platform's signature over the body (or its own signed
    handshake): without one, the methods it serves answer 401 to anyone, logged-in people and API keys included;
    the others 405."""

    methods: frozenset[str]
    kwargs: dict[str, str] = field(default_factory=dict)


READ, WRITE, ADMIN, ANY = frozenset({"read"}), frozenset({"write"}), frozenset({"admin"}), frozenset({"any"})
PERSON_ROLE = {"read": Role.VIEWER, "write": Role.ADMIN, "admin": Role.ADMIN, "any": Role.VIEWER}

# URL kwargs name objects built by the `world` fixture; "{campaign}" and "{run}" are filled in with their ids.
MODEL = {"key": "status"}
ADA = {"external_id": "ada"}
EXPERIMENT = {"key": "banner"}
CAMPAIGN = {"campaign_id": "{campaign}"}
SOURCE = {"source_id": "{source}"}
SOURCE_TOKEN = {"token": "{source_token}"}
UPLOAD = {"upload_id": "{upload}"}
DESTINATION = {"destination_id": "{destination}"}
V, M, A = Role.VIEWER, Role.MARKETER, Role.ADMIN

ACCESS: dict[str, Page | Api | Public] = {
    # --- public ---
    "health/": Public(frozenset({"GET"})),
    "favicon.ico": Public(frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})),  # a redirect to the static icon
    "accounts/login/": Public(frozenset({"GET", "POST", "PUT"})),  # Django's FormView takes PUT as POST
    # --- pages: everyone with a role reads; marketers and admins change plans, campaigns and experiments ---
    "i18n/setlang/": Page({method: V for method in METHODS}),  # Django's view: every method redirects, POST sets
    "accounts/logout/": Page({"POST": V}),
    "": Page({"GET": V}),
    "funnel/": Page({"GET": V}),
    "models/<slug:key>/funnel/": Page({"GET": V}, MODEL),
    "models/<slug:key>/funnel/customers/": Page({"GET": V}, MODEL, "stage=new"),
    "models/<slug:key>/overview/": Page({"GET": V}, MODEL),
    "flows/": Page({"GET": V}),
    "models/<slug:key>/flows/": Page({"GET": V}, MODEL),
    "models/<slug:key>/flows/customers/": Page({"GET": V}, MODEL, "from_stage=prospect&to_stage=new"),
    "models/<slug:key>/stages/<slug:stage_key>/": Page({"GET": V}, {**MODEL, "stage_key": "new"}),
    "cohorts/": Page({"GET": V}),
    "cohorts/customers/": Page({"GET": V}, query="cohort=2024-01&month=0"),
    "value/": Page({"GET": V}),
    "customers/<str:external_id>/": Page({"GET": V}, ADA),
    "plans/": Page({"GET": V}),
    "models/<slug:key>/plans/": Page({"GET": V}, MODEL),
    "models/<slug:key>/plans/<slug:stage>/<slug:channel>/": Page(
        {"GET": V, "POST": M}, {**MODEL, "stage": "new", "channel": "email"}
    ),
    "campaigns/": Page({"GET": V}),
    "campaigns/new/": Page({"GET": M, "POST": M}),
    "campaigns/<int:campaign_id>/": Page({"GET": V}, CAMPAIGN),
    "campaigns/<int:campaign_id>/edit/": Page({"GET": M, "POST": M}, CAMPAIGN),
    "campaigns/<int:campaign_id>/spend/": Page({"POST": M}, CAMPAIGN),
    "experiments/": Page({"GET": V}),
    "experiments/new/": Page({"GET": M, "POST": M}),
    "experiments/<slug:key>/": Page({"GET": V}, EXPERIMENT),
    "experiments/<slug:key>/start/": Page({"POST": M}, EXPERIMENT),
    "experiments/<slug:key>/stop/": Page({"POST": M}, EXPERIMENT),
    "api/v1/docs/": Page({"GET": V}),
    # --- pages: admins connect shops ---
    "sources/": Page({"GET": A}),
    "sources/new/<str:platform>/": Page({"GET": A, "POST": A}, {"platform": "shopify"}),
    "sources/<int:source_id>/": Page({"GET": A}, SOURCE),
    "sources/<int:source_id>/edit/": Page({"GET": A, "POST": A}, SOURCE),
    "sources/<int:source_id>/progress/": Page({"GET": A}, SOURCE),
    "sources/<int:source_id>/<str:action>/": Page({"POST": A}, {**SOURCE, "action": "check"}),
    "imports/": Page({"GET": A, "POST": A}),
    "imports/<int:upload_id>/": Page({"GET": A}, UPLOAD),
    "imports/<int:upload_id>/source/": Page({"POST": A}, UPLOAD),
    "imports/<int:upload_id>/mapping/": Page({"POST": A}, UPLOAD),
    "imports/<int:upload_id>/import/": Page({"POST": A}, UPLOAD),
    "imports/<int:upload_id>/discard/": Page({"POST": A}, UPLOAD),
    "imports/<int:upload_id>/progress/": Page({"GET": A}, UPLOAD),
    # --- pages: admins set up where CLM sends data ---
    "destinations/": Page({"GET": A, "POST": A}),
    "destinations/<int:destination_id>/": Page({"GET": A, "POST": A}, DESTINATION),
    "destinations/<int:destination_id>/<str:action>/": Page({"POST": A}, {**DESTINATION, "action": "test"}),
    "deliveries/<int:delivery_id>/replay/": Page({"POST": A}, {"delivery_id": "{delivery}"}),
    # --- called by shop platforms, signed ---
    "api/v1/sources/webhooks/<str:token>/": Signed(frozenset({"POST"}), SOURCE_TOKEN),
    "api/v1/sources/shopware/<str:token>/registration/": Signed(frozenset({"GET", "POST"}), SOURCE_TOKEN),
    # --- API: lifecycle ---
    "api/v1/schema/": Api({"GET": ANY}),
    "api/v1/destinations/": Api({"GET": ADMIN, "POST": ADMIN}),
    "api/v1/destinations/<int:destination_id>/": Api({"GET": ADMIN, "PATCH": ADMIN}, DESTINATION),
    "api/v1/destinations/<int:destination_id>/test/": Api({"POST": ADMIN}, DESTINATION),
    "api/v1/destinations/<int:destination_id>/rotate-secret/": Api({"POST": ADMIN}, DESTINATION),
    "api/v1/destinations/<int:destination_id>/deliveries/": Api({"GET": ADMIN}, DESTINATION),
    "api/v1/deliveries/<int:delivery_id>/replay/": Api({"POST": ADMIN}, {"delivery_id": "{delivery}"}),
    "api/v1/customers/": Api({"GET": READ, "POST": WRITE}),
    "api/v1/customers/<str:external_id>/": Api({"GET": READ}, ADA),
    "api/v1/customers/<str:external_id>/transitions/": Api({"GET": READ}, ADA),
    "api/v1/customers/<str:external_id>/export/": Api({"GET": ADMIN}, ADA),
    "api/v1/customers/<str:external_id>/erase/": Api({"POST": ADMIN}, ADA),
    "api/v1/orders/": Api({"POST": WRITE}),
    "api/v1/touchpoints/": Api({"POST": WRITE}),
    "api/v1/feedback/": Api({"POST": WRITE}),
    "api/v1/models/": Api({"GET": READ}),
    "api/v1/models/<str:key>/pipeline/": Api({"GET": READ}, MODEL),
    "api/v1/models/<str:key>/reclassify/": Api({"POST": WRITE}, MODEL),
    "api/v1/runs/<int:run_id>/": Api({"GET": READ | WRITE}, {"run_id": "{run}"}),  # a write-only key polls its run
    # --- API: campaigns ---
    "api/v1/marketing-spend/": Api({"POST": WRITE}),
    "api/v1/campaigns/plans/": Api({"GET": READ, "POST": WRITE}),
    "api/v1/campaigns/plans/<int:plan_id>/": Api({"PATCH": WRITE}, {"plan_id": "{plan}"}),
    "api/v1/campaigns/effectiveness/": Api({"GET": READ}),
    "api/v1/campaigns/": Api({"GET": READ, "POST": WRITE}),
    "api/v1/campaigns/<int:campaign_id>/": Api({"GET": READ, "PATCH": WRITE}, CAMPAIGN),
    "api/v1/campaigns/<int:campaign_id>/spend/": Api({"POST": WRITE}, CAMPAIGN),
    "api/v1/experiments/": Api({"GET": READ, "POST": WRITE}),
    "api/v1/experiments/<str:key>/": Api({"GET": READ}, EXPERIMENT),
    "api/v1/experiments/<str:key>/start/": Api({"POST": WRITE}, EXPERIMENT),
    "api/v1/experiments/<str:key>/stop/": Api({"POST": WRITE}, EXPERIMENT),
    "api/v1/experiments/<str:key>/assignment/<str:customer_external_id>/": Api(
        {"GET": READ}, {**EXPERIMENT, "customer_external_id": "ada"}
    ),
    "api/v1/experiments/<str:key>/results/": Api({"GET": READ}, EXPERIMENT),
    "api/v1/models/<str:key>/stages/<str:stage>/export.csv": Api({"GET": READ}, {**MODEL, "stage": "new"}),
    # --- API: metrics ---
    "api/v1/models/<str:key>/funnel/": Api({"GET": READ}, MODEL),
    "api/v1/models/<str:key>/funnel/customers/": Api({"GET": READ}, MODEL, "stage=new"),
    "api/v1/models/<str:key>/flows/": Api({"GET": READ}, MODEL),
    "api/v1/models/<str:key>/flows/customers/": Api({"GET": READ}, MODEL, "from_stage=prospect&to_stage=new"),
    "api/v1/models/<str:key>/time-in-stage/": Api({"GET": READ}, MODEL),
    "api/v1/models/<str:key>/pipeline/history/": Api({"GET": READ}, MODEL),
    "api/v1/metrics/rates/": Api({"GET": READ}),
    "api/v1/metrics/cohorts/": Api({"GET": READ}),
    "api/v1/metrics/cohorts/customers/": Api({"GET": READ}, query="cohort=2024-01&month=0"),
    "api/v1/metrics/rfm/": Api({"GET": READ}),
    "api/v1/metrics/rfm/customers/": Api({"GET": READ}, query="segment=champions"),
    "api/v1/metrics/activity/": Api({"GET": READ}),
    "api/v1/metrics/activity/customers/": Api({"GET": READ}, query="month=2024-01&state=new"),
    "api/v1/metrics/cac/": Api({"GET": READ}),
    "api/v1/metrics/clv/": Api({"GET": READ}),
    "api/v1/metrics/clv/historical/": Api({"GET": READ}),
    "api/v1/metrics/clv/accuracy/": Api({"GET": READ}),
    "api/v1/metrics/targets/": Api({"GET": READ}),
    "api/v1/customers/<str:external_id>/value/": Api({"GET": READ}, ADA),
}

# The Django admin, one group: staff only (admin:login itself is public).
ADMIN_PREFIX = "admin/"


def url_patterns(resolver: URLResolver | None = None, prefix: str = "") -> list[tuple[str, URLPattern]]:
    """Every URL pattern of the project as (full route, pattern), recursing into includes."""
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found.extend(url_patterns(entry, route))
        else:
            found.append((route, entry))
    return found


def test_every_url_pattern_is_classified():
    routes = [route for route, _ in url_patterns()]
    unclassified = [route for route in routes if route not in ACCESS and not route.startswith(ADMIN_PREFIX)]
    assert not unclassified, f"views without an entry in ACCESS (give each its roles): {unclassified}"
    stale = set(ACCESS) - set(routes)
    assert not stale, f"ACCESS names routes that no longer exist: {sorted(stale)}"
    assert sum(route.startswith(ADMIN_PREFIX) for route in routes) > 50  # the admin is walked too


# --- the world behind the URLs ------------------------------------------------------------------------------------


@pytest.fixture
def world(db) -> dict[str, str]:
    """Real objects for every URL kwarg: customer ada (with an order), a campaign, an experiment, a channel plan,
    a classification run. Returns the ids that ACCESS refers to."""
    model = LifecycleModel.objects.get(key="status")
    ada = CustomerFactory(external_id="ada", first_seen_at=at("2024-01-01", 0))
    OrderFactory(customer=ada, placed_at=at("2024-01-10"))
    campaign = campaign_create(
        code="spring",
        name="Spring",
        channel="email",
        model="status",
        stages=["new"],
        start_date=date(2024, 3, 1),
        end_date=date(2024, 3, 31),
    )
    new = Stage.objects.get(model=model, key="new")
    experiment_create(
        key="banner",
        name="Checkout banner",
        model=model,
        stage=new,
        goal="place_order",
        window_days=10,
        variants=[
            {"key": "control", "name": "No banner", "weight": 1, "is_control": True},
            {"key": "banner", "name": "Banner", "weight": 1},
        ],
    )
    plan = ChannelPlan.objects.create(stage=new, channel=Channel.objects.get(key="email"), objective="Welcome")
    run = ClassificationRun.objects.create(model=model, kind=RunKind.FULL, as_of=datetime(2024, 3, 31, tzinfo=UTC))
    source = Source.objects.create(
        name="Shop", platform=Platform.SHOPWARE, shop_url="https://shop.example", currency="EUR", webhook_secret="s"
    )
    upload = Upload.objects.create(file_name="orders.csv", path="/nonexistent/orders.csv", size=10, source=source)
    destination, _ = destination_save(
        destination=None,
        name="CRM",
        url="https://crm.example/hooks",
        event_types=["customer.stage_changed"],
        lifecycle_models=[],
        actor=None,
    )
    delivery = destination_test_queue(destination=destination)
    return {
        "destination": str(destination.pk),
        "delivery": str(delivery.pk),
        "upload": str(upload.pk),
        "campaign": str(campaign.pk),
        "plan": str(plan.pk),
        "run": str(run.pk),
        "source": str(source.pk),
        "source_token": source.webhook_token,
    }


def person(role: Role, *, staff: bool = False) -> User:
    name = f"{'staff' if staff else 'user'}-{role.value}"
    user = User.objects.create_user(name, is_staff=staff)  # no password: force_login needs none, hashing is slow
    user.groups.add(Group.objects.get(name=role.value))
    return user


def key_client(name: str, scopes: set[str], *, revoked: bool = False) -> APIClient:
    _, key = ApiKey.objects.create_key(
        name=name,
        scope_read="read" in scopes,
        scope_write="write" in scopes,
        scope_admin="admin" in scopes,
        revoked=revoked,
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def url_for(route: str, entry: Page | Api, world: dict[str, str]) -> str:
    pattern = dict(url_patterns())[route]
    assert pattern.name, f"{route}: a page or endpoint needs a URL name"
    kwargs = {name: value.format(**world) for name, value in entry.kwargs.items()}
    return reverse(pattern.name, kwargs=kwargs) + (f"?{entry.query}" if entry.query else "")


def send(client, method: str, url: str):
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    if body is None:
        return client.generic(method, url)
    return client.generic(method, url, data="{}", content_type="application/json")


def login_redirect(response) -> bool:
    """Sent to log in (the site's or the admin's login page) before the view runs."""
    return response.status_code == 302 and response["Location"].startswith((f"{LOGIN}?next=", f"{ADMIN_LOGIN}?next="))


def allowed(response) -> bool:
    """The view ran: no refusal, no login redirect, no server error."""
    return response.status_code not in {401, 403, 405} and response.status_code < 500 and not login_redirect(response)


def describe(response) -> str:
    location = response.get("Location", "")
    return f"{response.status_code}{' -> ' + location if location else ''}"


def verdict(expected: bool) -> str:
    return "allowed" if expected else "refused"


def role_allows(role: Role, lowest: Role) -> bool:
    return ROLE_ORDER.index(role) >= ROLE_ORDER.index(lowest)


# --- pages -----------------------------------------------------------------------------------------------------------

PAGES = sorted(route for route, entry in ACCESS.items() if isinstance(entry, Page))
APIS = sorted(route for route, entry in ACCESS.items() if isinstance(entry, Api))
PUBLIC = sorted(route for route, entry in ACCESS.items() if isinstance(entry, Public))


@pytest.mark.parametrize("route", PAGES)
def test_page_access(route, world, client):
    entry = ACCESS[route]
    url = url_for(route, entry, world)
    problems = []
    for method in METHODS:
        response = send(client, method, url)
        if not login_redirect(response):
            problems.append(f"anonymous {method}: {describe(response)}, expected the login redirect")

    # An API key is no session: it opens no page.
    keyed = key_client("all scopes", {"read", "write", "admin"})
    response = send(keyed, "GET", url)
    if not login_redirect(response):
        problems.append(f"API key GET: {describe(response)}, expected the login redirect")

    for role in ROLE_ORDER:
        user = person(role)
        for method in METHODS:
            client.force_login(user)  # again each time: a POST to the logout page ends the session
            expected = method in entry.methods and role_allows(role, entry.methods[method])
            response = send(client, method, url)
            if allowed(response) != expected:
                problems.append(f"{role} {method}: {describe(response)}, expected {verdict(expected)}")
            elif expected and response.status_code == 404:
                problems.append(f"{role} {method}: 404, expected the view to find its objects (fix the kwargs)")
        client.logout()
    assert not problems, f"{url}:\n" + "\n".join(problems)


# --- API --------------------------------------------------------------------------------------------------------------

KEY_SCOPES = {"read": {"read"}, "write": {"write"}, "admin": {"admin"}}


def scopes_allow(held: set[str], needed: frozenset[str]) -> bool:
    return "any" in needed or bool(held & needed)


@pytest.mark.parametrize("route", APIS)
def test_api_access(route, world, client):
    entry = ACCESS[route]
    url = url_for(route, entry, world)
    problems = []
    anonymous = APIClient()
    for method in METHODS:
        response = send(anonymous, method, url)
        if response.status_code != 401:
            problems.append(f"anonymous {method}: {describe(response)}, expected 401")

    revoked = key_client("revoked", {"read", "write", "admin"}, revoked=True)
    for method in METHODS:
        response = send(revoked, method, url)
        if response.status_code != 401:
            problems.append(f"revoked key {method}: {describe(response)}, expected 401")

    for name, scopes in KEY_SCOPES.items():
        keyed = key_client(f"{name} key", scopes)
        for method in METHODS:
            expected = method in entry.methods and scopes_allow(scopes, entry.methods[method])
            response = send(keyed, method, url)
            if allowed(response) != expected:
                problems.append(f"{name} key {method}: {describe(response)}, expected {verdict(expected)}")
            elif expected and response.status_code == 404:
                problems.append(f"{name} key {method}: 404, expected the view to find its objects (fix the kwargs)")

    for role in ROLE_ORDER:
        session = APIClient()
        session.force_login(person(role))
        for method in METHODS:
            needed = entry.methods.get(method, frozenset())
            expected = any(role_allows(role, PERSON_ROLE[scope]) for scope in needed)
            response = send(session, method, url)
            if allowed(response) != expected:
                problems.append(f"{role} {method}: {describe(response)}, expected {verdict(expected)}")
    assert not problems, f"{url}:\n" + "\n".join(problems)


# --- public views -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", PUBLIC)
def test_public_views_need_no_login_and_serve_only_their_methods(route, client, db):
    entry = ACCESS[route]
    problems = []
    for method in METHODS:
        response = send(client, method, "/" + route)
        if allowed(response) != (method in entry.methods):
            problems.append(f"anonymous {method}: {describe(response)}")
    assert not problems, f"/{route}:\n" + "\n".join(problems)


# --- called by shop platforms ----------------------------------------------------------------------------------------

SIGNED = sorted(route for route, entry in ACCESS.items() if isinstance(entry, Signed))


@pytest.mark.parametrize("route", SIGNED)
def test_platform_endpoints_answer_no_one_without_a_signature(route, world, client):
    entry = ACCESS[route]
    pattern = dict(url_patterns())[route]
    url = reverse(pattern.name, kwargs={name: value.format(**world) for name, value in entry.kwargs.items()})
    callers = {
        "anonymous": client,
        "admin": user_client("signed-admin", Role.ADMIN.value),
        "admin key": key_client("admin key", {"read", "write", "admin"}),
    }
    problems = []
    for name, caller in callers.items():
        for method in METHODS:
            status = send(caller, method, url).status_code
            expected = 401 if method in entry.methods else 405
            if status != expected:
                problems.append(f"{name} {method}: {status}, expected {expected}")
    assert not problems, f"{url}:\n" + "\n".join(problems)


# --- Django admin -----------------------------------------------------------------------------------------------------


def admin_urls() -> list[str]:
    """A concrete URL for every admin pattern (dummy ids: the staff check comes before any lookup)."""
    urls = []
    for route, pattern in url_patterns():
        if not route.startswith(ADMIN_PREFIX):
            continue
        if pattern.name is None:  # the catch-all
            urls.append("/admin/no-such-page/")
            continue
        values = {"app_label": "clm", "content_type_id": "1", "object_id": "1", "url": "x"}
        regex = pattern.pattern.regex
        if regex.groupindex:
            kwargs = {name: values.get(name, "1") for name in regex.groupindex}
            urls.append(reverse(f"admin:{pattern.name}", kwargs=kwargs))
        else:  # positional groups (django-simple-history's history form)
            urls.append(reverse(f"admin:{pattern.name}", args=["1"] * regex.groups))
    return sorted(set(urls))


def test_the_django_admin_is_for_staff_only(client, db):
    urls = admin_urls()
    problems = []
    staffless_admin = person(Role.ADMIN)  # the admin role without is_staff: no admin site either
    for user in [None, person(Role.VIEWER), person(Role.MARKETER), staffless_admin]:
        if user is not None:
            client.force_login(user)
        for url in urls:
            if url == ADMIN_LOGIN:
                continue
            for method in ("GET", "POST"):
                response = send(client, method, url)
                # A non-staff user's admin logout only goes back to the admin index (and from there to its login).
                refused_logout = url == "/admin/logout/" and response.get("Location") == "/admin/"
                if not (login_redirect(response) or refused_logout):
                    problems.append(f"{user or 'anonymous'} {method} {url}: {describe(response)}")
        client.logout()
    assert not problems, "\n".join(problems)

    client.force_login(person(Role.ADMIN, staff=True))
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/clm/apikey/").status_code == 200
    assert client.get(ADMIN_LOGIN).status_code in {200, 302}
