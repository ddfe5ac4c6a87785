"""Shopify's customers and orders as CLM's shop records, from both shapes Shopify sends them in.

The Admin GraphQL API (history import, syncs) answers in camelCase with gid ids and money sets; webhooks carry the
REST-shaped payloads (snake_case, numeric ids). Both become the same `ShopCustomer`/`ShopOrder`, keyed by the
numeric id, so a webhook and the history import write one and the same record.

The fields each GraphQL query asks for sit here, next to the code that reads them.
"""

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lifecycle.models import ConsentState
from lifecycle.sources.records import Attribution, Consent, ShopCustomer, ShopOrder

# Shopify's marketing states (GraphQL's CustomerEmailMarketingState / CustomerSmsMarketingState, and the REST
# payloads' lower-case `state`) as CLM's consent states. REDACTED and INVALID: nobody may be mailed.
CONSENT_STATES = {
    "SUBSCRIBED": ConsentState.SUBSCRIBED,
    "PENDING": ConsentState.PENDING,
    "UNSUBSCRIBED": ConsentState.UNSUBSCRIBED,
    "NOT_SUBSCRIBED": ConsentState.NOT_SUBSCRIBED,
    "REDACTED": ConsentState.NOT_SUBSCRIBED,
    "INVALID": ConsentState.NOT_SUBSCRIBED,
}

# The email is read from defaultEmailAddress (Customer.email is deprecated for it). The consent is read from
# emailMarketingConsent and smsMarketingConsent, served in 2025-10 (later versions move them onto
# defaultEmailAddress and defaultPhoneNumber): the same fields as the webhooks' email/sms_marketing_consent.
CUSTOMER_FIELDS = """
id
firstName
lastName
defaultEmailAddress { emailAddress }
createdAt
updatedAt
emailMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }
smsMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }
"""

# Order.landingPageUrl and referrerUrl were replaced by customerJourneySummary.lastVisit: the visit the REST
# payloads' landing_site and referring_site describe, so webhooks and the history import attribute alike.
ORDER_FIELDS = f"""
id
email
createdAt
processedAt
updatedAt
cancelledAt
currencyCode
displayFinancialStatus
totalPriceSet {{ shopMoney {{ amount currencyCode }} }}
totalRefundedSet {{ shopMoney {{ amount currencyCode }} }}
customer {{ {CUSTOMER_FIELDS} }}
customerJourneySummary {{ lastVisit {{ landingPage referrerUrl utmParameters {{ source medium campaign }} }} }}
"""

CENT = Decimal("0.01")


def numeric_id(value: str | int) -> str:
    """Shopify's numeric id, from a gid (gid://shopify/Order/450789469) or a REST payload's number."""
    return str(value).rsplit("/", 1)[-1]


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part)


def _consent(state: str | None, at: str | None, opt_in_level: str | None) -> Consent | None:
    if not state:
        return None  # no address on this channel: leave whatever CLM knows alone
    level = f" {opt_in_level.lower()}" if opt_in_level else ""
    return Consent(
        state=CONSENT_STATES.get(state.upper(), ConsentState.NOT_SUBSCRIBED), at=_moment(at), source=f"shopify{level}"
    )


def _graphql_consent(value: dict[str, Any] | None) -> Consent | None:
    value = value or {}
    return _consent(value.get("marketingState"), value.get("consentUpdatedAt"), value.get("marketingOptInLevel"))


def _rest_consent(value: dict[str, Any] | None) -> Consent | None:
    value = value or {}
    return _consent(value.get("state"), value.get("consent_updated_at"), value.get("opt_in_level"))


def attribution(landing_site: str | None, referrer: str | None, utm: dict[str, Any] | None = None) -> Attribution:
    """UTM parameters from the landing page's query string (Shopify's own parse, `utm`, fills what it lacks)."""
    query = parse_qs(urlsplit(landing_site or "").query)
    utm = utm or {}

    def utm_value(name: str) -> str:
        return (query.get(f"utm_{name}") or [utm.get(name) or ""])[0]

    return Attribution(
        utm_source=utm_value("source"),
        utm_medium=utm_value("medium"),
        utm_campaign=utm_value("campaign"),
        referrer=referrer or "",
        landing_site=landing_site or "",
    )


