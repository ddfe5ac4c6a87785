from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        from campaigns import ingest_kinds  # noqa: F401 - registers marketing_spend
        from campaigns.models import Exposure
        from lifecycle.privacy import PersonalData, personal_data_register

        # Which experiment variants the customer saw: exported, and kept by an erasure (no personal field).
        personal_data_register(
            PersonalData(
                "experiment_exposures",
                Exposure,
                {"experiment": "experiment__key", "variant": "variant__key", "exposed_at": "exposed_at"},
            )
        )
