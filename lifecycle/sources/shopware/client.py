"""The Shopware 6 Admin API client: the OAuth token, search pages, the history import and the syncs.

- Token (Admin API reference, "Authentication & Authorisation", client credentials grant): `POST /api/oauth/token`
  with the integration's access key id and secret access key gives a bearer token valid for `expires_in` seconds
  (600). It is renewed shortly before it runs out, and once when a request answers 401 (a token the shop dropped
  early); a 401 with a token just issued means the credentials are refused. Failed token requests are throttled by
  the shop (429), which ShopHttp waits out.
- Pages: `POST /api/search/<entity>` with search criteria (page, limit, sort, filter, associations, includes,
  total-count-mode), answered as `{"total", "data", "aggregations"}` with `Accept: application/json`.
- History import: registered customers (guests come with their orders), then orders, each sorted by createdAt and
  id; the checkpoint holds the entity and the page. The first page asks for exact totals (the progress bar).
- Syncs: the same searches, filtered to what was created or updated since the last sync (Shopware leaves updatedAt
  empty until an entity's first update). A payment changes the order's transaction, not the order, so orders whose
  transactions changed come too; newsletter recipients changed since bring their customers' consent.
- A page of customers brings their newsletter consent: newsletter recipients are kept per address and sales
  channel, not per customer, so they are looked up by the page's addresses.
"""

import itertools
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

from lifecycle.sources.http import ShopHttp
from lifecycle.sources.models import Source
from lifecycle.sources.platforms import CredentialsRejected, Page, PlatformUnavailable
from lifecycle.sources.records import ShopBatch, ShopCustomer
from lifecycle.sources.shopware.mapping import (
    CUSTOMER_INCLUDES,
    NEVER_SUBSCRIBED,
    NEWSLETTER_INCLUDES,
    ORDER_ASSOCIATIONS,
    ORDER_INCLUDES,
    consents_by_email,
    customer_record,
    order_record,
)

PAGE_SIZE = 250
TOKEN_MARGIN_SECONDS = 30.0  # renew a token this long before Shopware says it runs out
STABLE_ORDER = [{"field": "createdAt", "order": "ASC"}, {"field": "id", "order": "ASC"}]
REGISTERED = {"type": "equals", "field": "guest", "value": False}
# The entities each run reads, in order: the history import, then the syncs.
HISTORY = ("customer", "order")
CHANGES = ("customer", "order", "newsletter-recipient")
CHANGE_FIELDS = {
    "customer": ("createdAt", "updatedAt"),
    "order": ("createdAt", "updatedAt", "transactions.updatedAt"),
    "newsletter-recipient": ("createdAt", "updatedAt"),
}


def storage_time(moment: datetime) -> str:
    """A moment as Shopware stores dates (UTC, `Y-m-d H:i:s.v`): range filters compare with the column as is."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _changed_since(entity: str, since: datetime) -> dict[str, Any]:
    gte = {"gte": storage_time(since)}
    queries = [{"type": "range", "field": name, "parameters": gte} for name in CHANGE_FIELDS[entity]]
    return {"type": "multi", "operator": "or", "queries": queries}


def _next(entities: tuple[str, ...], entity: str, page: int, full: bool) -> dict[str, Any] | None:
    """The checkpoint after a page: the next page while pages come full, then the next entity's first."""
    if full:
        return {"entity": entity, "page": page + 1}
    following = entities.index(entity) + 1
    return {"entity": entities[following], "page": 1} if following < len(entities) else None


