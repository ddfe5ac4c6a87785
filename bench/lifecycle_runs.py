"""Reclassification at scale: the app's full pass per template against one hand-written SQL statement (the floor)
and a per-customer ORM loop (the naive baseline); one customer after an ingested order; a periodic pass after 1 %
of the customers changed; the stage history the metrics read."""

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from operator import eq, ge, gt, le, lt, ne

from django.db import DatabaseError, connection
from django.utils import timezone

from bench.measure import Row, long_run_seconds, percentile, run_limit_seconds, timed

TEMPLATE_KEYS = ("status", "ecommerce", "loyalty", "basic")
ACTIVE_KEYS = ("status", "ecommerce")  # the demo set-up: `status` (the default) and `ecommerce`
ORM_SAMPLE = 10_000
STAGE_TABLES = ("lifecycle_customerstage", "lifecycle_stagetransition", "lifecycle_changedcustomer")


def models_install() -> dict:
    """Every shipped template installed; only `status` and `ecommerce` active, as after `setup_demo`."""
    from lifecycle.models import LifecycleModel
    from lifecycle.templates import template_install

    models = {key: template_install(key=key)[0] for key in TEMPLATE_KEYS}
    LifecycleModel.objects.filter(key__in=ACTIVE_KEYS).update(active=True)
    LifecycleModel.objects.exclude(key__in=ACTIVE_KEYS).update(active=False)
    for model in models.values():
        model.refresh_from_db()
    return models


def stage_tables_clear() -> None:
    """No current stage, transition or outbox row of any model, and no column statistics: a fresh installation.

    Every "from an empty state" measurement starts here. ANALYZE of an empty table keeps the old column statistics,
    and those that know only other models make the planner expect no row of this model while its pass fills them:
    the situation `added_model_row` measures on its own. (Deleting statistics needs a superuser, as the benchmark's
    default connection is.)"""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(STAGE_TABLES)}")
        cursor.execute("DELETE FROM pg_statistic WHERE starelid = ANY(%s::regclass[])", [list(STAGE_TABLES)])


def model_state_clear(model) -> None:
    """No current stage, transition or outbox row of this model; the others' stay (statistics refreshed)."""
    with connection.cursor() as cursor:
        for table in STAGE_TABLES:
            cursor.execute(f"DELETE FROM {table} WHERE model_id = %s", [model.pk])  # noqa: S608 - our table names
        cursor.execute(f"VACUUM ANALYZE {', '.join(STAGE_TABLES)}")


def state_keep(model) -> None:
    """Keep the model's current stages aside (table bench_state_<key>), for comparing another result with it."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS bench_state_{model.key}")
        cursor.execute(
            f"CREATE TABLE bench_state_{model.key} AS SELECT customer_id, stage_id FROM lifecycle_customerstage "  # noqa: S608
            "WHERE model_id = %s",
            [model.pk],
        )


def stage_tables_analyze() -> None:
    """Statistics for the filled stage tables before a converged run (autovacuum would have them by then)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE lifecycle_customerstage, lifecycle_stagetransition")


def _customers() -> int:
    from lifecycle.models import Customer

    return Customer.objects.count()


# --- the app's full pass --------------------------------------------------------------------------------


