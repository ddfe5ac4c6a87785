"""Seeded demo data around an imported order history (SPEC §10).

CDNOW has orders only. `demo_data_seed` adds what a shop would also have recorded around them:
acquisition touches before each first order, emails and app pushes after orders, reviews and support
contacts, referrals between buyers, NPS feedback, leads who never ordered, and marketing spend.

Everything is drawn from the seed and the orders in the database (customers with orders, sorted by id),
never from what an earlier run wrote, and every row has a deterministic `demo-...` external id or key:
the same seed on the same orders gives the same rows, and a second run writes nothing. Orders are never
written; customers with orders only get an acquisition channel and referrer (unless they already have
different ones) and an earlier first_seen_at when a touchpoint precedes their first order.

It lives on the top floor (clm) because it writes across the apps: lifecycle data and campaigns' marketing
spend. The numbers it draws with are in clm.demo.parameters, the drawing in clm.demo.generate.
"""

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from campaigns.ingest_kinds import MARKETING_SPEND
from clm.base.days import day_start
from clm.demo.generate import (
    Buyer,
    DemoRows,
    acquisition_generate,
    after_orders_generate,
    feedback_generate,
    history_campaigns,
    leads_generate,
    spend_generate,
)
from clm.demo.parameters import FUNNELS
from lifecycle.ingest import IngestResult, ValidItem, channel_ids_by_key, records_write
from lifecycle.ingest_kinds import CUSTOMERS, FEEDBACK, TOUCHPOINTS
from lifecycle.models import ConsentState, Customer, Order

DEFAULT_SEED = 42


@dataclass(frozen=True)
class WriteCounts:
    rows: int
    created: int
    updated: int

    @classmethod
    def of(cls, result: IngestResult) -> "WriteCounts":
        return cls(len(result.items), result.count("created"), result.count("updated"))


@dataclass(frozen=True)
class DemoSeedResult:
    seed: int
    buyers: int
    referred: int
    leads: WriteCounts
    buyer_channels: WriteCounts
    touchpoints: WriteCounts
    feedback: WriteCounts
    spend: WriteCounts

    @property
    def created(self) -> int:
        return sum(c.created for c in (self.leads, self.buyer_channels, self.touchpoints, self.feedback, self.spend))

    @property
    def updated(self) -> int:
        return sum(c.updated for c in (self.leads, self.buyer_channels, self.touchpoints, self.feedback, self.spend))


class DemoSeedError(Exception):
    pass


def demo_data_seed(*, seed: int = DEFAULT_SEED) -> DemoSeedResult:
    """Generate demo touchpoints, referrals, feedback, leads and spend around the orders; write them in one transaction.

    Raises DemoSeedError when there are no orders or a core channel is missing.
    """
    channel_ids = channel_ids_by_key()
    missing = sorted((set(FUNNELS) | {"app_notifications"}) - set(channel_ids))
    if missing:
        raise DemoSeedError(f"Missing channels {', '.join(missing)}: run `manage.py migrate` first.")
    buyers = _buyers_load()
    if not buyers:
        raise DemoSeedError("No customers with orders: import an order history first (manage.py import_cdnow).")
    start = min(buyer.orders[0] for buyer in buyers)
    last_day = max(buyer.orders[-1] for buyer in buyers).date()
    end = min(day_start(last_day + timedelta(days=1)), timezone.now())
    campaigns = history_campaigns(first_day=start.date(), last_day=last_day)
    demo = DemoRows(channel_ids=channel_ids, end=end)
    # One stream per part, so that changing how one part draws leaves the others' rows alone.
    rngs = {
        name: random.Random(f"{seed}:{name}")  # noqa: S311 - demo data, not cryptography
        for name in ("acquisition", "after", "feedback", "leads", "spend", "consent")
    }

    acquisition_generate(demo, buyers, campaigns, rngs["acquisition"])
    after_orders_generate(demo, buyers, campaigns, rngs["after"])
    feedback_generate(demo, buyers, rngs["feedback"])
    leads_generate(demo, buyers, start, campaigns, rngs["leads"])
    spend = spend_generate(demo, buyers, campaigns, rngs["spend"])

    with transaction.atomic():
        leads = records_write(kind=CUSTOMERS, items=_lead_items(demo, rngs["consent"]))
        buyer_channels = records_write(kind=CUSTOMERS, items=_buyer_items(buyers, channel_ids, rngs["consent"]))
        touchpoints = records_write(kind=TOUCHPOINTS, items=demo.touchpoints)
        feedback = records_write(kind=FEEDBACK, items=demo.feedback)
        spend_result = records_write(kind=MARKETING_SPEND, items=spend)
    return DemoSeedResult(
        seed=seed,
        buyers=len(buyers),
        referred=sum(1 for buyer in buyers if buyer.referrer is not None),
        leads=WriteCounts.of(leads),
        buyer_channels=WriteCounts.of(buyer_channels),
        touchpoints=WriteCounts.of(touchpoints),
        feedback=WriteCounts.of(feedback),
        spend=WriteCounts.of(spend_result),
    )


