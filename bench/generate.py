"""Synthetic shop data shaped like CDNOW, at any number of customers, deterministic by seed.

The shape is fitted from the CDNOW file the importer reads (lifecycle.cdnow): the share of one-time buyers, the
number of orders of repeat buyers, the gaps between a customer's orders (days, the empirical distribution) and the
order amounts (lognormal, split into a per-customer level and the spread around it). Around the orders, touchpoints,
leads, referrals and NPS feedback follow the rules of the demo data (clm.demo): acquisition touches along the
channel's funnel before the first order, emails, app pushes, reviews and support contacts after orders, 3 % of
buyers referred by an earlier buyer, 15 % answering the NPS question once.

Two knobs scale CDNOW's 18 months to a shop's years: repeat buyers' order counts are stretched so that the whole
population averages `orders_per_customer` (about 10, so 1M customers have ~10M orders), and the after-order touch
rate is set so that customers average `touchpoints_per_customer`. The stretch is calibrated on a sample before
generating (deterministic too).

Customers arrive over `years` ending at `end` with a linearly growing rate; their ids follow their arrival. The
generator works in chunks of CHUNK customers with numpy only, so memory stays bounded at any scale; every chunk has
its own random stream derived from (seed, chunk number), so a chunk's rows never depend on the others.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import numpy as np

CHUNK = 50_000  # customers per chunk; part of the definition of the data (changing it changes the rows)
MAX_REPEAT = 400  # orders after the first, at most (caps the heavy tail)
DAY = 86_400

# Channel and touchpoint kind indexes; the loader maps them to ids and values.
CHANNELS = ("paid_ads", "organic_social", "organic_search", "email", "app_notifications", "referral", "direct")
CH = {key: index for index, key in enumerate(CHANNELS)}
KINDS = (
    "ad_impression",
    "ad_click",
    "site_visit",
    "product_view",
    "cart_add",
    "email_open",
    "email_click",
    "app_push_open",
    "social_engagement",
    "review",
    "support_contact",
    "referral_sent",
)
K = {key: index for index, key in enumerate(KINDS)}
ORDER_STATUSES = ("completed", "cancelled", "refunded")
ORDER_STATUS_WEIGHTS = (0.97, 0.02, 0.01)
# Channels of orders after the first (the first comes through the acquisition channel).
REPEAT_ORDER_CHANNELS = {"direct": 40, "email": 30, "app_notifications": 10, "organic_search": 10, "paid_ads": 10}
# Touches after an order (Poisson count per order, rate calibrated): kind, channel, weight.
AFTER_ORDER_TOUCHES = (
    ("email_open", "email", 45),
    ("email_click", "email", 12),
    ("app_push_open", "app_notifications", 14),
    ("site_visit", "direct", 12),
    ("product_view", "direct", 8),
    ("cart_add", "direct", 3),
    ("review", "email", 4),
    ("support_contact", "direct", 2),
)
AFTER_ORDER_DAYS = 56
SUPPORT_TOPICS = ("delivery", "return", "payment", "product question", "account")
BUYER_EMAIL_SHARE, BUYER_NAME_SHARE = 0.7, 0.5


@dataclass(frozen=True)
class CdnowShape:
    """What is fitted from CDNOW (one order per customer and day, as the importer stores them)."""

    customers: int
    orders: int
    one_time_share: float
    repeat_orders: np.ndarray  # orders of each repeat buyer (>= 2)
    gap_days: np.ndarray  # days between consecutive orders of a customer
    log_amount_mean: float
    log_amount_sd_between: float  # spread of customers' mean log amount
    log_amount_sd_within: float  # spread of a customer's orders around their mean

    def describe(self) -> str:
        return (
            f"CDNOW: {self.customers:,} customers, {self.orders:,} orders; one-time buyers "
            f"{self.one_time_share:.1%}; repeat buyers' orders median {np.median(self.repeat_orders):.0f}, mean "
            f"{self.repeat_orders.mean():.1f}; gaps median {np.median(self.gap_days):.0f} days, mean "
            f"{self.gap_days.mean():.0f}; amount lognormal(μ {self.log_amount_mean:.2f}, σ between "
            f"{self.log_amount_sd_between:.2f}, within {self.log_amount_sd_within:.2f})"
        )


@cache
def cdnow_shape(path: Path | None = None) -> CdnowShape:
    """Fit the shape from the CDNOW master file (default: the one `import_cdnow` reads)."""
    from lifecycle.cdnow import cdnow_default_path, cdnow_detect_format, cdnow_parse

    path = path or cdnow_default_path()
    lines = path.read_text(encoding="ascii").splitlines()
    totals = cdnow_parse(lines, cdnow_detect_format(lines))
    keys = sorted(totals)
    customer = np.array([int(c) for c, _ in keys])
    day = np.array([np.datetime64(f"{d[:4]}-{d[4:6]}-{d[6:]}") for _, d in keys]).astype("int64")
    amount = np.array([float(totals[k]) for k in keys])
    first = np.r_[True, customer[1:] != customer[:-1]]  # keys are sorted by customer, then day
    starts = np.flatnonzero(first)
    counts = np.diff(np.r_[starts, len(customer)])
    gaps = np.diff(day)[~first[1:]]
    positive = amount > 0
    logs = np.log(amount[positive])
    owner = np.cumsum(first)[positive] - 1
    means = np.bincount(owner, logs, minlength=len(starts)) / np.maximum(np.bincount(owner, minlength=len(starts)), 1)
    within = logs - means[owner]
    return CdnowShape(
        customers=len(starts),
        orders=len(customer),
        one_time_share=float(np.mean(counts == 1)),
        repeat_orders=counts[counts > 1],
        gap_days=gaps,
        log_amount_mean=float(logs.mean()),
        log_amount_sd_between=float(math.sqrt(max(logs.var() - within.var(), 0.0))),
        log_amount_sd_within=float(within.std()),
    )


@dataclass(frozen=True)
class Spec:
    customers: int
    seed: int
    end: date  # nothing happens at or after midnight UTC of this day
    years: float = 5.0
    lead_share: float = 0.15
    orders_per_customer: float = 10.0
    touchpoints_per_customer: float = 10.0
    referral_share: float = 0.03  # of buyers
    feedback_share: float = 0.15  # of buyers

    @property
    def end_ts(self) -> int:
        return int(datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC).timestamp())

    @property
    def start_ts(self) -> int:
        return self.end_ts - int(self.years * 365.25 * DAY)


@dataclass
class Table:
    """Rows of one database table as column arrays: ints (negative = NULL for `nullable`), datetime64[s],
    numpy strings, or ints in cents for `cents`."""

    name: str
    columns: dict[str, np.ndarray]
    nullable: frozenset[str] = frozenset()
    cents: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))


@dataclass
class Population:
    """Everything decided per customer for the whole population (a few arrays of N), before the chunks."""

    spec: Spec
    shape: CdnowShape
    arrival: np.ndarray  # epoch seconds: a buyer's first order, a lead's first touch
    lead: np.ndarray  # bool
    channel: np.ndarray  # acquisition channel index
    referrer: np.ndarray  # customer index, -1 for none
    first_touch_lead: np.ndarray  # seconds from a buyer's first touch to their first order
    extra_orders: np.ndarray  # orders after the first, before the history ends
    amount_level: np.ndarray  # the customer's mean log amount
    responds: np.ndarray  # bool: answers the NPS question once
    pace: float
    after_touch_rate: float
    stats: dict = field(default_factory=dict)

    @property
    def first_seen(self) -> np.ndarray:
        return np.where(self.lead, self.arrival, self.arrival - self.first_touch_lead)


def _weights(mapping: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    keys = np.array([CH[key] for key in mapping])
    weights = np.array(list(mapping.values()), dtype=float)
    return keys, weights / weights.sum()


def _segment_positions(counts: np.ndarray) -> np.ndarray:
    """0, 1, … within each segment of the given lengths (e.g. [2, 3] → [0, 1, 0, 1, 2])."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