@contextmanager
def cancelled_after(seconds: float) -> Iterator[None]:
    """Cancel the statement running on the connection once `seconds` have passed (and every second after, in case
    the run was between two statements), until the block ends."""
    connection.ensure_connection()
    client = connection.connection  # Django's connections are per thread: the watcher needs this one
    stop = threading.Event()

    def watch() -> None:
        if stop.wait(seconds):
            return
        while not stop.is_set():
            client.cancel_safe()
            stop.wait(1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


def capped_runs(model, *, setup: Callable[[], object] | None, runs: int, as_of: datetime) -> tuple[list[float], str]:
    """Seconds of full passes of `model`, each cancelled after BENCH_RUN_LIMIT seconds; a cancelled pass is
    extrapolated linearly from the share of customers its finished chunks classified, and ends the repeats."""
    from lifecycle.models import ClassificationRun, RunKind
    from lifecycle.services import model_reclassify

    customers = _customers()
    seconds: list[float] = []
    for _ in range(runs):
        if setup is not None:
            setup()
        started = time.perf_counter()
        try:
            with cancelled_after(run_limit_seconds()):
                model_reclassify(model=model, kind=RunKind.FULL, as_of=as_of)
        except DatabaseError:
            elapsed = time.perf_counter() - started
            done = ClassificationRun.objects.filter(model=model).latest("pk").customers_evaluated
            seconds.append(elapsed * customers / max(done, 1))
            return seconds, (
                f"cancelled after {elapsed:,.0f} s with {done:,} of {customers:,} customers classified; the figure is "
                "extrapolated linearly"
            )
        seconds.append(time.perf_counter() - started)
        if seconds[-1] > long_run_seconds():
            break
    return seconds, ""


def floor_converge(model, as_of: datetime) -> None:
    """Leave the model converged as of `as_of` quickly: its rows cleared, then classified by the floor statement
    (whose result equals the app's wherever it was checked)."""
    model_state_clear(model)
    with connection.cursor() as cursor:
        cursor.execute(floor_sql(model), floor_params(model, as_of))


def full_rows(models: dict, *, as_of: datetime, runs: int, converged_by_floor: set[str] | None = None) -> list[Row]:
    """model_reclassify(kind=FULL) of every template, from an empty current state and again (converged). When the
    pass from empty was cancelled, the state is converged by the floor statement before the converged runs (their
    keys are added to `converged_by_floor`)."""
    from lifecycle.models import ClassificationRun

    customers = _customers()
    rows = []
    for key, model in models.items():
        empty, note = capped_runs(model, setup=stage_tables_clear, runs=runs, as_of=as_of)
        last = ClassificationRun.objects.filter(model=model).latest("pk")
        rows.append(
            Row(
                f"full.{key}.empty",
                f"Full reclassification of `{key}` (model_reclassify), from an empty current state",
                f"{customers:,} customers, {last.transitions:,} transitions",
                empty,
                "s",
                note=note,
            )
        )
        if note:
            floor_converge(model, as_of)
            if converged_by_floor is not None:
                converged_by_floor.add(key)
        converged, note = capped_runs(model, setup=stage_tables_analyze, runs=runs, as_of=as_of)
        last = ClassificationRun.objects.filter(model=model).latest("pk")
        rows.append(
            Row(
                f"full.{key}.converged",
                f"Full reclassification of `{key}` again, converged (nothing changes)",
                f"{customers:,} customers, {last.transitions:,} transitions",
                converged,
                "s",
                note=note,
            )
        )
        state_keep(model)
    return rows


def added_model_row(model, *, classified, as_of: datetime) -> Row:
    """The first pass of a model added to an installation whose customers are classified in another model: its
    rows are absent from lifecycle_customerstage while the other model's are there (one capped run)."""
    from lifecycle.models import ClassificationRun

    stage_tables_clear()
    floor_converge(classified, as_of)
    stage_tables_analyze()  # as autovacuum has long done in a running installation
    seconds, note = capped_runs(model, setup=None, runs=1, as_of=as_of)
    last = ClassificationRun.objects.filter(model=model).latest("pk")
    return Row(
        f"full.{model.key}.added",
        f"Full reclassification of `{model.key}`, first pass after the model is added (`{classified.key}` classified)",
        f"{_customers():,} customers, {last.transitions:,} transitions",
        seconds,
        "s",
        note=note,
    )


# --- the floor: one hand-written statement per template ----------------------------------------------------

# Feature tables, each one GROUP BY; a template's statement joins those it needs to the customers.
_ORDERS = """
    orders AS (
        SELECT customer_id, count(*) AS order_count, max(placed_at) AS last_order,
               count(*) FILTER (WHERE placed_at > %(as_of)s - interval '365 days') AS orders_365
        FROM lifecycle_order WHERE status = 'completed' AND placed_at <= %(as_of)s
        GROUP BY customer_id
    )"""
_REFERRALS = """
    referrals AS (
        SELECT referred_by_id AS customer_id, count(*) AS referral_count FROM lifecycle_customer
        WHERE referred_by_id IS NOT NULL AND first_seen_at <= %(as_of)s GROUP BY referred_by_id
    )"""
# Only one-order customers need it (the `nurture` rule): the hand-written statement exploits that.
_ENGAGED_SINCE = """
    engaged_since AS (
        SELECT t.customer_id, count(*) AS engagements FROM lifecycle_touchpoint t
        JOIN orders o ON o.customer_id = t.customer_id AND o.order_count = 1
        WHERE t.kind = ANY(%(kinds)s) AND t.occurred_at > o.last_order AND t.occurred_at <= %(as_of)s
        GROUP BY t.customer_id
    )"""
_ENGAGED_30D = """
    engaged_30d AS (
        SELECT customer_id, count(*) AS engagements FROM lifecycle_touchpoint
        WHERE kind = ANY(%(kinds)s) AND occurred_at > %(as_of)s - interval '30 days' AND occurred_at <= %(as_of)s
        GROUP BY customer_id
    )"""
_FEEDBACK = """
    feedback AS (
        SELECT DISTINCT ON (customer_id) customer_id, score FROM lifecycle_feedback WHERE submitted_at <= %(as_of)s
        ORDER BY customer_id, submitted_at DESC, id DESC
    )"""
_JOINS = {
    "orders": "LEFT JOIN orders ON orders.customer_id = c.id",
    "referrals": "LEFT JOIN referrals ON referrals.customer_id = c.id",
    "engaged_since": "LEFT JOIN engaged_since ON engaged_since.customer_id = c.id",
    "engaged_30d": "LEFT JOIN engaged_30d ON engaged_30d.customer_id = c.id",
    "feedback": "LEFT JOIN feedback ON feedback.customer_id = c.id",
}
# (feature tables, CASE branches as (stage key, condition)); the model's fallback is the ELSE.
_N = "coalesce(orders.order_count, 0)"
FLOORS: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    "status": (
        [("orders", _ORDERS)],
        [
            ("former", f"{_N} >= 1 AND orders.last_order <= %(as_of)s - interval '366 days'"),
            ("inactive", f"{_N} >= 1 AND orders.last_order <= %(as_of)s - interval '181 days'"),
            ("active", f"{_N} >= 2"),
            ("new", f"{_N} = 1"),
        ],
    ),
    "ecommerce": (
        [("orders", _ORDERS), ("referrals", _REFERRALS), ("engaged_since", _ENGAGED_SINCE)],
        [
            ("advocacy", f"{_N} >= 1 AND referrals.referral_count >= 1"),
            ("retention", f"{_N} >= 2"),
            ("nurture", f"{_N} = 1 AND engaged_since.engagements >= 1"),
            ("acquire", f"{_N} = 1"),
        ],
    ),
    "loyalty": (
        [("orders", _ORDERS), ("referrals", _REFERRALS), ("engaged_30d", _ENGAGED_30D), ("feedback", _FEEDBACK)],
        [
            ("advocacy", f"{_N} >= 2 AND (referrals.referral_count >= 1 OR feedback.score >= 9)"),
            ("loyalty", "orders.orders_365 >= 4"),
            ("retention", f"{_N} >= 2"),
            ("purchase", f"{_N} = 1"),
            ("consideration", "engaged_30d.engagements >= 2"),
        ],
    ),
    "basic": (
        [("orders", _ORDERS), ("engaged_30d", _ENGAGED_30D)],
        [
            ("retention", f"{_N} >= 2"),
            ("purchase", f"{_N} = 1"),
            ("interest", "engaged_30d.engagements >= 1"),
        ],
    ),
}


