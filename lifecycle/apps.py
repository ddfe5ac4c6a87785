from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = "Lifecycle"

    def ready(self) -> None:
        from lifecycle import ingest_kinds  # noqa: F401 - registers customers, orders, touchpoints, feedback
