"""Read the metrics' stored tables: the pipeline series, the latest runs, the CLV fit, the targets."""

from datetime import date, timedelta
from typing import Any

from django.db.models import Max, QuerySet

from lifecycle.models import LifecycleModel, Stage
from metrics.models import ClvFit, CustomerValue, MetricsJob, MetricsRun, MetricTarget, PipelineSnapshot


def pipeline_series(*, model: LifecycleModel, start: date, end: date) -> dict[str, Any]:
    """Customers per stage at the end of every day in [start, end], from the stored series: two queries.

    The series stores only the days on which a count changed; a day without a row has the counts of the
    latest stored day before it (none before the first transition: zeros).
    """
    stages = list(Stage.objects.filter(model=model).order_by("position", "pk").values("pk", "key"))
    since = PipelineSnapshot.objects.filter(model=model, day__lte=start).aggregate(day=Max("day"))["day"]
    rows = PipelineSnapshot.objects.filter(model=model, day__gte=since or start, day__lte=end).values_list(
        "day", "stage_id", "count"
    )
    changes: dict[date, dict[int, int]] = {}
    for day, stage_id, count in rows:
        changes.setdefault(day, {})[stage_id] = count
    current = {stage["pk"]: 0 for stage in stages}
    days = []
    day = min([start, *changes])
    while day <= end:
        if day in changes:
            current = {stage_id: changes[day].get(stage_id, 0) for stage_id in current}
        if day >= start:
            days.append({"day": day, "counts": {stage["key"]: current[stage["pk"]] for stage in stages}})
        day += timedelta(days=1)
    computed_at = PipelineSnapshot.objects.filter(model=model).aggregate(at=Max("computed_at"))["at"]
    return {"model": model.key, "stages": [stage["key"] for stage in stages], "computed_at": computed_at, "days": days}


def metrics_runs_latest() -> list[MetricsRun]:
    """The latest run of each metrics job (for "state of the last runs")."""
    runs = []
    for job in MetricsJob:
        run = MetricsRun.objects.filter(job=job).select_related("model").order_by("-started_at", "-pk").first()
        if run is not None:
            runs.append(run)
    return runs


def clv_fit_latest() -> ClvFit | None:
    return ClvFit.objects.order_by("-fitted_at", "-pk").first()


def customer_value_get(*, customer_id: int) -> CustomerValue | None:
    return CustomerValue.objects.select_related("fit").filter(customer_id=customer_id).first()


def metric_target_list() -> QuerySet[MetricTarget]:
    return MetricTarget.objects.order_by("metric")