# --- loading --------------------------------------------------------------------------------------


def _buyers_load() -> list[Buyer]:
    """Customers with at least one order (any status), sorted by id, with their order times: two queries."""
    orders: dict[int, list[datetime]] = defaultdict(list)
    for customer_id, placed_at in Order.objects.order_by("customer_id", "placed_at", "id").values_list(
        "customer_id", "placed_at"
    ):
        orders[customer_id].append(placed_at)
    return [
        Buyer(id=pk, external_id=ext, orders=orders[pk], stored_channel_id=channel_id, stored_referrer_id=ref_id)
        for pk, ext, channel_id, ref_id in Customer.objects.order_by("id").values_list(
            "id", "external_id", "acquisition_channel_id", "referred_by_id"
        )
        if pk in orders
    ]


# --- writing --------------------------------------------------------------------------------------


# Shares of demo customers who agreed to email marketing (at sign-up or checkout), so that consent-filtered exports
# and destinations have someone to reach.
LEAD_EMAIL_CONSENT = 0.4
BUYER_EMAIL_CONSENT = 0.6


def _email_consent(rng: random.Random, share: float, at: datetime, source: str) -> dict[str, Any]:
    if rng.random() >= share:
        return {}
    return {"email_consent": ConsentState.SUBSCRIBED, "email_consent_at": at, "email_consent_source": source}


def _lead_items(demo: DemoRows, rng: random.Random) -> list[ValidItem]:
    return [
        ValidItem(
            index=index,
            values={
                "external_id": lead.external_id,
                "email": lead.email,
                "name": lead.name,
                "first_seen_at": lead.first_seen_at,
                "acquisition_channel_id": demo.channel_ids[lead.channel],
                **_email_consent(rng, LEAD_EMAIL_CONSENT, lead.first_seen_at, "sign-up"),
            },
        )
        for index, lead in enumerate(demo.leads)
    ]


def _buyer_items(buyers: list[Buyer], channel_ids: dict[str, int], rng: random.Random) -> list[ValidItem]:
    """Acquisition channel and referrer of each buyer, except where the shop recorded different ones."""
    items = []
    for buyer in buyers:
        channel_id = channel_ids[buyer.channel]
        referrer_id = buyer.referrer.id if buyer.referrer else None
        if buyer.stored_channel_id not in (None, channel_id) or buyer.stored_referrer_id not in (None, referrer_id):
            continue
        values = {
            "external_id": buyer.external_id,
            "acquisition_channel_id": channel_id,
            **_email_consent(rng, BUYER_EMAIL_CONSENT, buyer.orders[0], "checkout"),
        }
        item = ValidItem(index=len(items), values=values)
        if buyer.referrer is not None:
            item.extra["referred_by_external_id"] = buyer.referrer.external_id
        items.append(item)
    return items