def floor_sql(model) -> str:
    """The whole classification of one template as one statement: features by GROUP BY, the stage by CASE, the
    transitions of the customers whose stage differs inserted and their current stages upserted."""
    tables, branches = FLOORS[model.key]
    stage_ids = dict(model.stages.values_list("key", "id"))
    case = "\n".join(f"WHEN {condition} THEN {stage_ids[key]}" for key, condition in branches)
    return f"""
    WITH {", ".join(sql for _, sql in tables)},
    target AS (
        SELECT c.id, CASE {case} ELSE {model.fallback_stage_id} END AS stage_id
        FROM lifecycle_customer c {" ".join(_JOINS[name] for name, _ in tables)}
        WHERE c.first_seen_at <= %(as_of)s
    ),
    changed AS (
        SELECT target.id, current.stage_id AS from_id, target.stage_id AS to_id FROM target
        LEFT JOIN lifecycle_customerstage current ON current.customer_id = target.id AND current.model_id = %(model)s
        WHERE current.stage_id IS DISTINCT FROM target.stage_id
    ),
    logged AS (
        INSERT INTO lifecycle_stagetransition (customer_id, model_id, from_stage_id, to_stage_id, at, cause)
        SELECT id, %(model)s, from_id, to_id, %(as_of)s, 'manual' FROM changed
    )
    INSERT INTO lifecycle_customerstage (model_id, customer_id, stage_id, since)
    SELECT %(model)s, id, to_id, %(as_of)s FROM changed
    ON CONFLICT (model_id, customer_id) DO UPDATE SET stage_id = excluded.stage_id, since = excluded.since
    """  # noqa: S608 - stage ids and fixed fragments only; values are parameters


