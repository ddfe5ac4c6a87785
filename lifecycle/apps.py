from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = _("Lifecycle")

    def ready(self) -> None:
        from lifecycle import ingest_kinds  # noqa: F401 - registers customers, orders, touchpoints, feedback
        from lifecycle.defaults import defaults_ensure

        post_migrate.connect(defaults_ensure, sender=self)
