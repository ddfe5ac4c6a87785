"""Shopware 6's customers, orders and newsletter recipients as CLM's shop records.

The Admin API answers searches in plain JSON (`Accept: application/json`: `{"total", "data", "aggregations"}`) and
webhooks carry their entities encoded the same way (camelCase fields, hex ids, dates like
`2025-03-01T10:00:00.000+00:00`), so one mapping reads both. The search criteria loading what the mapping reads sit
here, next to the code reading it.

What counts as a purchase: the status CLM matches against the source's completed statuses is the payment state of
the order's latest transaction (`paid`, `paid_partially`, `refunded_partially`, …), except that an order the shop set
to `completed` while its payment is still undecided (`open`, `authorized`, …) has the status `completed`: shops
selling on invoice or cash on delivery often complete the order and never mark the payment paid.

Refunds: Shopware records refund amounts only where a payment extension uses the refund handling of 6.4.12+
(`order_transaction_capture_refund`); completed refunds there reduce the order's amount. A payment state of
`refunded` (or `chargeback`) is a full refund. `refunded_partially` without recorded refunds leaves the amount as it
is: Shopware knows no amount for it. A cancelled order is `cancelled`, and so is one whose payment was cancelled or
failed.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from lifecycle.models import ConsentState
from lifecycle.sources.records import Attribution, Consent, ShopCustomer, ShopOrder

ORDER_COMPLETED = "completed"
PAYMENT_UNDECIDED = frozenset({"", "open", "in_progress", "authorized", "unconfirmed", "reminded"})
FULL_REFUND_STATES = frozenset({"refunded", "chargeback"})
# A payment cancelled or failed withdraws the order: counted earlier, it stops counting; never counted, it changes no
# metric (CLM counts completed orders only). A new payment attempt adds a transaction and decides again.
PAYMENT_WITHDRAWN = frozenset({"cancelled", "failed"})
DEFAULT_COMPLETED_STATUSES = ("paid", "paid_partially", "refunded_partially", ORDER_COMPLETED)

# newsletter_recipient.status (NewsletterSubscribeRoute): `direct` is a subscription without double opt-in, `optIn`
# a confirmed one, `notSet` one waiting for its confirmation.
NEWSLETTER_STATES = {
    "direct": ConsentState.SUBSCRIBED,
    "optIn": ConsentState.SUBSCRIBED,
    "notSet": ConsentState.PENDING,
    "optOut": ConsentState.UNSUBSCRIBED,
}
CONSENT_SOURCE = "shopware newsletter"
NEVER_SUBSCRIBED = Consent(state=ConsentState.NOT_SUBSCRIBED, source=CONSENT_SOURCE)

# `includes` keep the answers to what is read below (the search criteria documentation: "includes (apiAlias)").
CUSTOMER_INCLUDES = {"customer": ["id", "email", "firstName", "lastName", "guest", "createdAt", "updatedAt"]}
NEWSLETTER_INCLUDES = {"newsletter_recipient": ["email", "status", "confirmedAt", "createdAt", "updatedAt"]}
ORDER_ASSOCIATIONS = {
    "currency": {},
    "stateMachineState": {},
    "orderCustomer": {"associations": {"customer": {}}},
    "transactions": {
        "associations": {
            "stateMachineState": {},
            "captures": {"associations": {"refunds": {"associations": {"stateMachineState": {}}}}},
        }
    },
}
ORDER_INCLUDES = {
    "order": [
        "id",
        "orderNumber",
        "orderDateTime",
        "createdAt",
        "updatedAt",
        "amountTotal",
        "campaignCode",
        "affiliateCode",
        "currency",
        "stateMachineState",
        "orderCustomer",
        "transactions",
    ],
    "currency": ["isoCode"],
    "state_machine_state": ["technicalName"],
    "order_customer": ["customerId", "email", "firstName", "lastName", "customer"],
    "customer": ["id", "guest"],
    "order_transaction": ["createdAt", "updatedAt", "stateMachineState", "captures"],
    "order_transaction_capture": ["refunds"],
    "order_transaction_capture_refund": ["amount", "stateMachineState"],
    "calculated_price": ["totalPrice"],
}


def moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _version(entity: dict[str, Any]) -> datetime | None:
    """When the shop last changed the entity: Shopware leaves updatedAt empty until the first update."""
    return moment(entity.get("updatedAt") or entity.get("createdAt"))


def _name(entity: dict[str, Any]) -> str:
    return " ".join(part for part in (entity.get("firstName"), entity.get("lastName")) if part)


def _money(value: Any) -> Decimal:
    # JSON numbers arrive as floats: their shortest repr is the amount Shopware stored (rounded to the currency).
    return Decimal(str(value))


def _state(entity: dict[str, Any]) -> str:
    return str((entity.get("stateMachineState") or {}).get("technicalName") or "")


def newsletter_consent(recipient: dict[str, Any]) -> Consent | None:
    state = NEWSLETTER_STATES.get(recipient.get("status") or "")
    if state is None:
        return None
    confirmed = recipient.get("confirmedAt") if state == ConsentState.SUBSCRIBED else None
    return Consent(state=state, at=moment(confirmed) or _version(recipient), source=CONSENT_SOURCE)


def consents_by_email(recipients: list[dict[str, Any]]) -> dict[str, Consent]:
    """Each address's consent (lower-cased): one recipient per sales channel, the most recently changed decides."""
    latest: dict[str, tuple[datetime | None, Consent]] = {}
    for recipient in recipients:
        email, consent = (recipient.get("email") or "").lower(), newsletter_consent(recipient)
        if not email or consent is None:
            continue
        at = _version(recipient)
        known = latest.get(email)
        if known is None or (at is not None and (known[0] is None or at >= known[0])):
            latest[email] = (at, consent)
    return {email: consent for email, (_, consent) in latest.items()}


