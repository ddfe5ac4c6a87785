from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate


class ClmConfig(AppConfig):
    name = "clm"
    verbose_name = "CLM"

    def ready(self) -> None:
        from clm.middleware import session_clock_start
        from clm.roles import roles_sync
        from clm.schedule import periodic_tasks_ensure

        user_logged_in.connect(session_clock_start, dispatch_uid="clm.session_clock_start")

        post_migrate.connect(roles_sync, sender=self)
        post_migrate.connect(periodic_tasks_ensure, sender=self)
