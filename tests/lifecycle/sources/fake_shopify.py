"""A local Shopify for the tests: the Admin GraphQL API (2025-10) and the bulk operations' result files, answering
in the shapes documented by Shopify (fixtures/shopify/README.md lists the pages)."""

import copy
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from lifecycle.sources.models import Platform, Source
from lifecycle.sources.records import DEFAULT_CHANNEL_RULES
from lifecycle.sources.shopify.adapter import SHOPIFY

FIXTURES = Path(__file__).parent / "fixtures" / "shopify"
API_PATH = "/admin/api/2025-10/graphql.json"
# https://shopify.dev/docs/api/usage/limits: every answer reports the query's cost and the app's bucket.
ROOMY_BUCKET = {
    "requestedQueryCost": 52,
    "actualQueryCost": 12,
    "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1988, "restoreRate": 100.0},
}


def shopify_source(server: HTTPServer, *, token: str, secret: str) -> Source:
    """A Shopify source with the defaults an admin gets, whose shop is the local server."""
    return Source.objects.create(
        name="Shopify",
        platform=Platform.SHOPIFY,
        shop_url=server.url_for("/").rstrip("/"),
        currency="EUR",
        credentials={"access_token": token},
        webhook_secret=secret,
        completed_statuses=list(SHOPIFY.default_completed_statuses),
        channel_rules=DEFAULT_CHANNEL_RULES,
    )


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def json_response(body: Any, status: int = 200, **headers: str) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


def a_customer(number: int, email: str, *, updated: str = "2025-01-05T10:00:00Z", **fields: Any) -> dict[str, Any]:
    """A Customer node (fixtures/shopify/graphql_customer.json) with this id, email and updatedAt."""
    node = fixture("graphql_customer.json")
    node.update(id=f"gid://shopify/Customer/{number}", defaultEmailAddress={"emailAddress": email}, updatedAt=updated)
    node.update(fields)
    return node