def customer_record(customer: dict[str, Any], consent: Consent | None) -> ShopCustomer:
    return ShopCustomer(
        id=customer["id"],
        email=customer.get("email") or "",
        name=_name(customer),
        created_at=moment(customer.get("createdAt")),
        updated_at=_version(customer),
        email_consent=consent,
    )


def is_guest(customer: dict[str, Any]) -> bool:
    """Shopware makes a customer account for every guest order, a new one each time: CLM keys guests by email."""
    return bool(customer.get("guest"))


def _refunded(transactions: list[dict[str, Any]], total: Decimal, payment: str) -> Decimal:
    if payment in FULL_REFUND_STATES:
        return total
    refunds = (
        refund
        for transaction in transactions
        for capture in transaction.get("captures") or []
        for refund in capture.get("refunds") or []
        if _state(refund) == "completed"
    )
    return min(sum((_money((refund.get("amount") or {})["totalPrice"]) for refund in refunds), Decimal(0)), total)


def order_record(order: dict[str, Any]) -> ShopOrder:
    # The current payment is the latest transaction: changing the payment method adds one.
    transactions = sorted(order.get("transactions") or [], key=lambda transaction: transaction.get("createdAt") or "")
    payment = _state(transactions[-1]) if transactions else ""
    state = _state(order)
    status = ORDER_COMPLETED if state == ORDER_COMPLETED and payment in PAYMENT_UNDECIDED else payment
    total = _money(order["amountTotal"])
    buyer = order.get("orderCustomer") or {}
    email = buyer.get("email") or ""
    account = buyer.get("customer") or {}
    registered = buyer.get("customerId") and not is_guest(account)
    # Its transactions change without the order's updatedAt: the latest of all is the order's version.
    versions = [at for at in map(_version, [order, *transactions]) if at is not None]
    return ShopOrder(
        id=order["id"],
        placed_at=datetime.fromisoformat(order["orderDateTime"]),
        currency=str((order.get("currency") or {}).get("isoCode") or ""),
        total=total,
        status=status,
        customer=ShopCustomer(id=buyer["customerId"], email=email, name=_name(buyer)) if registered else None,
        email=email,
        updated_at=max(versions, default=None),
        refunded=_refunded(transactions, total, payment),
        cancelled=state == "cancelled" or payment in PAYMENT_WITHDRAWN,
        # Shopware keeps the `affiliateCode` and `campaignCode` the visitor's first URL carried (?affiliateCode=…).
        attribution=Attribution(
            utm_source=order.get("affiliateCode") or "",
            utm_medium="affiliate" if order.get("affiliateCode") else "",
            utm_campaign=order.get("campaignCode") or "",
        ),
    )
