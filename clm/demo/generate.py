"""Generating the demo rows around the orders, before clm.demo.seed writes them: acquisition touches and
referrals, touches after orders, win-back emails, NPS feedback, leads and marketing spend.

The generators draw from the random stream they are given and the buyers' orders; they never query the database.
"""

import hashlib
import random
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from campaigns.models import SpendPeriod
from clm.base.days import day_start
from clm.demo.parameters import (
    ACQUISITION_DAYS,
    APP_USER_SHARE,
    BUYER_CHANNEL_WEIGHTS,
    BUYER_TOUCH_WEIGHTS,
    CAMPAIGN_CODE_RATE,
    CAMPAIGN_SUFFIX,
    EMAIL_CLICK_RATE,
    EMAIL_COST_PER_SUBSCRIBER,
    EMAIL_DECAY,
    EMAIL_FIRST_WEEK,
    EMAIL_SUBSCRIBER_SHARE,
    EMAIL_WEEKS,
    FEEDBACK_SHARE,
    FIRST_NAMES,
    FUNNELS,
    LAST_NAMES,
    LEAD_CHANNEL_WEIGHTS,
    LEAD_EMAIL_RATE,
    LEAD_NAME_RATE,
    LEAD_SHARE,
    LEAD_TOUCH_WEIGHTS,
    MAX_LEADS,
    MONTHLY_COST,
    NPS_COMMENT_RATE,
    NPS_COMMENTS,
    NPS_WEIGHTS,
    PAID_COST_PER_BUYER,
    PAID_COST_PER_LEAD,
    PUSH_DECAY,
    PUSH_FIRST_WEEK,
    PUSH_WEEKS,
    REFERRAL_SHARE,
    REVIEW_RATE,
    SEASONS,
    STARS_WEIGHTS,
    SUPPORT_RATE,
    SUPPORT_TOPICS,
    WINBACK_AFTER_DAYS,
    WINBACK_CLICK_RATE,
    WINBACK_OPEN_RATE,
    Season,
)
from lifecycle.ingest import ValidItem
from lifecycle.models import TouchpointKind as Kind


@dataclass(frozen=True)
class Campaign:
    season: Season
    prefix: str  # e.g. xmas97
    first_day: date
    last_day: date

    def code(self, channel: str) -> str:
        return f"{self.prefix}-{CAMPAIGN_SUFFIX[channel]}"

    def covers(self, at: datetime) -> bool:
        return self.first_day <= at.date() <= self.last_day


@dataclass
class Buyer:
    id: int
    external_id: str
    orders: list[datetime]  # placed_at, ascending
    stored_channel_id: int | None
    stored_referrer_id: int | None
    channel: str = ""
    first_touch: datetime | None = None
    referrer: "Buyer | None" = None
    subscribed: bool = False
    app_user: bool = False


@dataclass
class Lead:
    external_id: str
    channel: str
    first_seen_at: datetime
    email: str
    name: str


@dataclass
class DemoRows:
    """The generated rows, before writing."""

    channel_ids: dict[str, int]
    end: datetime  # nothing happens at or after this moment
    touchpoints: list[ValidItem] = field(default_factory=list)
    feedback: list[ValidItem] = field(default_factory=list)
    leads: list[Lead] = field(default_factory=list)
    _counts: Counter = field(default_factory=Counter)

    def touch(
        self,
        customer: str,
        at: datetime,
        channel: str,
        kind: Kind,
        *,
        code: str = "",
        value: Decimal | None = None,
        properties: dict[str, Any] | None = None,
    ) -> None:
        if at >= self.end:
            return
        number = self._counts[customer]
        self._counts[customer] += 1
        values = {
            "external_id": f"demo-tp-{_id_part(customer)}-{number}",
            "occurred_at": at,
            "channel_id": self.channel_ids[channel],
            "kind": kind.value,
            "campaign_code": code,
            "value": value,
            "properties": properties or {},
        }
        self.touchpoints.append(ValidItem(index=len(self.touchpoints), values=values, customer_external_id=customer))


def history_campaigns(*, first_day: date, last_day: date) -> list[Campaign]:
    """Each season of each year of the history, cut to the history."""
    campaigns = []
    for year in range(first_day.year, last_day.year + 1):
        for season in SEASONS:
            begin = max(date(year, *season.start), first_day)
            finish = min(date(year, *season.end), last_day)
            if begin <= finish:
                campaigns.append(Campaign(season, f"{season.name}{year % 100:02d}", begin, finish))
    return campaigns


