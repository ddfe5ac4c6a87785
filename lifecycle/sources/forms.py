"""The source form: its credential fields are the platform's, shown empty (a stored secret is never sent back)."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from lifecycle.sources.models import Platform, Source
from lifecycle.sources.platforms import PLATFORMS

# As each platform's admin names them, so that the admin finds the field to copy from.
CREDENTIAL_LABELS = {
    "access_token": _("Admin API access token"),
    "consumer_key": _("Consumer key"),
    "consumer_secret": _("Consumer secret"),
    "client_id": _("Client ID"),
    "client_secret": _("Client secret"),
}
SHOPWARE_LABELS = {"client_id": _("Access key ID"), "client_secret": _("Secret access key")}


class SourceForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    shop_url = forms.URLField(
        label=_("Shop address"), assume_scheme="https", help_text=_("e.g. https://example.myshopify.com")
    )
    currency = forms.CharField(label=_("Currency"), max_length=3, help_text=_("ISO 4217, e.g. EUR"))
    webhook_secret = forms.CharField(
        label=_("Webhook secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("The secret the shop signs its webhooks with"),
    )
    id_prefix = forms.CharField(
        label=_("Id prefix"),
        max_length=20,
        required=False,
        help_text=_("Only when several shops share CLM: put before this shop's ids, e.g. de-"),
    )
    completed_statuses = forms.CharField(
        label=_("Completed order statuses"),
        help_text=_("The platform's statuses that count as a purchase, separated by commas"),
    )
    channel_rules = forms.CharField(
        label=_("Channel rules"),
        widget=forms.Textarea(attrs={"rows": 10, "class": "code"}),
        help_text=_(
            "One per line, first match wins: field match value -> channel, e.g. utm_medium equals cpc -> paid_ads. "
            "Fields: utm_source, utm_medium, utm_campaign, referrer_host, landing_site; matches: equals, contains, "
            "empty."
        ),
    )

    def __init__(self, *args: Any, platform: str, source: Source | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adapter = PLATFORMS[platform]
        self.credential_names = adapter.credential_fields
        either = len(adapter.credential_sets) > 1
        for name in self.credential_names:
            stored = source is not None and bool((source.credentials or {}).get(name))
            # The service checks that one credential set is complete (a platform may offer several).
            self.fields[name] = forms.CharField(
                label=(SHOPWARE_LABELS if platform == Platform.SHOPWARE else CREDENTIAL_LABELS).get(name, name),
                required=False,
                widget=forms.PasswordInput(render_value=False),
                help_text=_("Stored encrypted; leave empty to keep the stored value")
                if stored
                else (_("Give either the client id and secret, or the access token") if either else ""),
            )
        self.order_fields(["name", "shop_url", "currency", *self.credential_names])
        if source is not None and source.webhook_secret:
            self.fields["webhook_secret"].help_text = _("Stored encrypted; leave empty to keep the stored value")

    def credentials(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in self.credential_names if self.cleaned_data.get(name)}

    def completed_status_list(self) -> list[str]:
        return [status.strip() for status in self.cleaned_data["completed_statuses"].split(",") if status.strip()]
