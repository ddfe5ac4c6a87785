import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from lifecycle.models import LifecycleModel
from metrics.services import metric_snapshots_compute, pipeline_snapshots_compute

JOBS = ["pipeline", "snapshots"]


class Command(BaseCommand):
    help = (
        "Run the metrics jobs now instead of waiting for beat: the daily pipeline series of every active model "
        "and the default metric snapshots (as of a day, default today). The CLV fit has its own command, fit_clv."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", help="YYYY-MM-DD: the snapshots' day (default today, UTC)")
        parser.add_argument("--only", choices=JOBS, help="run one job only")

    def handle(self, *args, as_of: str | None, only: str | None, **options) -> None:
        try:
            day = date.fromisoformat(as_of) if as_of else None
        except ValueError:
            raise CommandError(f"--as-of {as_of!r} is not a YYYY-MM-DD date.") from None
        if only in (None, "pipeline"):
            for model in LifecycleModel.objects.filter(active=True):
                started = time.perf_counter()
                run = pipeline_snapshots_compute(model=model)
                self.stdout.write(
                    f"pipeline {model.key}: {run.rows_written} rows in {time.perf_counter() - started:.2f} s"
                )
        if only in (None, "snapshots"):
            started = time.perf_counter()
            try:
                run = metric_snapshots_compute(as_of=day)
            except RuntimeError as exc:
                raise CommandError(f"some snapshots failed: {exc}") from exc
            self.stdout.write(
                f"snapshots as of {run.as_of:%Y-%m-%d}: {run.rows_written} in {time.perf_counter() - started:.2f} s"
            )
