import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from lifecycle.backfill import BackfillError, BackfillStep, backfill_date_parse, backfill_moments, model_backfill
from lifecycle.models import ClassificationRun, LifecycleModel
from lifecycle.rules import RuleError

ADVERB = {BackfillStep.DAY: "daily", BackfillStep.WEEK: "weekly"}


class Command(BaseCommand):
    help = (
        "Reconstruct a model's stage history from the order/touchpoint history: classify every customer as of the "
        "end (UTC) of each day or week from --start to --end, replacing earlier backfilled history of that range. "
        "See docs/LIFECYCLE_BACKFILL.md."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", help="model key (default: the default model)")
        parser.add_argument("--start", required=True, help="YYYY-MM-DD: first day of the range")
        parser.add_argument("--end", required=True, help="YYYY-MM-DD: last day of the range (before today)")
        parser.add_argument(
            "--step",
            choices=[s.value for s in BackfillStep],
            default=BackfillStep.WEEK.value,
            help="classify at the end of every day or of every week counted from --start (default: week)",
        )

    def handle(self, *args, model: str | None, start: str, end: str, step: str, **options) -> None:
        lifecycle_model = _model(model)
        try:
            first, last = backfill_date_parse(start, "--start"), backfill_date_parse(end, "--end")
            backfill_step = BackfillStep(step)
            total = len(backfill_moments(start=first, end=last, step=backfill_step))
        except BackfillError as exc:
            raise CommandError(str(exc)) from exc
        adverb = ADVERB[backfill_step]

        started = time.monotonic()
        with tqdm(
            total=total, unit="step", desc=f"{lifecycle_model.key} {adverb}", disable=options["verbosity"] == 0
        ) as bar:

            def progress(done: int, total: int, run: ClassificationRun) -> None:
                bar.set_postfix_str(f"as of {run.as_of:%Y-%m-%d}, {run.transitions} transitions", refresh=False)
                bar.update(1)

            try:
                result = model_backfill(
                    model=lifecycle_model, start=first, end=last, step=backfill_step, on_progress=progress
                )
            except (BackfillError, RuleError) as exc:
                raise CommandError(f"{lifecycle_model.key} cannot be backfilled: {exc}") from exc
        seconds = time.monotonic() - started

        self.stdout.write(
            f"{result.model_key} backfilled {adverb} from {result.start} to {result.end}: {result.steps} steps, "
            f"{result.transitions} transitions written, {result.replaced} earlier backfill transitions replaced, "
            f"in {seconds:.1f} s."
        )
        if result.current_as_of is not None:
            self.stdout.write(
                f"Current stages are as of {result.end} (end of day UTC); the next periodic run or "
                "`manage.py reclassify` moves them on to now."
            )
        else:
            self.stdout.write(
                f"The log holds {result.later_transitions} transitions after {result.end}; current stages were "
                "restored to each customer's latest transition."
            )
        if result.kept_in_range:
            self.stderr.write(
                f"Warning: {result.kept_in_range} transitions of other causes (live runs, reclassify --as-of) lie "
                "inside the range and were kept; they need not agree with the reconstructed path."
            )
        if result.later_mismatches:
            self.stderr.write(
                f"Warning: for {result.later_mismatches} customers the history after {result.end} does not continue "
                "from their backfilled stage; backfill through the end of the history to make it consistent."
            )


def _model(key: str | None) -> LifecycleModel:
    models = LifecycleModel.objects.all()
    found = models.filter(key=key).first() if key else models.filter(is_default=True).first()
    if found is None:
        known = ", ".join(models.values_list("key", flat=True)) or "none"
        raise CommandError(f"Unknown model {key!r}; known: {known}." if key else "There is no default model.")
    return found