# --- generating -----------------------------------------------------------------------------------


def acquisition_generate(demo: DemoRows, buyers: list[Buyer], campaigns: list[Campaign], rng: random.Random) -> None:
    """Acquisition channel and touches before each first order; referrals to earlier buyers."""
    by_first_order = sorted(buyers, key=lambda b: (b.orders[0], b.id))
    first_orders = [buyer.orders[0] for buyer in by_first_order]
    # Referred customers are drawn up front (an exact share) among those late enough to have an earlier buyer
    # whose first order precedes the referral, which is sent at most ACQUISITION_DAYS + 3 days before it.
    lead_time = timedelta(days=ACQUISITION_DAYS + 4)
    eligible = [buyer for buyer in buyers if buyer.orders[0] > first_orders[0] + lead_time]
    referred_count = min(len(eligible), max(1, round(REFERRAL_SHARE * len(buyers))))
    referred = {buyer.id for buyer in rng.sample(eligible, referred_count)}
    channels, weights = zip(*BUYER_CHANNEL_WEIGHTS.items(), strict=True)
    for buyer in buyers:
        buyer.channel = "referral" if buyer.id in referred else rng.choices(channels, weights)[0]
        buyer.subscribed = rng.random() < EMAIL_SUBSCRIBER_SHARE
        buyer.app_user = rng.random() < APP_USER_SHARE
        count = rng.choices(range(1, len(BUYER_TOUCH_WEIGHTS) + 1), BUYER_TOUCH_WEIGHTS)[0]
        window = ACQUISITION_DAYS * 86400
        times = sorted(buyer.orders[0] - timedelta(seconds=rng.randrange(900, window)) for _ in range(count))
        _funnel_touches(demo, buyer.external_id, buyer.channel, times, campaigns, rng)
        buyer.first_touch = times[0]
        if buyer.channel == "referral":
            sent_at = times[0] - timedelta(seconds=rng.randrange(3600, 3 * 86400))
            earlier = bisect_left(first_orders, sent_at)  # buyers whose first order is before sent_at
            buyer.referrer = by_first_order[rng.randrange(earlier)]
            demo.touch(
                buyer.referrer.external_id,
                sent_at,
                "referral",
                Kind.REFERRAL_SENT,
                properties={"referred_customer": buyer.external_id},
            )


def _funnel_touches(
    demo: DemoRows,
    customer: str,
    channel: str,
    times: Sequence[datetime],
    campaigns: list[Campaign],
    rng: random.Random,
) -> None:
    """The first len(times) steps of the channel's funnel; later site steps come back directly now and then."""
    funnel = FUNNELS[channel]
    kinds = list(funnel[: len(times)])
    while len(kinds) < len(times):
        kinds.insert(-1, Kind.PRODUCT_VIEW)
    for step, (at, kind) in enumerate(zip(times, kinds, strict=True)):
        if kind in (Kind.AD_IMPRESSION, Kind.AD_CLICK):
            touch_channel = "paid_ads"
        elif kind == Kind.SOCIAL_ENGAGEMENT:
            touch_channel = "organic_social"
        else:
            touch_channel = channel if step == 0 or rng.random() < 0.65 else "direct"
        demo.touch(customer, at, touch_channel, kind, code=_code(campaigns, touch_channel, at, rng))


def _code(campaigns: list[Campaign], channel: str, at: datetime, rng: random.Random) -> str:
    """The running campaign's code on a share of the channel's touches; none outside campaigns."""
    rate = CAMPAIGN_CODE_RATE.get(channel)
    if rate is None:
        return ""
    for campaign in campaigns:
        if not campaign.season.lapsed_only and channel in campaign.season.channels and campaign.covers(at):
            return campaign.code(channel) if rng.random() < rate else ""
    return ""


