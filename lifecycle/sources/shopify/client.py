"""The Shopify Admin GraphQL API client (version pinned): cost-based throttling, the history import, the syncs.

The rule: the history import runs one bulk operation per kind, customers then orders, and reads each result a
byte range at a time; the checkpoint holds the kind, the operation id and the byte offset and line reached. A kind
whose bulk operation Shopify refuses (another one of this app is running) or that fails is read in cursor pages
instead. Syncs (`changes_page`) read cursor pages filtered by `updated_at`; a refund webhook reads its one order.

Throttling (https://shopify.dev/docs/api/usage/limits): every answer reports the bucket of query-cost points
(`extensions.cost.throttleStatus`); before a query we wait until the bucket holds what that query cost last
time, and a THROTTLED answer (HTTP 200) is waited out and asked again.
"""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lifecycle.sources.http import ShopHttp
from lifecycle.sources.models import Source
from lifecycle.sources.platforms import CredentialsRejected, Page, PlatformUnavailable
from lifecycle.sources.records import ShopBatch
from lifecycle.sources.shopify.bulk import RUNNING, bulk_start, bulk_state, jsonl_read
from lifecycle.sources.shopify.mapping import CUSTOMER_FIELDS, ORDER_FIELDS, graphql_customer, graphql_order

logger = logging.getLogger(__name__)

API_VERSION = "2025-10"
KINDS = ("customers", "orders")
FIELDS = {"customers": CUSTOMER_FIELDS, "orders": ORDER_FIELDS}
PAGE_SIZE = 50  # an order with its customer and visit costs about 10 points: a page stays far below 1,000
POLL_SECONDS = 10.0
THROTTLE_ATTEMPTS = 8
SCOPES = "read_customers, read_orders and read_all_orders"

SHOP_QUERY = "{ shop { name currencyCode } }"
ORDER_QUERY = f"query ($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"


def _page_query(kind: str) -> str:
    return (
        f"query ($first: Int!, $after: String, $query: String) {{ {kind}(first: $first, after: $after, "
        f"query: $query, sortKey: UPDATED_AT) {{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ "
        f"{FIELDS[kind]} }} }} }} }}"
    )


def _bulk_query(kind: str) -> str:
    return f"{{ {kind} {{ edges {{ node {{ {FIELDS[kind]} }} }} }} }}"


def _batch(kind: str, nodes: list[dict[str, Any]]) -> ShopBatch:
    if kind == "customers":
        return ShopBatch(customers=[graphql_customer(node) for node in nodes])
    return ShopBatch(orders=[graphql_order(node) for node in nodes])


def _error_codes(errors: Any) -> set[str]:
    listed = errors if isinstance(errors, list) else [errors]
    return {str((error.get("extensions") or {}).get("code")) for error in listed if isinstance(error, dict)}


def _error_text(errors: Any) -> str:
    listed = errors if isinstance(errors, list) else [errors]
    return "; ".join(str(error.get("message", error)) if isinstance(error, dict) else str(error) for error in listed)


def _kind_start(kind: str) -> dict[str, Any]:
    return {"kind": kind, "mode": "bulk", "operation": None, "offset": 0, "line": 0, "cursor": None}


def _after(kind: str) -> dict[str, Any] | None:
    """The checkpoint that starts the kind after this one; None after the last."""
    following = KINDS.index(kind) + 1
    return _kind_start(KINDS[following]) if following < len(KINDS) else None