def graphql_customer(node: dict[str, Any]) -> ShopCustomer:
    return ShopCustomer(
        id=numeric_id(node["id"]),
        email=(node.get("defaultEmailAddress") or {}).get("emailAddress") or "",
        name=_name(node.get("firstName"), node.get("lastName")),
        created_at=_moment(node.get("createdAt")),
        updated_at=_moment(node.get("updatedAt")),
        email_consent=_graphql_consent(node.get("emailMarketingConsent")),
        sms_consent=_graphql_consent(node.get("smsMarketingConsent")),
    )


def _order_customer(customer: ShopCustomer | None, order_email: str) -> ShopCustomer | None:
    """The order's customer; one shown without an email keeps the order's, rather than blank the one CLM has."""
    if customer is None or customer.email or not order_email:
        return customer
    return replace(customer, email=order_email)


def graphql_order(node: dict[str, Any]) -> ShopOrder:
    visit = (node.get("customerJourneySummary") or {}).get("lastVisit") or {}
    refunded = (node.get("totalRefundedSet") or {}).get("shopMoney") or {}
    email = node.get("email") or ""
    return ShopOrder(
        id=numeric_id(node["id"]),
        placed_at=_moment(node.get("processedAt")) or datetime.fromisoformat(node["createdAt"]),
        currency=node["currencyCode"],
        total=Decimal(node["totalPriceSet"]["shopMoney"]["amount"]),
        refunded=Decimal(refunded.get("amount") or 0),
        status=node.get("displayFinancialStatus") or "",
        cancelled=bool(node.get("cancelledAt")),
        customer=_order_customer(graphql_customer(node["customer"]) if node.get("customer") else None, email),
        email=email,
        updated_at=_moment(node.get("updatedAt")),
        attribution=attribution(visit.get("landingPage"), visit.get("referrerUrl"), visit.get("utmParameters")),
    )


def rest_customer(payload: dict[str, Any]) -> ShopCustomer:
    return ShopCustomer(
        id=numeric_id(payload["id"]),
        email=payload.get("email") or "",
        name=_name(payload.get("first_name"), payload.get("last_name")),
        created_at=_moment(payload.get("created_at")),
        updated_at=_moment(payload.get("updated_at")),
        email_consent=_rest_consent(payload.get("email_marketing_consent")),
        sms_consent=_rest_consent(payload.get("sms_marketing_consent")),
    )


def _shop_money(payload: dict[str, Any], field: str) -> Decimal | None:
    amount = ((payload.get(f"{field}_set") or {}).get("shop_money") or {}).get("amount")
    return Decimal(amount) if amount is not None else None


def rest_refunded(payload: dict[str, Any]) -> Decimal:
    """What the order's refunds paid back, in the shop's currency.

    A REST order carries no refunded total, only its refunds' transactions, and those are in the currency the buyer
    paid in (presentment); the order's own shop-to-presentment ratio brings them into the shop's currency.
    """
    shop_total = _shop_money(payload, "total_price")
    presentment_total = Decimal(
        ((payload.get("total_price_set") or {}).get("presentment_money") or {}).get("amount") or 0
    )
    refunded = Decimal(0)
    for refund in payload.get("refunds") or []:
        for transaction in refund.get("transactions") or []:
            if transaction.get("kind") != "refund" or transaction.get("status") != "success":
                continue
            amount = Decimal(transaction["amount"])
            paid_in = transaction.get("currency") or payload["currency"]
            if paid_in != payload["currency"] and shop_total is not None and presentment_total:
                amount = amount * shop_total / presentment_total
            refunded += amount
    return refunded.quantize(CENT)


def rest_order(payload: dict[str, Any]) -> ShopOrder:
    total = _shop_money(payload, "total_price")
    email = payload.get("email") or payload.get("contact_email") or ""
    return ShopOrder(
        id=numeric_id(payload["id"]),
        placed_at=_moment(payload.get("processed_at")) or datetime.fromisoformat(payload["created_at"]),
        currency=payload["currency"],
        total=total if total is not None else Decimal(payload["total_price"]),
        refunded=rest_refunded(payload),
        # REST says `paid`, GraphQL `PAID`: one spelling, so the completed statuses hold for both.
        status=(payload.get("financial_status") or "").upper(),
        cancelled=bool(payload.get("cancelled_at")),
        customer=_order_customer(rest_customer(payload["customer"]) if payload.get("customer") else None, email),
        email=email,
        updated_at=_moment(payload.get("updated_at")),
        attribution=attribution(payload.get("landing_site"), payload.get("referring_site")),
    )
