"""A fake Shopware 6 Admin API for the Shopware tests: answers shaped as Shopware documents them
(fixtures/shopware/README.md), served by pytest-httpserver."""

import json
from pathlib import Path
from typing import Any

from werkzeug import Request, Response

from lifecycle.sources.models import Platform, Source
from lifecycle.sources.records import DEFAULT_CHANNEL_RULES
from lifecycle.sources.shopware.mapping import DEFAULT_COMPLETED_STATUSES

FIXTURES = Path(__file__).parent / "fixtures" / "shopware"
SECRET = "clm-shopware-test-secret"
CLIENT_SECRET = "MnRiQ2ZqZUNabnF0eWZ6OHpvdWpDRUxWdXZoOWRwZ3ZtZVd6ZTc"
ADA, GRACE, ALAN = (
    "0d1c6a5b2e3f4a5b8c9d0e1f2a3b4c5d",
    "1e2d7b6c3f4a5b6c9d0e1f2a3b4c5d6e",
    "2f3e8c7d4a5b6c7d0e1f2a3b4c5d6e7f",
)
LINUS = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
ORDER_IDS = [
    "4b5a0e9f6c7d8e9f2a3b4c5d6e7f8091",
    "5c6b1f0a7d8e9f0a3b4c5d6e7f809102",
    "6d7c2a1b8e9f0a1b4c5d6e7f80910213",
    "7e8d3b2c9f0a1b2c5d6e7f8091021324",
    "8f9e4c3d0a1b2c3d6e7f809102132435",
    "90af5d4e1b2c3d4e7f80910213243546",
]
NEW_ORDER = "b2c3d4e5f60718293a4b5c6d7e8f90a1"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def answer(data: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    """A search's answer; `total` counts every match only with total-count-mode 1, else the page's records."""
    return {"total": len(data) if total is None else total, "data": data, "aggregations": []}


def email_filter(criteria: dict[str, Any]) -> set[str] | None:
    for condition in criteria.get("filter") or []:
        if condition.get("type") == "equalsAny" and condition.get("field") == "email":
            return {email.lower() for email in condition["value"]}
    return None


class FakeShopware:
    """Shopware's Admin API on pytest-httpserver: the token, the searches page by page, failures where asked."""

    def __init__(self, httpserver) -> None:
        self.customer_pages = [fixture("customers_page1.json")["data"], fixture("customers_page2.json")["data"]]
        self.order_pages = [fixture(f"orders_page{number}.json")["data"] for number in (1, 2, 3, 4)]
        self.recipients = fixture("newsletter_recipients.json")["data"]
        self.changes: dict[str, list[dict[str, Any]]] = {}  # what a sync (a range filter) finds, by entity
        self.expires_in = 600
        self.tokens: list[str] = []
        self.revoked: set[str] = set()  # tokens answered 401, as after the shop dropped them
        self.searches_refused = False  # every search 401, whatever the token
        self.failing: tuple[str, int] | None = None  # (entity, page) answering 500 forever
        self.throttled: dict[tuple[str, int], int] = {}  # (entity, page): how many 429 answers before the page
        self.requests: list[tuple[str, dict[str, Any]]] = []
        httpserver.expect_request("/api/oauth/token", method="POST").respond_with_handler(self.token)
        httpserver.expect_request("/api/search-ids/order", method="POST").respond_with_handler(self.ids)
        for entity in ("customer", "order", "newsletter-recipient"):
            httpserver.expect_request(f"/api/search/{entity}", method="POST").respond_with_handler(self.search)

    @staticmethod
    def json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")

    def token(self, request: Request) -> Response:
        criteria = request.get_json()
        self.requests.append((request.path, criteria))
        wanted = {"grant_type": "client_credentials", "client_id": "SWIAQ0XLVUNOWUJSTGTPQZHHCQ"}
        if criteria != {**wanted, "client_secret": CLIENT_SECRET}:
            return self.json(fixture("error_401.json"), 401)
        self.tokens.append(f"{fixture('token.json')['access_token']}.{len(self.tokens) + 1}")
        return self.json({**fixture("token.json"), "expires_in": self.expires_in, "access_token": self.tokens[-1]})

    def authorized(self, request: Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return not self.searches_refused and token in self.tokens and token not in self.revoked

    def ids(self, request: Request) -> Response:
        self.requests.append((request.path, request.get_json()))
        return self.json(fixture("order_ids_total.json")) if self.authorized(request) else self.refusal()

    def refusal(self) -> Response:
        return self.json(fixture("error_401.json"), 401)

    def search(self, request: Request) -> Response:
        criteria = request.get_json()
        self.requests.append((request.path, criteria))
        if not self.authorized(request):
            return self.refusal()
        entity, page = request.path.rsplit("/", 1)[-1], criteria.get("page", 1)
        if self.failing == (entity, page):
            return self.json({"errors": [{"status": "500", "title": "Internal Server Error"}]}, 500)
        if self.throttled.get((entity, page)):
            self.throttled[(entity, page)] -= 1
            return self.json({"errors": [{"status": "429", "title": "Too Many Requests"}]}, 429, {"Retry-After": "7"})
        found = self.found(entity, page, criteria)
        if criteria.get("total-count-mode") == 1 and entity == "customer":
            return self.json(answer(found, total=sum(map(len, self.customer_pages))))
        return self.json(answer(found))

    def found(self, entity: str, page: int, criteria: dict[str, Any]) -> list[dict[str, Any]]:
        everything = {
            "customer": [record for records in self.customer_pages for record in records],
            "order": [record for records in self.order_pages for record in records],
            "newsletter-recipient": self.recipients,
        }[entity]
        emails = email_filter(criteria)
        if emails is not None:
            matching = [record for record in everything if record["email"].lower() in emails]
            return matching if page == 1 else []
        if "ids" in criteria:
            return [record for record in everything if record["id"] in criteria["ids"]]
        if any(condition.get("type") == "multi" for condition in criteria.get("filter") or []):
            return self.changes.get(entity, []) if page == 1 else []
        pages = {"customer": self.customer_pages, "order": self.order_pages, "newsletter-recipient": [everything]}[
            entity
        ]
        return pages[page - 1] if page <= len(pages) else []

    def asked(self, path: str) -> list[dict[str, Any]]:
        return [criteria for asked_path, criteria in self.requests if asked_path == path]


def shopware_source(shop_url: str) -> Source:
    return Source.objects.create(
        name="Shopware DE",
        platform=Platform.SHOPWARE,
        shop_url=shop_url,
        currency="EUR",
        credentials={"client_id": "SWIAQ0XLVUNOWUJSTGTPQZHHCQ", "client_secret": CLIENT_SECRET},
        webhook_secret=SECRET,
        completed_statuses=list(DEFAULT_COMPLETED_STATUSES),
        channel_rules=DEFAULT_CHANNEL_RULES,
    )
