"""What each shop platform provides, registered once per platform module (shopify, woocommerce, shopware).

The rest of the sources code (webhook endpoint, history import, syncs, the source pages) only talks to a
`PlatformAdapter`, so a new platform is one module that registers one.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from lifecycle.sources.models import Source
from lifecycle.sources.records import DEFAULT_CHANNEL_RULES, ShopBatch


class CredentialsRejected(Exception):
    """The platform refused the source's credentials (401/403): retrying cannot help until an admin fixes them."""


class PlatformUnavailable(Exception):
    """The platform kept failing (5xx, timeouts, rate limits past the retry budget): try again later."""


class WebhookRefused(Exception):
    """A webhook that is signed but cannot be taken: an unknown topic, a payload of the wrong shape."""


@dataclass(frozen=True)
class WebhookDelivery:
    delivery_id: str  # the platform's id of this delivery: the same on every retry of it
    topic: str


@dataclass(frozen=True)
class Page:
    """One page of a history import or a sync, and where the next one starts (None: this was the last)."""

    batch: ShopBatch
    checkpoint: dict[str, Any] | None
    total: int | None = None  # the number of records the whole import covers, where the platform says


class PlatformClient(Protocol):
    def connection_check(self) -> None:
        """Raise CredentialsRejected or PlatformUnavailable unless the shop answers with these credentials."""

    def history_page(self, checkpoint: dict[str, Any]) -> Page:
        """The next page of the shop's whole history, from a checkpoint ({} to start)."""

    def changes_page(self, since: datetime, checkpoint: dict[str, Any]) -> Page:
        """The next page of customers and orders changed since `since`."""


@dataclass(frozen=True)
class PlatformAdapter:
    key: str
    # The names an admin can enter, kept encrypted in Source.credentials, as the sets a connection needs one of
    # complete (Shopify: an admin app's access token, or a Dev Dashboard app's client id and secret).
    credential_sets: tuple[tuple[str, ...], ...]
    default_completed_statuses: tuple[str, ...]
    webhook_topics: tuple[str, ...]
    signature_valid: Callable[[bytes, Mapping[str, str], str], bool]  # body, headers, secret
    webhook_delivery: Callable[[Mapping[str, str], Any], WebhookDelivery]  # raises WebhookRefused
    webhook_batch: Callable[[str, Any], ShopBatch]  # topic, payload; raises WebhookRefused
    client: Callable[[Source], PlatformClient]
    # A request the platform sends to test the address when a webhook is saved (WooCommerce's unsigned ping): it
    # carries no data and is answered 200 before any signature check, so the shop accepts the address.
    ping: Callable[[bytes, Mapping[str, str]], bool] | None = None  # body, headers
    # Used instead of webhook_batch when set: gets the source too, for a payload that only names its record (Shopify's
    # refunds/create names the order) and is read from the shop. May raise PlatformUnavailable: the delivery stays
    # pending and the sweep tries it again.
    webhook_source_batch: Callable[[Source, str, Any], ShopBatch] | None = None  # source, topic, payload
    # The channel rules a new source starts with (a platform that records no referrer leaves out the rules on it).
    default_channel_rules: tuple[dict[str, str], ...] = tuple(DEFAULT_CHANNEL_RULES)

    @property
    def credential_fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for names in self.credential_sets for name in names))


PLATFORMS: dict[str, PlatformAdapter] = {}


def platform_register(adapter: PlatformAdapter) -> PlatformAdapter:
    PLATFORMS[adapter.key] = adapter
    return adapter
