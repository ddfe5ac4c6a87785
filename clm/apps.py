from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ClmConfig(AppConfig):
    name = "clm"
    verbose_name = "CLM"

    def ready(self) -> None:
        from clm.roles import roles_sync
        from clm.schedule import periodic_tasks_ensure

        post_migrate.connect(roles_sync, sender=self)
        post_migrate.connect(periodic_tasks_ensure, sender=self)
