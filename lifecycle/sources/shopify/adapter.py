"""Shopify as a CLM source: what an admin enters, what counts as a purchase, and the module for each part.

Setting it up in the shop: docs/SOURCES.md, section Shopify.
"""

from lifecycle.sources.models import Platform
from lifecycle.sources.platforms import PlatformAdapter, platform_register
from lifecycle.sources.shopify.client import shopify_client
from lifecycle.sources.shopify.webhooks import (
    TOPICS,
    signature_valid,
    webhook_batch,
    webhook_delivery,
    webhook_source_batch,
)

SHOPIFY = platform_register(
    PlatformAdapter(
        key=Platform.SHOPIFY,
        # A Dev Dashboard app's client id and secret (the client credentials grant, since 2026 the way to connect
        # one's own store), or the access token of an app made in the shop's admin before 2026.
        credential_sets=(("client_id", "client_secret"), ("access_token",)),
        # Order.displayFinancialStatus (REST financial_status, upper-cased): paid in full or in part, refunded
        # or not. PENDING, AUTHORIZED (payment not captured yet), EXPIRED and VOIDED are no purchase (yet); a shop
        # that captures payments by hand adds AUTHORIZED on the source page.
        default_completed_statuses=("PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED", "REFUNDED"),
        webhook_topics=TOPICS,
        signature_valid=signature_valid,
        webhook_delivery=webhook_delivery,
        webhook_batch=webhook_batch,
        webhook_source_batch=webhook_source_batch,
        client=shopify_client,
    )
)