def floor_params(model, as_of: datetime) -> dict:
    from lifecycle.features import ENGAGEMENT_KINDS

    return {"as_of": as_of, "model": model.pk, "kinds": [str(kind) for kind in ENGAGEMENT_KINDS]}


def stage_differences(model, expected_sql: str, params: list | tuple = ()) -> int:
    """Customers whose current stage in `model` differs from `expected_sql`'s (columns customer_id, stage_id)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*) FROM ({expected_sql}) AS expected
            FULL JOIN (SELECT customer_id, stage_id FROM lifecycle_customerstage WHERE model_id = %s) AS current
              ON current.customer_id = expected.customer_id
            WHERE current.stage_id IS DISTINCT FROM expected.stage_id
            """,  # noqa: S608 - SQL of the benchmark's own
            [*params, model.pk],
        )
        return cursor.fetchone()[0]


def _state_differences(model) -> int | None:
    """Customers whose current stage differs from the app's result kept by state_keep (0: the same result; None:
    nothing kept)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f"bench_state_{model.key}"])
        if not cursor.fetchone()[0]:
            return None
    return stage_differences(model, f"SELECT customer_id, stage_id FROM bench_state_{model.key}")  # noqa: S608


def floor_rows(models: dict, *, as_of: datetime, runs: int, converged_by_floor: set[str] = frozenset()) -> list[Row]:
    """The hand-written statement, from an empty state and converged; its result is checked against the app's
    (the app's converged state is kept aside first) unless the floor wrote that state itself."""
    customers = _customers()
    rows = []
    for key, model in models.items():
        sql, params = floor_sql(model), floor_params(model, as_of)
        written = []

        def run(sql=sql, params=params, written=written) -> None:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                written.append(cursor.rowcount)

        empty = timed(run, setup=stage_tables_clear, runs=runs)
        differences = _state_differences(model)
        if differences is None:
            check = "not checked (no result of the app's full pass kept)"
        elif key in converged_by_floor:
            check = "not checked here (the state before was the floor's: the app's pass from empty was cancelled)"
        else:
            check = "yes" if differences == 0 else f"NO, {differences:,} customers differ"
        rows.append(
            Row(
                f"floor.{key}.empty",
                f"Floor: `{key}` as one hand-written SQL statement, from an empty current state",
                f"{customers:,} customers, {written[-1]:,} transitions; result = the app's: {check}",
                empty,
                "s",
            )
        )
        written.clear()
        converged = timed(run, setup=stage_tables_analyze, runs=runs)
        rows.append(
            Row(
                f"floor.{key}.converged",
                f"Floor: `{key}` as one hand-written SQL statement, converged",
                f"{customers:,} customers, {written[-1]:,} transitions",
                converged,
                "s",
            )
        )
    return rows


# --- the naive baseline: a per-customer ORM loop ----------------------------------------------------------------

_OPERATORS: dict[str, Callable] = {"=": eq, "!=": ne, "<": lt, "<=": le, ">": gt, ">=": ge}


def _matches(condition, value) -> bool:
    if value is None:
        return False
    if condition.operator == "between":
        return condition.value[0] <= value <= condition.value[1]
    if condition.operator == "in":
        return value in condition.value
    return _OPERATORS[condition.operator](value, condition.value)


def _naive_features(customer_id: int, names: set[str], as_of: datetime) -> dict:
    """The features a model's rules need, one ORM query per kind of record, as a first version would write them."""
    from django.db.models import Count, Max, Q

    from lifecycle.features import ENGAGEMENT_KINDS
    from lifecycle.models import Customer, Feedback, Order, OrderStatus, Touchpoint

    values: dict = {}
    orders = Order.objects.filter(customer_id=customer_id, status=OrderStatus.COMPLETED, placed_at__lte=as_of)
    summary = orders.aggregate(
        count=Count("id"), last=Max("placed_at"), last_365d=Count("id", filter=Q(placed_at__gt=as_of - timedelta(365)))
    )
    values["order_count"] = summary["count"]
    values["orders_last_365d"] = summary["last_365d"]
    values["days_since_last_order"] = (as_of - summary["last"]).days if summary["last"] else None
    engagements = Touchpoint.objects.filter(customer_id=customer_id, kind__in=ENGAGEMENT_KINDS, occurred_at__lte=as_of)
    if "referral_count" in names:
        values["referral_count"] = Customer.objects.filter(referred_by_id=customer_id, first_seen_at__lte=as_of).count()
    if "engagements_since_last_order" in names:
        values["engagements_since_last_order"] = (
            engagements.filter(occurred_at__gt=summary["last"]).count() if summary["last"] else None
        )
    if "engagements_last_30d" in names:
        values["engagements_last_30d"] = engagements.filter(occurred_at__gt=as_of - timedelta(30)).count()
    if "last_feedback_score" in names:
        values["last_feedback_score"] = (
            Feedback.objects.filter(customer_id=customer_id, submitted_at__lte=as_of)
            .order_by("-submitted_at", "-id")
            .values_list("score", flat=True)
            .first()
        )
    return values


def orm_loop(model, customer_ids: list[int], as_of: datetime) -> int:
    """What a first version would do: for each customer, its features by ORM queries, the rules in Python, the
    current stage read and, when it changed, a transition and the stage saved. Returns the transitions written."""
    from lifecycle.models import CustomerStage, StageTransition, TransitionCause
    from lifecycle.rules import conditions_parse

    stages = sorted(model.stages.prefetch_related("rules"), key=lambda s: (s.priority, s.pk))
    rules = [(stage.pk, [conditions_parse(rule.conditions) for rule in stage.rules.all()]) for stage in stages]
    names = {c.feature.name for _, stage_rules in rules for rule in stage_rules for c in rule}
    transitions = 0
    for customer_id in customer_ids:
        values = _naive_features(customer_id, names, as_of)
        target = next(
            (
                stage_id
                for stage_id, stage_rules in rules
                if any(all(_matches(c, values[c.feature.name]) for c in rule) for rule in stage_rules)
            ),
            model.fallback_stage_id,
        )
        current = CustomerStage.objects.filter(model=model, customer_id=customer_id).first()
        if current is None or current.stage_id != target:
            StageTransition.objects.create(
                customer_id=customer_id,
                model=model,
                from_stage_id=current.stage_id if current else None,
                to_stage_id=target,
                at=as_of,
                cause=TransitionCause.MANUAL,
            )
            CustomerStage.objects.update_or_create(
                model=model, customer_id=customer_id, defaults={"stage_id": target, "since": as_of}
            )
            transitions += 1
    return transitions


def orm_rows(models: dict, *, as_of: datetime, runs: int, sample_size: int = ORM_SAMPLE) -> list[Row]:
    """The ORM loop over a random sample (every customer below ORM_SAMPLE), extrapolated to all customers."""
    from lifecycle.models import Customer

    customers = _customers()
    ids = sorted(Customer.objects.filter(first_seen_at__lte=as_of).values_list("pk", flat=True))
    sample = sorted(random.Random(7).sample(ids, min(sample_size, len(ids))))  # noqa: S311
    factor = len(ids) / len(sample)
    rows = []
    for key, model in models.items():
        written = []

        def run(model=model, written=written) -> None:
            written.append(orm_loop(model, sample, as_of))

        empty = timed(run, setup=stage_tables_clear, runs=runs)
        differences = _sample_differences(model, sample, as_of)
        rows.append(
            Row(
                f"orm.{key}.empty",
                f"Naive baseline: `{key}` by a per-customer ORM loop, from an empty state, extrapolated",
                f"{len(sample):,} sampled customers × {factor:,.1f} = {customers:,} ({written[-1]:,} transitions in "
                f"the sample; {statistics_ms(empty, len(sample))} per customer); result = the app's: "
                f"{'yes' if differences == 0 else f'NO, {differences:,} customers differ'}",
                [seconds * factor for seconds in empty],
                "s",
            )
        )
        written.clear()
        converged = timed(run, setup=stage_tables_analyze, runs=runs)
        rows.append(
            Row(
                f"orm.{key}.converged",
                f"Naive baseline: `{key}` by the ORM loop again, converged, extrapolated",
                f"{len(sample):,} sampled customers × {factor:,.1f} ({statistics_ms(converged, len(sample))} per "
                "customer)",
                [seconds * factor for seconds in converged],
                "s",
            )
        )
        stage_tables_clear()
    return rows


def _sample_differences(model, sample: list[int], as_of: datetime) -> int:
    """Sampled customers whose stage from the ORM loop differs from the app's classification of them."""
    from lifecycle.models import CustomerStage
    from lifecycle.rules import classification_queryset

    app = dict(classification_queryset(model, as_of).filter(pk__in=sample).values_list("id", "target_stage_id"))
    loop = dict(
        CustomerStage.objects.filter(model=model, customer_id__in=sample).values_list("customer_id", "stage_id")
    )
    return sum(1 for customer_id in sample if app.get(customer_id) != loop.get(customer_id))


def statistics_ms(seconds: list[float], count: int) -> str:
    return f"{sorted(seconds)[len(seconds) // 2] / count * 1000:.2f} ms"


# --- one customer, after an ingested order ----------------------------------------------------------------------


def order_ingest(*, customer_external_id: str, placed_at: datetime, amount: str = "19.90") -> None:
    """One order through the ingestion service, as the API stores it (validated, upserted, customer marked)."""
    from lifecycle.ingest import records_ingest
    from lifecycle.ingest_kinds import ORDERS

    records_ingest(
        kind=ORDERS,
        items=[
            {
                "external_id": f"live-{time.perf_counter_ns()}",
                "customer_external_id": customer_external_id,
                "placed_at": placed_at.isoformat(),
                "amount": amount,
                "channel": "email",
            }
        ],
    )


def single_customer_row(*, samples: int = 200) -> Row:
    """customers_reclassify([id]) after one ingested order, for `samples` random customers (the suite runs it after
    the history part, which leaves every active model classified as of now)."""
    from lifecycle.models import Customer, LifecycleModel
    from lifecycle.services import customers_reclassify

    active = list(LifecycleModel.objects.filter(active=True))
    ids = list(Customer.objects.values_list("pk", flat=True))
    count = len(ids)
    picked = random.Random(11).sample(ids, min(samples, count))  # noqa: S311
    external_ids = dict(Customer.objects.filter(pk__in=picked).values_list("pk", "external_id"))
    customers = [(pk, external_ids[pk]) for pk in picked]
    latencies = []
    for customer_id, external_id in customers:
        order_ingest(customer_external_id=external_id, placed_at=timezone.now() - timedelta(minutes=1))
        started = time.perf_counter()
        customers_reclassify(customer_ids=[customer_id])
        latencies.append((time.perf_counter() - started) * 1000)
    return Row(
        "single",
        "One customer after an ingested order (customers_reclassify), latency",
        f"{len(customers)} random customers of {count:,}, each in {len(active)} active models "
        f"({', '.join(m.key for m in active)}); p50 {percentile(latencies, 50):.1f} ms, "
        f"p95 {percentile(latencies, 95):.1f} ms",
        latencies,
        "ms",
        stat="p95",
    )


# --- a periodic pass after 1 % changed ----------------------------------------------------------------------------


def _orders_copy(customer_ids: list[int], placed_at: datetime) -> None:
    """One new completed order for each customer, written with COPY (as a bulk import would)."""
    stamp = placed_at.isoformat()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            "COPY lifecycle_order (external_id, customer_id, placed_at, amount, status, campaign_code, created_at, "
            "updated_at) FROM STDIN"
        ) as copy:
            prefix = f"live-{time.perf_counter_ns()}"
            for customer_id in customer_ids:
                copy.write_row(
                    (f"{prefix}-{customer_id}", customer_id, stamp, Decimal("24.90"), "completed", "", stamp, stamp)
                )


