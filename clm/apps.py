from django.apps import AppConfig, apps
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate


class SiteConfig(AppConfig):
    """The wiring: settings, URLs, the Celery app, middleware, the home page and the demo (it may import any app)."""

    name = "clm"
    label = "site"  # "clm" is the shared base's label (clm.base), under which its tables were created
    verbose_name = "CLM"

    def ready(self) -> None:
        from clm.middleware import session_clock_start
        from clm.schedule import periodic_tasks_ensure

        user_logged_in.connect(session_clock_start, dispatch_uid="clm.session_clock_start")
        # post_migrate is sent for apps with models only: the base's stands for the installation as a whole.
        post_migrate.connect(periodic_tasks_ensure, sender=apps.get_app_config("clm"))
