from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BaseConfig(AppConfig):
    name = "clm.base"
    label = "clm"  # the tables and migrations keep the label they were created under
    verbose_name = "CLM"

    def ready(self) -> None:
        from clm.base.roles import roles_sync

        post_migrate.connect(roles_sync, sender=self)