def population(spec: Spec, shape: CdnowShape | None = None) -> Population:
    from clm.demo.parameters import BUYER_CHANNEL_WEIGHTS, LEAD_CHANNEL_WEIGHTS

    shape = shape or cdnow_shape()
    n = spec.customers
    rng = np.random.default_rng([spec.seed, 0])
    span = spec.end_ts - spec.start_ts
    # Density growing linearly over the years (a growing shop); sorted, so ids follow arrival.
    arrival = np.sort(spec.start_ts + span * np.sqrt(rng.random(n)))
    # No first order in the last hour (its acquisition touches must fit before the end).
    arrival = np.minimum(arrival, spec.end_ts - 3600).astype(np.int64)
    lead = rng.random(n) < spec.lead_share
    buyer_keys, buyer_p = _weights(BUYER_CHANNEL_WEIGHTS)
    lead_keys, lead_p = _weights(LEAD_CHANNEL_WEIGHTS)
    channel = np.where(lead, rng.choice(lead_keys, n, p=lead_p), rng.choice(buyer_keys, n, p=buyer_p))

    # Referred buyers, referred by an earlier buyer.
    buyers = np.flatnonzero(~lead)
    referred = buyers[rng.random(len(buyers)) < spec.referral_share]
    earlier = np.searchsorted(buyers, referred)  # buyers before each referred customer
    referred, earlier = referred[earlier > 0], earlier[earlier > 0]
    referrer = np.full(n, -1, dtype=np.int64)
    referrer[referred] = buyers[(rng.random(len(referred)) * earlier).astype(np.int64)]
    channel[referred] = CH["referral"]

    # One-time buyers vs repeat buyers as in CDNOW; repeat buyers' counts drawn from CDNOW's, stretched.
    repeat = ~lead & (rng.random(n) >= shape.one_time_share)
    cdnow_extra = shape.repeat_orders[rng.integers(len(shape.repeat_orders), size=n)] - 1
    noise = rng.gamma(2.0, 0.5, n)  # mean 1: customers with the same CDNOW count differ
    pace = _calibrate_pace(spec, shape, arrival, lead, repeat, cdnow_extra, noise)
    extra = np.where(repeat, _extra_orders(cdnow_extra, noise, pace), 0)

    level = shape.log_amount_mean + shape.log_amount_sd_between * rng.standard_normal(n)
    responds = ~lead & (rng.random(n) < spec.feedback_share)
    first_touch_lead = rng.integers(900, 14 * DAY, n)
    pop = Population(
        spec=spec,
        shape=shape,
        arrival=arrival,
        lead=lead,
        channel=channel,
        referrer=referrer,
        first_touch_lead=first_touch_lead,
        extra_orders=extra,
        amount_level=level,
        responds=responds,
        pace=pace,
        after_touch_rate=0.0,
    )
    pop.after_touch_rate = _after_touch_rate(pop)
    return pop


