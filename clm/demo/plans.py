"""Demo channel plans for the `status` and `ecommerce` models, as a music retailer's CRM team would write them.

`demo_plans_seed` only fills cells that have no plan yet: a marketer's edits survive, and a second run writes
nothing. Models that are not installed are skipped (seed_demo installs `ecommerce` first); a stage or channel an
admin removed is skipped too. Every created plan gets an audit history row ("demo plans").
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from simple_history.utils import bulk_create_with_history

from campaigns.models import ChannelPlan
from lifecycle.models import Channel, Stage


@dataclass(frozen=True)
class DemoPlan:
    stage: str
    channel: str
    objective: str
    strategy: str
    content: str
    kpi: str
    kpi_target: Decimal
    owner: str


CRM, PERFORMANCE, SEO, SOCIAL, APP = "CRM team", "Performance marketing", "SEO & content", "Social media", "App team"

DEMO_PLANS: dict[str, list[DemoPlan]] = {
    "status": [
        # Prospects: reach and a first order.
        DemoPlan(
            "prospect",
            "paid_ads",
            "Bring shoppers looking for music we stock to the shop and into a first order",
            "Shopping and search ads on new releases and back-catalogue titles; retarget product viewers and cart "
            "abandoners for 14 days; exclude existing customers.",
            "Ads for new releases and genre bundles; 10 % off the first order for newsletter sign-ups.",
            "Cost per first order (USD)",
            Decimal("25"),
            PERFORMANCE,
        ),
        DemoPlan(
            "prospect",
            "organic_search",
            "Be found for artist, album and genre searches",
            "Optimise artist and album pages (titles, track lists, structured data); publish genre guides monthly.",
            "Artist pages, 'best albums of' guides, staff reviews.",
            "Organic sessions on product pages per month",
            Decimal("20000"),
            SEO,
        ),
        DemoPlan(
            "prospect",
            "organic_social",
            "Build awareness among music fans",
            "Three posts a week: new releases, staff picks, behind the counter; answer every comment within a day.",
            "Staff-pick carousels, short listening clips, release-day countdowns.",
            "Engagement rate (%)",
            Decimal("3"),
            SOCIAL,
        ),
        DemoPlan(
            "prospect",
            "email",
            "Turn newsletter sign-ups into a first order",
            "Three-mail welcome series over ten days, stopped as soon as the first order arrives.",
            "Welcome: 10 % off the first order (valid 14 days); day 4: bestsellers in the genres they browsed; day "
            "10: reminder that the code expires.",
            "Welcome series conversion rate (%)",
            Decimal("8"),
            CRM,
        ),
        # New customers: the second order.
        DemoPlan(
            "new",
            "email",
            "Get the second order within 90 days",
            "Post-purchase series: thank-you and delivery tips, review request after 7 days, personal "
            "recommendations after 21 and 45 days.",
            "Recommendations from the first order; free shipping on the second order.",
            "Second-order rate within 90 days (%)",
            Decimal("25"),
            CRM,
        ),
        DemoPlan(
            "new",
            "app_notifications",
            "Win the app install and push opt-in",
            "Ask for push permission on the order confirmation screen; at most one push a week, only for artists "
            "they bought.",
            "New release from an artist they bought; pre-order reminders.",
            "Push opt-in rate (%)",
            Decimal("40"),
            APP,
        ),
        DemoPlan(
            "new",
            "paid_ads",
            "Remind first-time buyers of titles that go with their first order",
            "Retarget new customers for 30 days with complementary titles; frequency cap three a week.",
            "Dynamic ads with 'fans of X also bought'.",
            "Return on ad spend (ROAS)",
            Decimal("4"),
            PERFORMANCE,
        ),
        # Active customers: retention and advocacy.
        DemoPlan(
            "active",
            "email",
            "Keep active customers buying regularly",
            "Personalised newsletter every two weeks; loyalty points balance in every mail; early access to "
            "limited editions.",
            "New releases from favourite artists, points reminder, members-only pre-orders.",
            "Repeat purchase rate (%)",
            Decimal("30"),
            CRM,
        ),
        DemoPlan(
            "active",
            "app_notifications",
            "Timely nudges for pre-orders and restocks",
            "Push on release day and when a wish-list title is back in stock; quiet hours 21:00-09:00.",
            "Release-day and back-in-stock pushes.",
            "Push open rate (%)",
            Decimal("8"),
            APP,
        ),
        DemoPlan(
            "active",
            "referral",
            "Turn happy regulars into advocates",
            "Invite customers after a 4-5 star review or an NPS answer of 9-10; remind once after 30 days.",
            "Give 10 USD, get 10 USD: the friend gets 10 USD off the first order, the referrer 10 USD credit.",
            "Referral invitations sent per 100 active customers",
            Decimal("5"),
            CRM,
        ),
        # Inactive customers: win back.
        DemoPlan(
            "inactive",
            "email",
            "Win back customers before they lapse for good",
            "Win-back series after 180 days without an order: 'we miss you' with news since their last order, "
            "a voucher two weeks later, a last-chance reminder before it expires.",
            "15 % voucher valid 30 days; what is new from the artists they bought.",
            "Win-back rate within 60 days (%)",
            Decimal("8"),
            CRM,
        ),
        DemoPlan(
            "inactive",
            "paid_ads",
            "Reach lapsed customers who no longer open emails",
            "Custom audience of inactive customers who did not open the win-back emails; cap the cost per "
            "reactivation.",
            "Same 15 % voucher as the win-back email, with their favourite genre.",
            "Cost per reactivated customer (USD)",
            Decimal("15"),
            PERFORMANCE,
        ),
        DemoPlan(
            "inactive",
            "app_notifications",
            "Bring app users back with something new",
            "One push a month about a new release matching their purchases; stop after two unopened pushes.",
            "New release push with the win-back voucher.",
            "Reactivation rate within 30 days (%)",
            Decimal("4"),
            APP,
        ),
        # Former customers: a last offer, then list hygiene.
        DemoPlan(
            "former",
            "email",
            "Reactivate former customers or clean the list",
            "One last offer after a year without an order; suppress those who do not open two mails to protect "
            "deliverability.",
            "20 % off and free shipping, valid 30 days.",
            "Reactivation rate (%)",
            Decimal("3"),
            CRM,
        ),
        DemoPlan(
            "former",
            "paid_ads",
            "Re-engage former high-value customers",
            "Custom audience of former customers in the top spend quintile only; pause when the cost per "
            "reactivation exceeds the target.",
            "Anniversary offer: 20 % off their favourite genre.",
            "Return on ad spend (ROAS)",
            Decimal("3"),
            PERFORMANCE,
        ),
    ],
    "ecommerce": [
        DemoPlan(
            "reach",
            "paid_ads",
            "Reach new music fans efficiently",
            "Prospecting on search and social with lookalikes of repeat customers; retarget visitors for 14 days.",
            "New releases, genre bundles, 10 % welcome offer.",
            "Cost per acquired customer (USD)",
            Decimal("25"),
            PERFORMANCE,
        ),
        DemoPlan(
            "reach",
            "organic_search",
            "Be found for artist, album and genre searches",
            "Product and artist page SEO; monthly genre guides; internal links from guides to products.",
            "Artist pages, genre guides, staff reviews.",
            "Organic sessions on product pages per month",
            Decimal("20000"),
            SEO,
        ),
        DemoPlan(
            "reach",
            "organic_social",
            "Build awareness among music fans",
            "Three posts a week; collaborate with two local artists a month.",
            "Staff picks, listening clips, artist takeovers.",
            "Engagement rate (%)",
            Decimal("3"),
            SOCIAL,
        ),
        DemoPlan(
            "acquire",
            "email",
            "Convert sign-ups and cart abandoners into a first order",
            "Welcome series for sign-ups; cart reminder after 4 and 24 hours.",
            "10 % off the first order; the items left in the cart.",
            "First-order conversion of sign-ups (%)",
            Decimal("8"),
            CRM,
        ),
        DemoPlan(
            "acquire",
            "paid_ads",
            "Bring cart abandoners back to check out",
            "Dynamic retargeting of cart abandoners for 7 days.",
            "The abandoned titles, free shipping over 30 USD.",
            "Return on ad spend (ROAS)",
            Decimal("5"),
            PERFORMANCE,
        ),
        DemoPlan(
            "nurture",
            "email",
            "Get the second order from engaged first-time buyers",
            "Personal recommendations after 21 and 45 days; review request after 7 days.",
            "Recommendations from the first order; free shipping on the second order.",
            "Second-order rate within 90 days (%)",
            Decimal("25"),
            CRM,
        ),
        DemoPlan(
            "nurture",
            "app_notifications",
            "Win the app install and push opt-in",
            "Prompt for push permission after the first order; one push a week at most.",
            "New releases from artists they bought.",
            "Push opt-in rate (%)",
            Decimal("40"),
            APP,
        ),
        DemoPlan(
            "retention",
            "email",
            "Keep repeat customers buying",
            "Personalised newsletter every two weeks; loyalty points in every mail; members-only pre-orders.",
            "New releases from favourite artists, points balance, limited editions.",
            "Repeat purchase rate (%)",
            Decimal("30"),
            CRM,
        ),
        DemoPlan(
            "retention",
            "app_notifications",
            "Timely nudges for pre-orders and restocks",
            "Release-day and back-in-stock pushes for wish-list titles.",
            "Release-day and back-in-stock pushes.",
            "Push open rate (%)",
            Decimal("8"),
            APP,
        ),
        DemoPlan(
            "retention",
            "referral",
            "Turn loyal customers into advocates",
            "Invite after a 4-5 star review or NPS 9-10.",
            "Give 10 USD, get 10 USD.",
            "Customers who refer a friend within a year (%)",
            Decimal("5"),
            CRM,
        ),
        DemoPlan(
            "advocacy",
            "referral",
            "Keep advocates recommending the shop",
            "Double reward for the second and later referrals; thank-you note from the shop after each.",
            "Give 10 USD, get 20 USD from the second referral on; early access to limited editions.",
            "Referred first orders per advocate per year",
            Decimal("1.5"),
            CRM,
        ),
        DemoPlan(
            "advocacy",
            "organic_social",
            "Let advocates speak for the shop",
            "Repost customer unboxings and reviews with permission; monthly 'customer pick' feature.",
            "Customer picks, review highlights.",
            "User-generated posts per month",
            Decimal("20"),
            SOCIAL,
        ),
        DemoPlan(
            "advocacy",
            "email",
            "Collect reviews and keep advocates close",
            "Review request after every order; VIP newsletter with previews.",
            "Review request, VIP previews, referral reminder.",
            "Review rate per order (%)",
            Decimal("12"),
            CRM,
        ),
    ],
}


@dataclass
class DemoPlansResult:
    created: int = 0
    kept: int = 0  # cells that already had a plan (never changed)
    models: list[str] = field(default_factory=list)  # the models planned for


@transaction.atomic
def demo_plans_seed() -> DemoPlansResult:
    """Create the demo plans of the installed demo models where the cell has no plan yet. Four queries and the
    inserts (plans and their history rows, in bulk)."""
    result = DemoPlansResult()
    stages = {
        (stage.model.key, stage.key): stage
        for stage in Stage.objects.filter(model__key__in=DEMO_PLANS).select_related("model")
    }
    channels = {channel.key: channel for channel in Channel.objects.filter(active=True)}
    existing = set(ChannelPlan.objects.filter(stage__model__key__in=DEMO_PLANS).values_list("stage_id", "channel_id"))
    new: list[ChannelPlan] = []
    for model_key, plans in DEMO_PLANS.items():
        if not any(key[0] == model_key for key in stages):
            continue
        result.models.append(model_key)
        for plan in plans:
            stage, channel = stages.get((model_key, plan.stage)), channels.get(plan.channel)
            if stage is None or channel is None:
                continue
            if (stage.pk, channel.pk) in existing:
                result.kept += 1
                continue
            new.append(
                ChannelPlan(
                    stage=stage,
                    channel=channel,
                    objective=plan.objective,
                    strategy=plan.strategy,
                    content=plan.content,
                    kpi=plan.kpi,
                    kpi_target=plan.kpi_target,
                    owner=plan.owner,
                )
            )
    if new:
        bulk_create_with_history(new, ChannelPlan, default_change_reason="demo plans")
    result.created = len(new)
    return result
