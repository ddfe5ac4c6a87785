"""The daily pipeline series (SPEC §4): customers per stage at the end of each UTC day, from the transition log.

The log is a chain per customer (each transition's `from_stage` is the stage the previous one led to), so the
number of customers in a stage at a moment is the transitions into it minus the transitions out of it up to that
moment. Two grouped queries count entries and exits per stage and day (everything before the first day folded
into one opening balance); running sums in Python turn them into the series. That agrees with
lifecycle.selectors.stage_counts_as_of, which reads each customer's last transition instead.
"""

from collections import defaultdict
from datetime import UTC, date, timedelta

from django.db.models import Case, Count, DateField, F, Value, When
from django.db.models.functions import TruncDate

from clm.base.days import day_end, day_start
from lifecycle.models import LifecycleModel, Stage, StageTransition


def pipeline_daily_counts(*, model: LifecycleModel, start: date, end: date) -> list[tuple[date, int, int]]:
    """(day, stage id, customers in the stage at the end of that UTC day) for every day in [start, end] and every
    stage of the model (zero included), by day then funnel order. Three queries, whatever the number of days.

    An empty list when start is after end.
    """
    if start > end:
        return []
    stage_ids = list(Stage.objects.filter(model=model).order_by("position", "pk").values_list("pk", flat=True))
    first_moment = day_start(start)
    last_moment = day_end(end)
    opening = start - timedelta(days=1)
    # Transitions before the first day all count on the day before it: the opening balance.
    day = Case(
        When(at__lt=first_moment, then=Value(opening)),
        default=TruncDate("at", tzinfo=UTC),
        output_field=DateField(),
    )
    log = StageTransition.objects.filter(model=model, at__lte=last_moment).order_by()
    change: dict[date, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for column, sign in (("to_stage", 1), ("from_stage", -1)):
        rows = (
            log.filter(**{f"{column}__isnull": False})
            .annotate(day=day, stage=F(column))
            .values("day", "stage")
            .annotate(n=Count("pk"))
            .values_list("day", "stage", "n")
        )
        for moment, stage_id, n in rows:
            change[moment][stage_id] += sign * n

    counts = dict.fromkeys(stage_ids, 0)
    for stage_id, delta in change.get(opening, {}).items():
        counts[stage_id] = counts.get(stage_id, 0) + delta
    series = []
    current = start
    while current <= end:
        for stage_id, delta in change.get(current, {}).items():
            counts[stage_id] = counts.get(stage_id, 0) + delta
        series.extend((current, stage_id, counts[stage_id]) for stage_id in stage_ids)
        current += timedelta(days=1)
    return series