def _calibrate_pace(
    spec: Spec,
    shape: CdnowShape,
    arrival: np.ndarray,
    lead: np.ndarray,
    repeat: np.ndarray,
    cdnow_extra: np.ndarray,
    noise: np.ndarray,
) -> float:
    """The pace that gives `orders_per_customer` once the orders after the end of the history are cut off:
    bisection on a sample with fixed random gaps (so the count grows with the pace)."""
    rng = np.random.default_rng([spec.seed, 1])
    sample = rng.choice(len(arrival), size=min(len(arrival), 20_000), replace=False)
    gaps = np.cumsum(shape.gap_days[rng.integers(len(shape.gap_days), size=(len(sample), MAX_REPEAT))], axis=1)
    room = (spec.end_ts - arrival[sample]) / DAY

    def orders_per_customer(pace: float) -> float:
        fits = (gaps / math.sqrt(pace) < room[:, None]).sum(axis=1)  # orders after the first that fit
        extra = _extra_orders(cdnow_extra[sample], noise[sample], pace)
        orders = np.where(lead[sample], 0, 1 + np.where(repeat[sample], np.minimum(extra, fits), 0))
        return float(orders.mean())

    low, high = 1.0, 100.0
    if orders_per_customer(high) < spec.orders_per_customer:
        return high
    if orders_per_customer(low) >= spec.orders_per_customer:
        return low
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (middle, high) if orders_per_customer(middle) < spec.orders_per_customer else (low, middle)
    return (low + high) / 2


