"""Shopware 6 as a CLM source: what an admin enters, what counts as a purchase, and the module for each part
(client: the Admin API; mapping: its JSON as shop records; webhooks: app webhooks; registration: the app's setup).

Setting it up in the shop: docs/SOURCES.md, section Shopware 6.
"""

from lifecycle.sources.models import Platform
from lifecycle.sources.platforms import PlatformAdapter, platform_register
from lifecycle.sources.records import DEFAULT_CHANNEL_RULES
from lifecycle.sources.shopware.client import shopware_client
from lifecycle.sources.shopware.mapping import DEFAULT_COMPLETED_STATUSES
from lifecycle.sources.shopware.webhooks import (
    TOPICS,
    signature_valid,
    webhook_batch,
    webhook_delivery,
    webhook_source_batch,
)

SHOPWARE = platform_register(
    PlatformAdapter(
        key=Platform.SHOPWARE,
        # An integration's "Access key ID" and "Secret access key" (Settings → System → Integrations).
        credential_sets=(("client_id", "client_secret"),),
        default_completed_statuses=DEFAULT_COMPLETED_STATUSES,
        webhook_topics=TOPICS,
        signature_valid=signature_valid,
        webhook_delivery=webhook_delivery,
        webhook_batch=webhook_batch,
        webhook_source_batch=webhook_source_batch,
        client=shopware_client,
        # Shopware records no referrer: the rules on it would call every order without a code `direct`.
        default_channel_rules=tuple(rule for rule in DEFAULT_CHANNEL_RULES if rule["field"] != "referrer_host"),
    )
)