def after_orders_generate(demo: DemoRows, buyers: list[Buyer], campaigns: list[Campaign], rng: random.Random) -> None:
    """Emails and app pushes in the weeks after each order, reviews, support contacts, win-back emails."""
    day = 86400
    for buyer in buyers:
        customer = buyer.external_id
        for placed_at in buyer.orders:
            if buyer.subscribed:
                for week in range(EMAIL_WEEKS):
                    if rng.random() < EMAIL_FIRST_WEEK * EMAIL_DECAY**week:
                        at = placed_at + timedelta(seconds=rng.randrange((7 * week + 1) * day, (7 * week + 8) * day))
                        code = _code(campaigns, "email", at, rng)
                        demo.touch(customer, at, "email", Kind.EMAIL_OPEN, code=code)
                        if rng.random() < EMAIL_CLICK_RATE:
                            click_at = at + timedelta(seconds=rng.randrange(10, 1800))
                            demo.touch(customer, click_at, "email", Kind.EMAIL_CLICK, code=code)
            if buyer.app_user:
                for week in range(PUSH_WEEKS):
                    if rng.random() < PUSH_FIRST_WEEK * PUSH_DECAY**week:
                        at = placed_at + timedelta(seconds=rng.randrange((7 * week + 1) * day, (7 * week + 8) * day))
                        code = _code(campaigns, "app_notifications", at, rng)
                        demo.touch(customer, at, "app_notifications", Kind.APP_PUSH_OPEN, code=code)
            if rng.random() < REVIEW_RATE:
                at = placed_at + timedelta(seconds=rng.randrange(3 * day, 21 * day))
                stars = rng.choices(list(STARS_WEIGHTS), list(STARS_WEIGHTS.values()))[0]
                channel = "email" if rng.random() < 0.6 else "direct"  # most reviews answer a review request email
                demo.touch(customer, at, channel, Kind.REVIEW, value=Decimal(stars))
            if rng.random() < SUPPORT_RATE:
                at = placed_at + timedelta(seconds=rng.randrange(day, 20 * day))
                topic = rng.choice(SUPPORT_TOPICS)
                demo.touch(customer, at, "direct", Kind.SUPPORT_CONTACT, properties={"topic": topic})
    for campaign in campaigns:
        if campaign.season.lapsed_only:
            _winback_generate(demo, buyers, campaign, rng)


def _winback_generate(demo: DemoRows, buyers: list[Buyer], campaign: Campaign, rng: random.Random) -> None:
    starts = day_start(campaign.first_day)
    length = ((campaign.last_day - campaign.first_day).days + 1) * 86400
    for buyer in buyers:
        before = bisect_left(buyer.orders, starts)
        if not buyer.subscribed or before == 0 or starts - buyer.orders[before - 1] < timedelta(WINBACK_AFTER_DAYS):
            continue
        if rng.random() < WINBACK_OPEN_RATE:
            at = starts + timedelta(seconds=rng.randrange(length))
            demo.touch(buyer.external_id, at, "email", Kind.EMAIL_OPEN, code=campaign.code("email"))
            if rng.random() < WINBACK_CLICK_RATE:
                click_at = at + timedelta(seconds=rng.randrange(10, 1800))
                demo.touch(buyer.external_id, click_at, "email", Kind.EMAIL_CLICK, code=campaign.code("email"))


def feedback_generate(demo: DemoRows, buyers: list[Buyer], rng: random.Random) -> None:
    """One NPS answer a few days after one of their orders, from an exact share of the buyers."""
    respondents = rng.sample(buyers, max(1, round(FEEDBACK_SHARE * len(buyers))))
    for buyer in sorted(respondents, key=lambda b: b.id):
        submitted_at = rng.choice(buyer.orders) + timedelta(seconds=rng.randrange(2 * 86400, 10 * 86400))
        score = rng.choices(range(11), NPS_WEIGHTS)[0]
        group = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
        comment = rng.choice(NPS_COMMENTS[group]) if rng.random() < NPS_COMMENT_RATE else ""
        if submitted_at >= demo.end:
            continue
        values = {
            "external_id": f"demo-fb-{_id_part(buyer.external_id)}",
            "score": score,
            "comment": comment,
            "submitted_at": submitted_at,
        }
        demo.feedback.append(ValidItem(index=len(demo.feedback), values=values, customer_external_id=buyer.external_id))