def _extra_orders(cdnow_extra: np.ndarray, noise: np.ndarray, pace: float) -> np.ndarray:
    """Orders after the first: CDNOW's count times the pace, at least one, at most MAX_REPEAT."""
    return np.minimum(1 + np.floor(cdnow_extra * pace * noise), MAX_REPEAT).astype(np.int64)


def _acquisition_count_weights() -> tuple[np.ndarray, np.ndarray]:
    from clm.demo.parameters import BUYER_TOUCH_WEIGHTS, LEAD_TOUCH_WEIGHTS

    buyer = np.array(BUYER_TOUCH_WEIGHTS, dtype=float)
    lead = np.array(LEAD_TOUCH_WEIGHTS, dtype=float)
    return buyer / buyer.sum(), lead / lead.sum()


def _after_touch_rate(pop: Population) -> float:
    """Touches per order that make the population average `touchpoints_per_customer`."""
    buyer_p, lead_p = _acquisition_count_weights()
    buyers = int((~pop.lead).sum())
    acquisition = buyers * float(np.dot(np.arange(1, len(buyer_p) + 1), buyer_p))
    acquisition += int(pop.lead.sum()) * float(np.dot(np.arange(1, len(lead_p) + 1), lead_p))
    referrals = int((pop.referrer >= 0).sum())
    orders = pop.spec.orders_per_customer * pop.spec.customers
    # About 4 % of after-order touches fall after the end of the history and are dropped.
    wanted = pop.spec.touchpoints_per_customer * pop.spec.customers - acquisition - referrals
    return max(wanted, 0.0) / max(orders * 0.96, 1.0)


@cache
def _funnel_table() -> np.ndarray:
    """kind index of step `s` of a `c`-touch acquisition path on channel `ch`: table[ch, c, s] (c up to 5).

    As in clm.demo.generate: the channel's funnel, cut to c steps; longer paths view more products before the cart."""
    from clm.demo.parameters import FUNNELS

    table = np.zeros((len(CHANNELS), 6, 5), dtype=np.int64)
    for channel, steps in FUNNELS.items():
        for count in range(1, 6):
            kinds = [str(kind) for kind in steps[:count]]
            while len(kinds) < count:
                kinds.insert(-1, "product_view")
            table[CH[channel], count, :count] = [K[kind] for kind in kinds]
    return table


