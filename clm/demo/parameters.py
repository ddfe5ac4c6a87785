"""The numbers the demo data is drawn with (clm.demo.seed): shares, weights, funnels, seasons, comments, costs.

bench/ draws its larger populations with the same numbers.
"""

from dataclasses import dataclass

from lifecycle.models import TouchpointKind as Kind

# Shares of customers with orders.
REFERRAL_SHARE = 0.03
FEEDBACK_SHARE = 0.15
EMAIL_SUBSCRIBER_SHARE = 0.85
APP_USER_SHARE = 0.3
# Leads (customers who never ordered): a fifth of the buyers, at most this many.
LEAD_SHARE = 0.2
MAX_LEADS = 5000

# How buyers who were not referred found the shop (relative weights).
BUYER_CHANNEL_WEIGHTS = {"organic_search": 30, "paid_ads": 25, "direct": 15, "organic_social": 12, "email": 8}
LEAD_CHANNEL_WEIGHTS = {"organic_search": 30, "paid_ads": 30, "organic_social": 22, "direct": 18}
# Kinds that can happen before a customer's first order.
ACQUISITION_KINDS = frozenset(
    {Kind.AD_IMPRESSION, Kind.AD_CLICK, Kind.SITE_VISIT, Kind.PRODUCT_VIEW, Kind.CART_ADD, Kind.SOCIAL_ENGAGEMENT}
)
# The path from first contact to the cart, by acquisition channel; a customer walks its first few steps.
FUNNELS: dict[str, tuple[Kind, ...]] = {
    "paid_ads": (Kind.AD_IMPRESSION, Kind.AD_CLICK, Kind.PRODUCT_VIEW, Kind.CART_ADD),
    "organic_social": (Kind.SOCIAL_ENGAGEMENT, Kind.SITE_VISIT, Kind.PRODUCT_VIEW, Kind.CART_ADD),
    "organic_search": (Kind.SITE_VISIT, Kind.PRODUCT_VIEW, Kind.CART_ADD),
    "direct": (Kind.SITE_VISIT, Kind.PRODUCT_VIEW, Kind.CART_ADD),
    "email": (Kind.SITE_VISIT, Kind.PRODUCT_VIEW, Kind.CART_ADD),
    "referral": (Kind.SITE_VISIT, Kind.PRODUCT_VIEW, Kind.CART_ADD),
}
ACQUISITION_DAYS = 14
BUYER_TOUCH_WEIGHTS = (25, 30, 25, 20)  # 1..4 touches before the first order
LEAD_TOUCH_WEIGHTS = (30, 25, 20, 15, 10)  # 1..5 touches in all
# After each order: weekly chance of an email open (subscribers) and an app push open (app users), decaying.
EMAIL_WEEKS, EMAIL_FIRST_WEEK, EMAIL_DECAY, EMAIL_CLICK_RATE = 8, 0.3, 0.7, 0.25
PUSH_WEEKS, PUSH_FIRST_WEEK, PUSH_DECAY = 4, 0.25, 0.6
REVIEW_RATE, SUPPORT_RATE = 0.05, 0.03
WINBACK_AFTER_DAYS, WINBACK_OPEN_RATE, WINBACK_CLICK_RATE = 120, 0.25, 0.3
CAMPAIGN_CODE_RATE = {"paid_ads": 0.85, "email": 0.7, "app_notifications": 0.7}
CAMPAIGN_SUFFIX = {"paid_ads": "paid", "email": "email", "app_notifications": "app"}

STARS_WEIGHTS = {5: 45, 4: 30, 3: 12, 2: 6, 1: 7}
NPS_WEIGHTS = (1, 1, 1, 2, 2, 4, 9, 14, 16, 22, 28)  # score 0..10: ~50% promoters, ~30% passives, ~20% detractors
NPS_COMMENT_RATE = 0.4
NPS_COMMENTS = {
    "promoter": (
        "Great selection and fast delivery.",
        "Found albums I could not get anywhere else.",
        "Easy to order, will buy again.",
        "The recommendations are spot on.",
        "Quick shipping, CDs arrived in perfect condition.",
    ),
    "passive": (
        "Good prices, but delivery took a while.",
        "Fine overall; the search could be better.",
        "Decent selection, nothing special.",
        "OK, though shipping costs are high.",
    ),
    "detractor": (
        "My order arrived late.",
        "A CD was scratched and the return took weeks.",
        "Too expensive compared to the shop in town.",
        "Support was hard to reach.",
        "I received the wrong album.",
    ),
}
SUPPORT_TOPICS = ("delivery", "return", "payment", "product question", "account")
LEAD_EMAIL_RATE, LEAD_NAME_RATE = 0.35, 0.5
FIRST_NAMES = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Robin", "Jamie", "Chris", "Kim", "Lee", "Pat")
LAST_NAMES = ("Example", "Sample", "Demo", "Placeholder", "Testington")

# Spend in dollars: monthly fixed costs, paid ads per new customer they brought, daily campaign budgets.
MONTHLY_COST = {"organic_search": 1800, "organic_social": 1200, "email": 250, "paid_ads": 2500}
EMAIL_COST_PER_SUBSCRIBER = 0.015
PAID_COST_PER_BUYER, PAID_COST_PER_LEAD = 12, 3


@dataclass(frozen=True)
class Season:
    """A recurring campaign; its code is `<name><yy>-<paid|email|app>`, e.g. xmas97-paid."""

    name: str
    start: tuple[int, int]  # (month, day)
    end: tuple[int, int]  # inclusive
    channels: tuple[str, ...]
    paid_daily_budget: int = 0
    lapsed_only: bool = False  # sent to customers who have not ordered for a while, not after orders


SEASONS = (
    Season("winback", (1, 12), (2, 28), ("email",), lapsed_only=True),
    Season("spring", (3, 20), (4, 20), ("paid_ads", "email"), paid_daily_budget=250),
    Season("summer", (6, 15), (7, 15), ("paid_ads", "email"), paid_daily_budget=200),
    Season("xmas", (11, 20), (12, 24), ("paid_ads", "email", "app_notifications"), paid_daily_budget=450),
)
