from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from metrics import features  # noqa: F401 - registers the p_alive and predicted_clv_365d rule features
        from metrics.rfm import rfm_features_register
        from metrics.targets import metric_targets_ensure

        rfm_features_register()
        post_migrate.connect(metric_targets_ensure, sender=self)