class ShopwareClient:
    def __init__(self, source: Source, *, sleep: Callable[[float], None] = time.sleep, page_size: int = PAGE_SIZE):
        credentials = source.credentials or {}
        self.client_id = str(credentials.get("client_id", ""))
        self.client_secret = str(credentials.get("client_secret", ""))
        self.page_size = page_size
        self.http = ShopHttp(base_url=source.shop_url, headers={"Accept": "application/json"}, sleep=sleep)
        self._token = ""
        self._token_until = 0.0

    # --- the token and one request ------------------------------------------------------------------------------

    def _access_token(self) -> tuple[str, bool]:
        """The bearer token, and whether it was issued just now."""
        if self._token and time.monotonic() < self._token_until:
            return self._token, False
        answer = self._json(
            self.http.request(
                "POST",
                "/api/oauth/token",
                json={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                },
            )
        )
        try:
            self._token = str(answer["access_token"])
            lifetime = float(answer.get("expires_in", 600))
        except (KeyError, TypeError, ValueError) as exc:
            raise PlatformUnavailable(f"The shop's token answer has no access_token: {exc!r}") from exc
        self._token_until = time.monotonic() + lifetime - TOKEN_MARGIN_SECONDS
        return self._token, True

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            raise PlatformUnavailable(f"The shop answered {response.request.url} with something not JSON.") from exc
        if not isinstance(body, dict):
            raise PlatformUnavailable(f"The shop answered {response.request.url} with JSON that is no object.")
        return body

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        def send(token: str) -> dict[str, Any]:
            return self._json(self.http.request("POST", path, json=body, headers={"Authorization": f"Bearer {token}"}))

        token, fresh = self._access_token()
        try:
            return send(token)
        except CredentialsRejected:
            if fresh:
                raise
        # The shop dropped the token before its time (a restart with new keys, a revoked session): a new one decides.
        self._token = ""
        return send(self._access_token()[0])

    def search(self, entity: str, criteria: dict[str, Any]) -> dict[str, Any]:
        answer = self._post(f"/api/search/{entity}", criteria)
        if not isinstance(answer.get("data"), list):
            raise PlatformUnavailable(f"The shop's answer to /api/search/{entity} has no data list.")
        return answer

    def _search_all(self, entity: str, criteria: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in itertools.count(1):
            data = self.search(entity, {**criteria, "page": page, "limit": self.page_size})["data"]
            found += data
            if len(data) < self.page_size:
                break
        return found

    # --- records ------------------------------------------------------------------------------------------------

    def _criteria(self, entity: str, page: int, filters: list[dict[str, Any]], count: bool) -> dict[str, Any]:
        criteria: dict[str, Any] = {"page": page, "limit": self.page_size, "sort": STABLE_ORDER, "filter": filters}
        criteria["total-count-mode"] = 1 if count else 0
        if entity == "customer":
            criteria["filter"] = [REGISTERED, *filters]
            criteria["includes"] = CUSTOMER_INCLUDES
        elif entity == "order":
            criteria["associations"] = ORDER_ASSOCIATIONS
            criteria["includes"] = ORDER_INCLUDES
        else:
            criteria["includes"] = NEWSLETTER_INCLUDES
        return criteria

    def customers_with_consent(self, customers: list[dict[str, Any]]) -> list[ShopCustomer]:
        emails = sorted({customer["email"] for customer in customers if customer.get("email")})
        if not emails:
            return [customer_record(customer, None) for customer in customers]
        recipients = self._search_all(
            "newsletter-recipient",
            {
                "filter": [{"type": "equalsAny", "field": "email", "value": emails}],
                "sort": STABLE_ORDER,
                "includes": NEWSLETTER_INCLUDES,
            },
        )
        consents = consents_by_email(recipients)
        return [
            customer_record(customer, consents.get((customer.get("email") or "").lower(), NEVER_SUBSCRIBED))
            for customer in customers
        ]

    def _customers_by_email(self, emails: Iterable[str]) -> list[ShopCustomer]:
        wanted = sorted({email for email in emails if email})
        if not wanted:
            return []
        customers = self._search_all(
            "customer",
            {
                "filter": [REGISTERED, {"type": "equalsAny", "field": "email", "value": wanted}],
                "sort": STABLE_ORDER,
                "includes": CUSTOMER_INCLUDES,
            },
        )
        return self.customers_with_consent(customers)

    def orders_batch(self, order_ids: list[str]) -> ShopBatch:
        """The orders with these ids as the shop has them now (a webhook whose payload lacks the refunds)."""
        answer = self.search(
            "order",
            {"ids": order_ids, "associations": ORDER_ASSOCIATIONS, "includes": ORDER_INCLUDES},
        )
        return ShopBatch(orders=[order_record(order) for order in answer["data"]])

    def _page(
        self, entities: tuple[str, ...], checkpoint: dict[str, Any], filters: list[dict[str, Any]], count: bool
    ) -> tuple[ShopBatch, dict[str, Any] | None, int]:
        entity, page = str(checkpoint.get("entity", entities[0])), int(checkpoint.get("page", 1))
        answer = self.search(entity, self._criteria(entity, page, filters, count))
        data = answer["data"]
        if entity == "customer":
            batch = ShopBatch(customers=self.customers_with_consent(data))
        elif entity == "order":
            batch = ShopBatch(orders=[order_record(order) for order in data])
        else:
            batch = ShopBatch(customers=self._customers_by_email(recipient.get("email") or "" for recipient in data))
        total = int(answer.get("total") or 0) if count else 0
        return batch, _next(entities, entity, page, len(data) >= self.page_size), total

    # --- the PlatformClient protocol ----------------------------------------------------------------------------

    def connection_check(self) -> None:
        """Ask for one record of each entity CLM reads: a missing permission (403) shows now, not mid-import."""
        for entity in CHANGES:
            self.search(entity, {"limit": 1, "includes": {entity.replace("-", "_"): ["id"]}})

    def history_page(self, checkpoint: dict[str, Any]) -> Page:
        starting = not checkpoint
        batch, following, total = self._page(HISTORY, checkpoint, [], count=starting)
        if starting:
            # The orders' count, from the ids search: it loads no order.
            total += int(self._post("/api/search-ids/order", {"limit": 1, "total-count-mode": 1}).get("total") or 0)
        return Page(batch, following, total if starting else None)

    def changes_page(self, since: datetime, checkpoint: dict[str, Any]) -> Page:
        entity = str(checkpoint.get("entity", CHANGES[0]))
        batch, following, _ = self._page(CHANGES, checkpoint, [_changed_since(entity, since)], count=False)
        return Page(batch, following)


def shopware_client(source: Source) -> ShopwareClient:
    return ShopwareClient(source)
