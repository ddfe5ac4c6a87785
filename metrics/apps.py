from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = _("Metrics")

    def ready(self) -> None:
        from lifecycle.privacy import PersonalData, personal_data_register
        from metrics import features  # noqa: F401 - registers the p_alive and predicted_clv_365d rule features
        from metrics.models import CustomerValue
        from metrics.rfm import rfm_features_register
        from metrics.targets import metric_targets_ensure

        rfm_features_register()
        # The customer's predictions: exported, and kept by an erasure (no personal field in them).
        predictions = ["frequency", "recency_weeks", "age_weeks", "monetary_value", "p_alive", "expected_purchases_90d"]
        predictions += ["expected_purchases_365d", "expected_spend_90d", "expected_spend_365d"]
        paths = {"fitted_at": "fit__fitted_at", **{name: name for name in predictions}}
        personal_data_register(PersonalData("customer_value", CustomerValue, paths))
        post_migrate.connect(metric_targets_ensure, sender=self)