class ShopifyClient:
    def __init__(self, source: Source, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.credentials = dict(source.credentials or {})
        self.currency = source.currency
        self.shop_url = source.shop_url.rstrip("/")
        self.api = ShopHttp(base_url=f"{self.shop_url}/admin/api/{API_VERSION}", sleep=sleep)
        # Bulk results are on Shopify's storage behind a signed URL: that host never gets the access token.
        self.files = ShopHttp(base_url="", sleep=sleep)
        self.sleep = sleep
        self.available: float | None = None  # points in the bucket after the last answer
        self.restore_rate = 50.0
        self.costs: dict[str, float] = {}  # what each query cost when last asked

    def _bucket_note(self, name: str, cost: dict[str, Any]) -> None:
        status = cost.get("throttleStatus") or {}
        if status.get("currentlyAvailable") is not None:
            self.available = float(status["currentlyAvailable"])
            self.restore_rate = float(status.get("restoreRate") or self.restore_rate)
        if cost.get("requestedQueryCost") is not None:
            self.costs[name] = float(cost["requestedQueryCost"])

    def _bucket_wait(self, name: str, *, at_least: float = 0.0) -> None:
        """Wait until the bucket holds what this query cost last time, rather than be throttled."""
        needed = self.costs.get(name, 0.0)
        short = needed - self.available if self.available is not None else 0.0
        seconds = max(short / self.restore_rate, at_least)
        if seconds > 0:
            self.sleep(seconds)
            self.available = max(self.available or 0.0, needed)

    def _authorize(self) -> None:
        """The access token: the stored one, or one the client credentials grant gives (valid 24 hours, longer
        than any run of this client; https://shopify.dev/docs/apps/build/dev-dashboard/get-api-access-tokens)."""
        if "X-Shopify-Access-Token" in self.api.client.headers:
            return
        token = self.credentials.get("access_token")
        if not token:
            grant = {
                "grant_type": "client_credentials",
                "client_id": self.credentials.get("client_id", ""),
                "client_secret": self.credentials.get("client_secret", ""),
            }
            answer = self.api.request("POST", f"{self.shop_url}/admin/oauth/access_token", data=grant, refused=(400,))
            token = answer.json().get("access_token")
            if not token:
                raise CredentialsRejected("Shopify gave no access token for the client id and secret.")
        self.api.client.headers["X-Shopify-Access-Token"] = str(token)

    def graphql(self, name: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        self._authorize()
        for _attempt in range(THROTTLE_ATTEMPTS):
            self._bucket_wait(name)
            response = self.api.request("POST", "/graphql.json", json={"query": query, "variables": variables})
            try:
                body = response.json()
            except ValueError as exc:
                raise PlatformUnavailable(f"Shopify answered {name} with something that is not JSON.") from exc
            self._bucket_note(name, (body.get("extensions") or {}).get("cost") or {})
            errors = body.get("errors")
            if not errors:
                return dict(body["data"])
            codes = _error_codes(errors)
            if "THROTTLED" in codes:
                self._bucket_wait(name, at_least=1.0)  # the answer said what the query needs and what is left
                continue
            if "ACCESS_DENIED" in codes:
                raise CredentialsRejected(f"Shopify refused {name}: {_error_text(errors)} The app needs {SCOPES}.")
            raise PlatformUnavailable(f"Shopify answered {name} with errors: {_error_text(errors)}")
        raise PlatformUnavailable(f"Shopify kept throttling {name} after {THROTTLE_ATTEMPTS} waits.")

    def connection_check(self) -> None:
        shop = self.graphql("shop", SHOP_QUERY, {})["shop"]
        if str(shop["currencyCode"]).upper() != self.currency.upper():
            raise PlatformUnavailable(
                f"The shop's currency is {shop['currencyCode']}, this source's {self.currency}: change the source's "
                "currency, or every order is skipped."
            )

    def _page(self, kind: str, *, after: str | None, query: str | None) -> tuple[ShopBatch, str | None]:
        variables = {"first": PAGE_SIZE, "after": after, "query": query}
        connection = self.graphql(kind, _page_query(kind), variables)[kind]
        info = connection["pageInfo"]
        batch = _batch(kind, [edge["node"] for edge in connection["edges"]])
        return batch, info["endCursor"] if info["hasNextPage"] else None

    def history_page(self, checkpoint: dict[str, Any]) -> Page:
        state = {**_kind_start(KINDS[0]), **checkpoint}
        kind = state["kind"]
        if state["mode"] == "pages":
            batch, cursor = self._page(kind, after=state["cursor"], query=None)
            return Page(batch, {**state, "cursor": cursor} if cursor else _after(kind))
        if not state["operation"]:
            started = bulk_start(self.graphql, _bulk_query(kind))
            if started is None:
                return Page(ShopBatch(), {**state, "mode": "pages"})
            return Page(ShopBatch(), {**state, "operation": started})
        operation = bulk_state(self.graphql, state["operation"])
        if operation["status"] in RUNNING:
            self.sleep(POLL_SECONDS)
            return Page(ShopBatch(), state)
        if operation["status"] == "EXPIRED":
            return Page(ShopBatch(), _kind_start(kind))  # its file is gone: run the operation again
        if operation["status"] != "COMPLETED":
            logger.warning(
                "Shopify bulk operation %s ended %s (%s); reading %s in pages instead",
                state["operation"],
                operation["status"],
                operation.get("errorCode"),
                kind,
            )
            return Page(ShopBatch(), {**_kind_start(kind), "mode": "pages"})
        if not operation.get("url") or not int(operation.get("objectCount") or 0):
            return Page(ShopBatch(), _after(kind))
        try:
            nodes, offset, at_end = jsonl_read(self.files, operation["url"], state["offset"])
        except CredentialsRejected:
            return Page(ShopBatch(), _kind_start(kind))  # the storage refused the signed URL: it expired
        following = _after(kind) if at_end else {**state, "offset": offset, "line": state["line"] + len(nodes)}
        return Page(_batch(kind, nodes), following)

    def changes_page(self, since: datetime, checkpoint: dict[str, Any]) -> Page:
        state = {"kind": KINDS[0], "cursor": None, **checkpoint}
        kind = state["kind"]
        # Shopify's search syntax: https://shopify.dev/docs/api/usage/search-syntax
        query = f"updated_at:>'{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
        batch, cursor = self._page(kind, after=state["cursor"], query=query)
        if cursor:
            return Page(batch, {"kind": kind, "cursor": cursor})
        following = _after(kind)
        return Page(batch, {"kind": following["kind"], "cursor": None} if following else None)

    def close(self) -> None:
        self.api.close()
        self.files.close()

    def order_batch(self, order_id: str) -> ShopBatch:
        """One order as the shop has it now (a refund webhook names its order without carrying it)."""
        node = self.graphql("order", ORDER_QUERY, {"id": f"gid://shopify/Order/{order_id}"})["order"]
        return ShopBatch(orders=[graphql_order(node)]) if node else ShopBatch()


def shopify_client(source: Source) -> ShopifyClient:
    return ShopifyClient(source, sleep=pause)


pause = time.sleep  # tests replace it, so a throttled or polling client does not make them wait