def leads_generate(
    demo: DemoRows, buyers: list[Buyer], start: datetime, campaigns: list[Campaign], rng: random.Random
) -> None:
    """Visitors who never ordered, first seen during the history, with 1-5 touches in their first three weeks."""
    count = min(MAX_LEADS, max(1, round(LEAD_SHARE * len(buyers))))
    span = int((demo.end - start).total_seconds())
    channels, weights = zip(*LEAD_CHANNEL_WEIGHTS.items(), strict=True)
    for number in range(1, count + 1):
        external_id = f"demo-lead-{number}"
        channel = rng.choices(channels, weights)[0]
        first_seen_at = start + timedelta(seconds=rng.randrange(span))
        touches = rng.choices(range(1, len(LEAD_TOUCH_WEIGHTS) + 1), LEAD_TOUCH_WEIGHTS)[0]
        later = sorted(first_seen_at + timedelta(seconds=rng.randrange(600, 21 * 86400)) for _ in range(touches - 1))
        email = f"lead{number}@example.com" if rng.random() < LEAD_EMAIL_RATE else ""
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" if email and rng.random() < LEAD_NAME_RATE else ""
        times = [first_seen_at, *later]
        if email and len(times) >= 3:
            # Signed up for the newsletter and opened one.
            _funnel_touches(demo, external_id, channel, times[:-1], campaigns, rng)
            demo.touch(external_id, times[-1], "email", Kind.EMAIL_OPEN, code=_code(campaigns, "email", times[-1], rng))
        else:
            _funnel_touches(demo, external_id, channel, times, campaigns, rng)
        demo.leads.append(Lead(external_id, channel, first_seen_at, email, name))


def spend_generate(
    demo: DemoRows, buyers: list[Buyer], campaigns: list[Campaign], rng: random.Random
) -> list[ValidItem]:
    """Monthly spend per channel from the first touch's month to the last order's, daily spend of paid campaigns.

    Paid ads cost a fixed amount plus a price per customer they brought that month; email costs grow with the
    list; search (SEO) and social (content) are fixed costs.
    """
    paid_cost: Counter[date] = Counter()  # by the month customers were first reached
    subscribers_new: Counter[date] = Counter()
    for buyer in buyers:
        if buyer.channel == "paid_ads":
            paid_cost[_month(buyer.first_touch or buyer.orders[0])] += PAID_COST_PER_BUYER
        if buyer.subscribed:
            subscribers_new[_month(buyer.orders[0])] += 1
    for lead in demo.leads:
        if lead.channel == "paid_ads":
            paid_cost[_month(lead.first_seen_at)] += PAID_COST_PER_LEAD
        if lead.email:
            subscribers_new[_month(lead.first_seen_at)] += 1
    first_month = _month(min(buyer.first_touch or buyer.orders[0] for buyer in buyers))
    last_month = _month(demo.end - timedelta(microseconds=1))
    items: list[ValidItem] = []

    def add(channel: str, period: SpendPeriod, day: date, amount: float, code: str = "") -> None:
        values = {
            "channel_id": demo.channel_ids[channel],
            "campaign_code": code,
            "period": period.value,
            "date": day,
            "amount": Decimal(f"{amount:.2f}"),
        }
        items.append(ValidItem(index=len(items), values=values))

    subscribers = 0
    month = first_month
    while month <= last_month:
        subscribers += subscribers_new[month]
        for channel, fixed in MONTHLY_COST.items():
            amount = fixed * rng.uniform(0.9, 1.1)
            if channel == "paid_ads":
                amount += paid_cost[month] * rng.uniform(0.9, 1.1)
            elif channel == "email":
                amount += subscribers * EMAIL_COST_PER_SUBSCRIBER
            add(channel, SpendPeriod.MONTH, month, amount)
        month = (month + timedelta(days=32)).replace(day=1)
    for campaign in campaigns:
        if campaign.season.paid_daily_budget:
            day = campaign.first_day
            while day <= campaign.last_day:
                amount = campaign.season.paid_daily_budget * rng.uniform(0.8, 1.2)
                add("paid_ads", SpendPeriod.DAY, day, amount, campaign.code("paid_ads"))
                day += timedelta(days=1)
    return items


def _month(at: datetime | date) -> date:
    return date(at.year, at.month, 1)


def _id_part(external_id: str) -> str:
    """The customer's external id inside a demo row's id, hashed when too long for the 100-character column."""
    return external_id if len(external_id) <= 80 else hashlib.sha256(external_id.encode()).hexdigest()[:32]
