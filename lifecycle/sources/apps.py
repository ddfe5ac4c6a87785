from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SourcesConfig(AppConfig):
    """Connected shops (Shopify, WooCommerce, Shopware 6): their history, live webhooks and syncs, written through
    lifecycle's ingestion core. A part of `lifecycle` with tables of its own."""

    name = "lifecycle.sources"
    label = "sources"
    verbose_name = _("Shop sources")

    def ready(self) -> None:
        from lifecycle.sources import shopware, woocommerce  # noqa: F401 - register the platforms
        from lifecycle.sources.shopify import adapter  # noqa: F401 - Shopify is a package (client, mapping, webhooks)