def periodic_rows(models: dict, *, share: float = 0.01, runs: int, hours: int = 1) -> list[Row]:
    """A full pass as of `runs + 1` hours ago, then per run: 1 % of the customers get an order (COPY) and are marked
    changed (customers_mark_changed), and the periodic pass as of one hour later is timed (the hourly schedule)."""
    from lifecycle.models import Customer, RunKind
    from lifecycle.services import customers_mark_changed, model_reclassify

    ids = list(Customer.objects.values_list("pk", flat=True))
    changed_count = max(1, round(share * len(ids)))
    rng = random.Random(13)  # noqa: S311
    rows = []
    for key, model in models.items():
        start = timezone.now() - timedelta(hours=hours * (runs + 1))
        base = model_reclassify(model=model, kind=RunKind.FULL, as_of=start)
        results = []
        moments = iter(start + timedelta(hours=hours * (i + 1)) for i in range(runs))
        current = {"as_of": start}

        def change(current=current, moments=moments) -> None:
            current["as_of"] = next(moments)
            picked = sorted(rng.sample(ids, changed_count))
            _orders_copy(picked, current["as_of"] - timedelta(minutes=10))
            customers_mark_changed(customer_ids=picked)

        def run(model=model, current=current, results=results) -> None:
            results.append(model_reclassify(model=model, kind=RunKind.PERIODIC, as_of=current["as_of"]))

        seconds = timed(run, setup=change, runs=runs)
        last = results[-1]
        rows.append(
            Row(
                f"periodic.{key}",
                f"Periodic pass of `{key}` {hours} h after the last, {share:.0%} of the customers changed",
                f"{changed_count:,} customers with a new order of {len(ids):,}; "
                f"{'incremental' if getattr(last, 'incremental', False) else 'NOT incremental (a full pass)'}: "
                f"{last.customers_evaluated:,} evaluated, {last.transitions:,} transitions "
                f"(base full pass {base.customers_evaluated:,} customers)",
                seconds,
                "s",
            )
        )
    return rows


# --- the stage history the dashboards read ------------------------------------------------------------------------


def history_build(model, *, months: int, as_of: datetime) -> Row:
    """The model's history: classified as of the end of each of the last `months` months (backfill runs, oldest
    first), then as of now — a log with several transitions per customer, as a shop's would have."""
    from lifecycle.models import RunKind
    from lifecycle.services import model_reclassify

    stage_tables_clear()
    started = time.perf_counter()
    moments = [as_of - timedelta(days=30 * i) for i in range(months, 0, -1)]
    transitions = 0
    for moment in moments:
        transitions += model_reclassify(model=model, kind=RunKind.BACKFILL, as_of=moment).transitions
    transitions += model_reclassify(model=model, kind=RunKind.FULL, as_of=as_of).transitions
    seconds = time.perf_counter() - started
    return Row(
        f"history.{model.key}",
        f"Stage history of `{model.key}`: classified as of every 30 days over {months} months, then now",
        f"{months + 1} full passes → {transitions:,} transitions (one run, for the metrics below)",
        [seconds],
        "s",
    )
