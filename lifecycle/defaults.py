"""What every installation starts with, ensured after each migrate (and after a test database flush).

Existing rows are never changed, so admins' edits survive upgrades.
"""

from lifecycle.models import Channel, LifecycleModel
from lifecycle.templates import template_install

CORE_CHANNELS = [
    ("paid_ads", "Paid ads", "Bezahlte Anzeigen", "Display, social and shopping ads bought per impression or click"),
    ("organic_social", "Organic social", "Organische soziale Medien", "Unpaid posts and community on social networks"),
    ("organic_search", "Organic search", "Organische Suche", "Unpaid search engine results"),
    ("email", "Email", "E-Mail", "Newsletters, lifecycle and transactional email"),
    ("app_notifications", "App notifications", "App-Benachrichtigungen", "Push notifications of the shop's app"),
    ("referral", "Referral", "Empfehlung", "Customers recommending the shop to friends"),
    ("direct", "Direct", "Direkt", "Typed-in address, bookmarks, no known source"),
]


def defaults_ensure(*, using: str = "default", **kwargs) -> None:
    """post_migrate hook: the core channels, and the `status` model as default when there is no model yet."""
    for key, name_en, name_de, description in CORE_CHANNELS:
        Channel.objects.using(using).get_or_create(
            key=key, defaults={"name_en": name_en, "name_de": name_de, "description": description}
        )
    if not LifecycleModel.objects.using(using).exists():
        template_install(key="status", make_default=True)
