"""The metrics jobs: the daily pipeline series, every default snapshot one by one, RFM breakpoints, the CLV fit and
its accuracy check (metrics.services, metrics.rfm, metrics.value)."""

from datetime import date, timedelta

from bench.measure import Row, timed


def metrics_rows(*, model, day: date, runs: int, calibration_end: date | None = None) -> list[Row]:
    """Every metrics job as of the end of `day`; `model` is the model whose pipeline series is rebuilt (the other
    active models' snapshots are measured too, as the snapshot job computes them)."""
    from clm.base.days import day_end
    from lifecycle.models import Customer, StageTransition
    from metrics.filters import MetricFilters
    from metrics.rfm import rfm_breakpoints_store
    from metrics.services import default_snapshot_requests, metric_snapshot_store, pipeline_snapshots_compute
    from metrics.value import clv_accuracy, clv_fit

    as_of = day_end(day)
    data = (
        f"{Customer.objects.count():,} customers, {StageTransition.objects.filter(model=model).count():,} transitions"
    )
    rows = [
        Row(
            f"pipeline.{model.key}",
            f"Daily pipeline series of `{model.key}`, rebuilt from the whole log",
            data,
            timed(lambda: pipeline_snapshots_compute(model=model, until=day), runs=runs),
            "s",
        )
    ]
    filters = MetricFilters(as_of=as_of)
    for request in default_snapshot_requests(as_of=as_of):
        params = "".join(f", {name} {value}" for name, value in request.params.items())
        owner = f" of `{request.model.key}`" if request.model else ""
        rows.append(
            Row(
                f"snapshot.{request.kind}.{request.model.key if request.model else 'all'}{params}",
                f"Metric snapshot `{request.kind}`{owner} as of {day}{params}",
                data if request.model in (None, model) else f"{request.model.key}'s log",
                timed(
                    lambda request=request: metric_snapshot_store(
                        kind=request.kind, model=request.model, filters=filters, params=request.params
                    ),
                    runs=runs,
                ),
                "s",
            )
        )
    buyers = Customer.objects.filter(orders__isnull=False).distinct().count()
    rows.append(
        Row(
            "rfm",
            f"RFM breakpoints as of {day}",
            f"{buyers:,} buyers",
            timed(lambda: rfm_breakpoints_store(as_of=as_of), runs=runs),
            "s",
        )
    )
    rows.append(
        Row(
            "clv",
            "CLV fit (BG/NBD + Gamma-Gamma) on every buyer, summary query and stored predictions included",
            f"{buyers:,} buyers",
            timed(lambda: clv_fit(as_of=as_of), runs=runs),
            "s",
        )
    )
    calibration_end = calibration_end or day - timedelta(days=365)
    rows.append(
        Row(
            "clv.accuracy",
            f"CLV accuracy, calibration to {calibration_end}, holdout to {day}",
            f"{buyers:,} buyers",
            timed(lambda: clv_accuracy(calibration_end=day_end(calibration_end), holdout_end=as_of), runs=runs),
            "s",
        )
    )
    return rows


def snapshot_job_row(rows: list[Row]) -> Row:
    """The hourly snapshot job is the sum of its snapshots (metric_snapshots_compute stores them one by one)."""
    parts = [row for row in rows if row.key.startswith("snapshot.")]
    runs = min(len(row.values) for row in parts)
    return Row(
        "snapshot.job",
        "Metric snapshot job (every default snapshot; the sum of the rows above)",
        f"{len(parts)} snapshots",
        [sum(sorted(row.values)[i] for row in parts) for i in range(runs)],
        "s",
    )