def _season_codes(times: np.ndarray, channels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Campaign codes (`<season><yy>-<paid|email|app>`) on a share of paid, email and app events inside the
    demo data's seasons; empty elsewhere."""
    from clm.demo.parameters import CAMPAIGN_CODE_RATE, CAMPAIGN_SUFFIX, SEASONS

    stamp = times.astype("datetime64[s]")
    year = stamp.astype("datetime64[Y]").astype(np.int64) + 1970
    month_day = (
        (stamp.astype("datetime64[M]").astype(np.int64) % 12 + 1) * 100
        + (stamp.astype("datetime64[D]") - stamp.astype("datetime64[M]")).astype(np.int64)
        + 1
    )
    codes = np.full(len(times), "", dtype=np.dtypes.StringDType())
    draw = rng.random(len(times))
    for season in SEASONS:
        if season.lapsed_only:
            continue
        inside = (month_day >= season.start[0] * 100 + season.start[1]) & (
            month_day <= season.end[0] * 100 + season.end[1]
        )
        for channel in season.channels:
            hit = inside & (channels == CH[channel]) & (draw < CAMPAIGN_CODE_RATE[channel])
            if hit.any():
                prefix = np.char.mod(f"{season.name}%02d-{CAMPAIGN_SUFFIX[channel]}", year[hit] % 100)
                codes[hit] = prefix.astype(np.dtypes.StringDType())
    return codes


def _text(values: np.ndarray) -> np.ndarray:
    return values.astype(np.dtypes.StringDType())


def _prefixed(prefix: str, ids: np.ndarray) -> np.ndarray:
    return np.strings.add(prefix, _text(ids))


@dataclass
class Counters:
    """Next ids, carried from chunk to chunk."""

    order: int = 1
    touchpoint: int = 1
    feedback: int = 1

    def take(self, name: str, count: int) -> np.ndarray:
        first = getattr(self, name)
        setattr(self, name, first + count)
        return np.arange(first, first + count, dtype=np.int64)


def chunks(pop: Population, created_at: datetime) -> Iterator[list[Table]]:
    """The rows, CHUNK customers at a time: customers, orders, touchpoints, feedback (in that order)."""
    counters = Counters()
    for number, first in enumerate(range(0, pop.spec.customers, CHUNK)):
        yield chunk_tables(pop, number, first, min(first + CHUNK, pop.spec.customers), counters, created_at)


def chunk_tables(
    pop: Population, number: int, first: int, last: int, counters: Counters, created_at: datetime
) -> list[Table]:
    rng = np.random.default_rng([pop.spec.seed, 2, number])
    index = np.arange(first, last)
    orders, order_owner = _orders(pop, index, rng, counters, created_at)
    customers = _customers(pop, index, rng, created_at)
    touchpoints = _touchpoints(pop, index, orders, order_owner, rng, counters, created_at)
    feedback = _feedback(pop, index, orders, order_owner, rng, counters, created_at)
    return [customers, orders, touchpoints, feedback]


def _customers(pop: Population, index: np.ndarray, rng: np.random.Generator, created_at: datetime) -> Table:
    from clm.demo.parameters import FIRST_NAMES, LAST_NAMES, LEAD_EMAIL_RATE, LEAD_NAME_RATE

    n = len(index)
    ids = index + 1
    lead = pop.lead[index]
    has_email = rng.random(n) < np.where(lead, LEAD_EMAIL_RATE, BUYER_EMAIL_SHARE)
    has_name = has_email & (rng.random(n) < np.where(lead, LEAD_NAME_RATE, BUYER_NAME_SHARE))
    email = np.where(has_email, np.strings.add(_prefixed("customer", ids), "@example.com"), "")
    names = np.array([f"{a} {b}" for a in FIRST_NAMES for b in LAST_NAMES], dtype=np.dtypes.StringDType())
    name = np.where(has_name, names[rng.integers(len(names), size=n)], "")
    referrer = pop.referrer[index]
    stamp = np.datetime64(created_at.replace(tzinfo=None), "s")
    return Table(
        "lifecycle_customer",
        {
            "id": ids,
            "external_id": _prefixed("g-", ids),
            "email": email.astype(np.dtypes.StringDType()),
            "name": name.astype(np.dtypes.StringDType()),
            "first_seen_at": pop.first_seen[index].astype("datetime64[s]"),
            "acquisition_channel_id": pop.channel[index],
            "referred_by_id": np.where(referrer >= 0, referrer + 1, -1),
            "created_at": np.full(n, stamp),
            "updated_at": np.full(n, stamp),
            # No marketing consent recorded: the state a customer gets when the shop sends none.
            **{
                column: np.full(n, value, dtype=np.dtypes.StringDType())
                for channel in ("email", "sms")
                for column, value in ((f"{channel}_consent", "not_subscribed"), (f"{channel}_consent_source", ""))
            },
        },
        nullable=frozenset({"referred_by_id"}),
    )


def _orders(
    pop: Population, index: np.ndarray, rng: np.random.Generator, counters: Counters, created_at: datetime
) -> tuple[Table, np.ndarray]:
    buyers = index[~pop.lead[index]]
    wanted = 1 + pop.extra_orders[buyers]
    owner = np.repeat(buyers, wanted)
    position = _segment_positions(wanted)
    gaps = pop.shape.gap_days[rng.integers(len(pop.shape.gap_days), size=len(owner))] / math.sqrt(pop.pace)
    gaps[position == 0] = 0
    segment_start = np.repeat(np.cumsum(wanted) - wanted, wanted)
    days = np.cumsum(gaps) - np.cumsum(gaps)[segment_start]  # days since the customer's first order
    jitter = np.where(position == 0, 0, rng.integers(0, 3600, len(owner)))
    placed = pop.arrival[owner] + (days * DAY).astype(np.int64) + jitter
    keep = placed < pop.spec.end_ts
    owner, position, placed = owner[keep], position[keep], placed[keep]
    n = len(owner)
    ids = counters.take("order", n)
    amount = np.exp(pop.amount_level[owner] + pop.shape.log_amount_sd_within * rng.standard_normal(n))
    cents = np.clip(np.round(amount * 100), 1, 10**9).astype(np.int64)
    status = np.array(ORDER_STATUSES, dtype=np.dtypes.StringDType())[
        rng.choice(len(ORDER_STATUSES), n, p=ORDER_STATUS_WEIGHTS)
    ]
    repeat_keys, repeat_p = _weights(REPEAT_ORDER_CHANNELS)
    channel = np.where(position == 0, pop.channel[owner], rng.choice(repeat_keys, n, p=repeat_p))
    stamp = np.datetime64(created_at.replace(tzinfo=None), "s")
    table = Table(
        "lifecycle_order",
        {
            "id": ids,
            "external_id": _prefixed("g-o-", ids),
            "customer_id": owner + 1,
            "placed_at": placed.astype("datetime64[s]"),
            "amount": cents,
            "status": status,
            "channel_id": channel,
            "campaign_code": _season_codes(placed, channel, rng),
            "created_at": np.full(n, stamp),
            "updated_at": np.full(n, stamp),
        },
        cents=frozenset({"amount"}),
    )
    return table, owner


def _touchpoints(
    pop: Population,
    index: np.ndarray,
    orders: Table,
    order_owner: np.ndarray,
    rng: np.random.Generator,
    counters: Counters,
    created_at: datetime,
) -> Table:
    from clm.demo.parameters import STARS_WEIGHTS

    buyer_p, lead_p = _acquisition_count_weights()
    lead = pop.lead[index]
    count = np.where(
        lead, rng.choice(np.arange(1, 6), len(index), p=lead_p), rng.choice(np.arange(1, 5), len(index), p=buyer_p)
    )
    owner = np.repeat(index, count)
    step = _segment_positions(count)
    owner_lead = pop.lead[owner]
    # A buyer's touches lie between their first touch and their first order; a lead's within 3 weeks of the first.
    first_seen = pop.first_seen[owner]
    window = np.where(owner_lead, 21 * DAY, pop.first_touch_lead[owner])
    offsets = np.where(step == 0, 0, rng.integers(60, np.maximum(window, 61)))
    order = np.lexsort((offsets, owner))  # ascending per customer, so the funnel steps come in order
    at = first_seen + offsets[order]
    table = _funnel_table()
    own_channel = pop.channel[owner]
    kind = table[own_channel, np.repeat(count, count), step]
    touch_channel = np.where(
        np.isin(kind, [K["ad_impression"], K["ad_click"]]),
        CH["paid_ads"],
        np.where(
            kind == K["social_engagement"],
            CH["organic_social"],
            np.where((step == 0) | (rng.random(len(owner)) < 0.65), own_channel, CH["direct"]),
        ),
    )
    parts = [(owner, at, touch_channel, kind, np.full(len(owner), -1))]

    # Referrals: the referrer sent an invitation up to three days before the referred customer's first touch
    # (never before the referrer was first seen).
    referred = index[pop.referrer[index] >= 0]
    referrer = pop.referrer[referred]
    sent = np.maximum(pop.first_seen[referred] - rng.integers(3600, 3 * DAY, len(referred)), pop.first_seen[referrer])
    parts.append(
        (referrer, sent, np.full(len(referred), CH["referral"]), np.full(len(referred), K["referral_sent"]), referred)
    )

    # After orders: a Poisson number of touches per order in the following weeks.
    per_order = rng.poisson(pop.after_touch_rate, len(order_owner))
    after_owner = np.repeat(order_owner, per_order)
    after_at = np.repeat(orders.columns["placed_at"].astype(np.int64), per_order) + rng.integers(
        3600, AFTER_ORDER_DAYS * DAY, len(after_owner)
    )
    weights = np.array([w for _, _, w in AFTER_ORDER_TOUCHES], dtype=float)
    choice = rng.choice(len(AFTER_ORDER_TOUCHES), len(after_owner), p=weights / weights.sum())
    after_kind = np.array([K[k] for k, _, _ in AFTER_ORDER_TOUCHES])[choice]
    after_channel = np.array([CH[c] for _, c, _ in AFTER_ORDER_TOUCHES])[choice]
    parts.append((after_owner, after_at, after_channel, after_kind, np.full(len(after_owner), -1)))

    owner, at, channel, kind, invited = (np.concatenate(column) for column in zip(*parts, strict=True))
    keep = at < pop.spec.end_ts
    owner, at, channel, kind, invited = owner[keep], at[keep], channel[keep], kind[keep], invited[keep]
    n = len(owner)
    ids = counters.take("touchpoint", n)
    stars = np.array(list(STARS_WEIGHTS), dtype=np.int64)
    star_p = np.array(list(STARS_WEIGHTS.values()), dtype=float)
    value = np.where(kind == K["review"], rng.choice(stars, n, p=star_p / star_p.sum()) * 100, -1)
    properties = np.full(n, "{}", dtype=np.dtypes.StringDType())
    is_referral = invited >= 0
    properties[is_referral] = np.strings.add(
        np.strings.add('{"referred_customer": "', _prefixed("g-", invited[is_referral] + 1)), '"}'
    )
    is_support = kind == K["support_contact"]
    topics = np.array(SUPPORT_TOPICS, dtype=np.dtypes.StringDType())
    properties[is_support] = np.strings.add(
        np.strings.add('{"topic": "', topics[rng.integers(len(topics), size=int(is_support.sum()))]), '"}'
    )
    stamp = np.datetime64(created_at.replace(tzinfo=None), "s")
    return Table(
        "lifecycle_touchpoint",
        {
            "id": ids,
            "external_id": _prefixed("g-t-", ids),
            "customer_id": owner + 1,
            "occurred_at": at.astype("datetime64[s]"),
            "channel_id": channel,
            "kind": np.array(KINDS, dtype=np.dtypes.StringDType())[kind],
            "campaign_code": _season_codes(at, channel, rng),
            "value": value,
            "properties": properties,
            "created_at": np.full(n, stamp),
        },
        nullable=frozenset({"value"}),
        cents=frozenset({"value"}),
    )


def _feedback(
    pop: Population,
    index: np.ndarray,
    orders: Table,
    order_owner: np.ndarray,
    rng: np.random.Generator,
    counters: Counters,
    created_at: datetime,
) -> Table:
    """One NPS answer a few days after one of the respondent's orders."""
    from clm.demo.parameters import NPS_COMMENT_RATE, NPS_COMMENTS, NPS_WEIGHTS

    respondents = index[pop.responds[index]]
    counts = np.bincount(order_owner - index[0], minlength=len(index))[respondents - index[0]]
    respondents, counts = respondents[counts > 0], counts[counts > 0]
    starts = np.searchsorted(order_owner, respondents)  # orders are grouped by customer, in customer order
    picked = starts + (rng.random(len(respondents)) * counts).astype(np.int64)
    submitted = orders.columns["placed_at"][picked].astype(np.int64) + rng.integers(2 * DAY, 10 * DAY, len(picked))
    keep = submitted < pop.spec.end_ts
    respondents, submitted = respondents[keep], submitted[keep]
    n = len(respondents)
    p = np.array(NPS_WEIGHTS, dtype=float)
    score = rng.choice(11, n, p=p / p.sum())
    group = np.where(score >= 9, 0, np.where(score >= 7, 1, 2))
    comments = [np.array(NPS_COMMENTS[g], dtype=np.dtypes.StringDType()) for g in ("promoter", "passive", "detractor")]
    comment = np.full(n, "", dtype=np.dtypes.StringDType())
    with_comment = rng.random(n) < NPS_COMMENT_RATE
    for g, options in enumerate(comments):
        hit = with_comment & (group == g)
        comment[hit] = options[rng.integers(len(options), size=int(hit.sum()))]
    ids = counters.take("feedback", n)
    stamp = np.datetime64(created_at.replace(tzinfo=None), "s")
    return Table(
        "lifecycle_feedback",
        {
            "id": ids,
            "external_id": _prefixed("g-f-", ids),
            "customer_id": respondents + 1,
            "score": score,
            "comment": comment,
            "submitted_at": submitted.astype("datetime64[s]"),
            "created_at": np.full(n, stamp),
        },
    )