def an_order(number: int, customer: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """An Order node (fixtures/shopify/graphql_order.json); `total`/`refunded` set the shop-money amounts."""
    node = fixture("graphql_order.json")
    node.update(id=f"gid://shopify/Order/{number}", customer=copy.deepcopy(customer))
    if customer is not None:
        node["email"] = customer["defaultEmailAddress"]["emailAddress"]
    node["totalPriceSet"]["shopMoney"]["amount"] = fields.pop("total", "80.0")
    node["totalRefundedSet"]["shopMoney"]["amount"] = fields.pop("refunded", "0.0")
    node.update(fields)
    return node


class FakeShopify:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.currency = "EUR"
        self.customers: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.cost: dict[str, Any] = ROOMY_BUCKET
        self.answers: list[Response] = []  # served before anything else, one per request
        self.bulk = "COMPLETED"  # how bulk operations end: COMPLETED, FAILED, or "refused" (not started)
        self.expire_first = False  # the first operation's results have expired (older than seven days)
        self.polls_running = 1  # polls that still see an operation RUNNING
        self.operations: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []  # GraphQL requests: headers, query, variables
        self.file_requests: list[dict[str, str]] = []  # bulk file requests: the file's kind and the headers
        self.failing_file: tuple[str, int] | None = None  # (kind, n): its file answers 500 from the n-th request on
        self.ignore_range = False  # a file server that answers 200 with the whole file
        server.expect_request(API_PATH, method="POST").respond_with_handler(self.graphql)
        server.expect_request(re.compile(r"^/bulk/\d+\.jsonl$"), method="GET").respond_with_handler(self.file)

    def queries(self, word: str) -> list[dict[str, Any]]:
        return [request for request in self.requests if word in request["query"]]

    def graphql(self, request: Request) -> Response:
        body = request.get_json()
        self.requests.append({"headers": dict(request.headers), **body})
        if self.answers:
            return self.answers.pop(0)
        query, variables = body["query"], body.get("variables") or {}
        if "bulkOperationRunQuery" in query:
            data = {"bulkOperationRunQuery": self.bulk_run(variables["query"])}
        elif "node(id:" in query:
            data = {"node": self.bulk_node(variables["id"])}
        elif "shop {" in query:
            data = {"shop": {"name": "CLM test", "currencyCode": self.currency}}
        elif "order(id:" in query:
            data = {"order": next((order for order in self.orders if order["id"] == variables["id"]), None)}
        else:
            kind = "customers" if "customers(first" in query else "orders"
            data = {kind: self.page(kind, variables)}
        return json_response({"data": data, "extensions": {"cost": self.cost}})

    def records(self, kind: str) -> list[dict[str, Any]]:
        return self.customers if kind == "customers" else self.orders

    def page(self, kind: str, variables: dict[str, Any]) -> dict[str, Any]:
        """A connection page (https://shopify.dev/docs/api/usage/pagination-graphql), sorted by updatedAt."""
        records = sorted(self.records(kind), key=lambda node: node["updatedAt"])
        since = re.search(r"updated_at:>'([^']+)'", variables.get("query") or "")
        if since:
            start = datetime.fromisoformat(since[1])
            records = [node for node in records if datetime.fromisoformat(node["updatedAt"]) > start]
        offset = int(variables["after"].removeprefix("cursor-")) if variables.get("after") else 0
        nodes = records[offset : offset + variables["first"]]
        end = offset + len(nodes)
        return {
            "pageInfo": {"hasNextPage": end < len(records), "endCursor": f"cursor-{end}" if nodes else None},
            "edges": [{"cursor": f"cursor-{offset + index + 1}", "node": node} for index, node in enumerate(nodes)],
        }

    def bulk_run(self, bulk_query: str) -> dict[str, Any]:
        if self.bulk == "refused":
            return {
                "bulkOperation": None,
                "userErrors": [
                    {
                        "field": None,
                        "message": "A bulk query operation for this app and shop is already in progress: "
                        "gid://shopify/BulkOperation/1.",
                        "code": "OPERATION_IN_PROGRESS",
                    }
                ],
            }
        number = len(self.operations) + 1
        operation_id = f"gid://shopify/BulkOperation/{number}"
        kind = "customers" if bulk_query.lstrip("{ ").startswith("customers") else "orders"
        self.operations[operation_id] = {"number": number, "kind": kind, "polls": 0}
        return {"bulkOperation": {"id": operation_id, "status": "CREATED"}, "userErrors": []}

    def bulk_node(self, operation_id: str) -> dict[str, Any] | None:
        operation = self.operations.get(operation_id)
        if operation is None:
            return None
        operation["polls"] += 1
        status = "RUNNING" if operation["polls"] <= self.polls_running else self.bulk
        if status == "COMPLETED" and self.expire_first and operation["number"] == 1:
            status = "EXPIRED"
        count = len(self.records(operation["kind"]))
        return {
            "id": operation_id,
            "status": status,
            "errorCode": "INTERNAL_SERVER_ERROR" if status == "FAILED" else None,
            "objectCount": str(count if status == "COMPLETED" else 0),
            "url": self.server.url_for(f"/bulk/{operation['number']}.jsonl") if status == "COMPLETED" else None,
        }

    def jsonl(self, kind: str) -> bytes:
        return b"".join(json.dumps(node).encode() + b"\n" for node in self.records(kind))

    def file(self, request: Request) -> Response:
        """The result file, served with range requests (206 + Content-Range) as Shopify's storage does."""
        number = int(re.findall(r"\d+", request.path)[0])
        kind = next(op["kind"] for op in self.operations.values() if op["number"] == number)
        self.file_requests.append({"kind": kind, **request.headers})
        asked = sum(1 for headers in self.file_requests if headers["kind"] == kind)
        if self.failing_file and self.failing_file[0] == kind and asked >= self.failing_file[1]:
            return Response("backend error", status=500)
        content = self.jsonl(kind)
        wanted = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers.get("Range", ""))
        if self.ignore_range or not wanted:
            return Response(content, status=200, content_type="application/jsonl")
        first, last = int(wanted[1]), min(int(wanted[2]), len(content) - 1)
        return Response(
            content[first : last + 1],
            status=206,
            headers={"Content-Range": f"bytes {first}-{last}/{len(content)}"},
            content_type="application/jsonl",
        )
