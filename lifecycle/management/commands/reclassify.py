import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from clm.base.days import day_end
from lifecycle.models import LifecycleModel, RunKind
from lifecycle.rules import RuleError
from lifecycle.selectors import stage_counts
from lifecycle.services import model_reclassify


class Command(BaseCommand):
    help = (
        "Reclassify every customer of a model (default: the default model) and print the customers per stage. "
        "--as-of classifies as of the end of a past day (e.g. for an imported history)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", help="model key (default: the default model)")
        parser.add_argument("--as-of", help="YYYY-MM-DD: classify as of the end of that day (UTC)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the result as JSON")

    def handle(self, *args, model: str | None, as_of: str | None, as_json: bool, **options) -> None:
        lifecycle_model = _model(model)
        moment = _end_of_day(as_of) if as_of else None
        try:
            run = model_reclassify(model=lifecycle_model, kind=RunKind.FULL, as_of=moment)
        except RuleError as exc:
            raise CommandError(f"model {lifecycle_model.key} cannot classify: {exc}") from exc
        counts = stage_counts(model=lifecycle_model)
        if as_json:
            result = {
                "model": lifecycle_model.key,
                "as_of": run.as_of.date().isoformat(),
                "counts": counts,
                "transitions": run.transitions,
            }
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(
            f"{lifecycle_model.key} as of {run.as_of:%Y-%m-%d %H:%M} UTC: {run.customers_evaluated} customers "
            f"evaluated, {run.transitions} transitions."
        )
        for key, count in counts.items():
            self.stdout.write(f"  {key:<16} {count:>9}")


def _model(key: str | None) -> LifecycleModel:
    models = LifecycleModel.objects.all()
    found = models.filter(key=key).first() if key else models.filter(is_default=True).first()
    if found is None:
        known = ", ".join(models.values_list("key", flat=True)) or "none"
        raise CommandError(f"Unknown model {key!r}; known: {known}." if key else "There is no default model.")
    return found


def _end_of_day(value: str) -> datetime:
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()  # noqa: DTZ007 - a date, made aware below
    except ValueError:
        raise CommandError(f"--as-of {value!r} is not a date in the form YYYY-MM-DD.") from None
    return day_end(day)
