"""Load generated data into the migrated schema with PostgreSQL COPY (psycopg 3), and remember what was loaded.

The whole load is one transaction: the data tables are emptied, their secondary indexes, unique and foreign-key
constraints are dropped, every chunk is copied in, and the indexes and constraints are created again from their
saved definitions (the foreign keys are validated then, in one pass each). A failure rolls all of it back, the
dropped indexes included. Dropping them is the default because it is several times faster than maintaining eight
indexes row by row (measured: docs/BENCHMARKS.md); `keep_indexes=True` copies into the indexed tables instead.

A one-row table `bench_dataset` records the scale, seed and generator version of the loaded data and the last
generated ids, so a later run reuses the data (and deletes what measurements added after it) instead of
generating again.
"""

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
from django.db import connection, transaction

from bench import generate
from bench.generate import Population, Spec, Table

GENERATOR_VERSION = 1
TABLES = ("lifecycle_customer", "lifecycle_order", "lifecycle_touchpoint", "lifecycle_feedback")
COPY_ROWS = 200_000  # rows formatted and sent per write


@dataclass(frozen=True)
class Dataset:
    scale: str
    customers: int
    seed: int
    end: date
    generator: int
    orders: int
    touchpoints: int
    feedback: int
    last_ids: dict[str, int]
    generated_at: datetime
    seconds: dict[str, float]
    details: dict

    @property
    def spec(self) -> Spec:
        return Spec(customers=self.customers, seed=self.seed, end=self.end)


def dataset_get() -> Dataset | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_dataset') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute(
            "SELECT scale, customers, seed, end_day, generator, orders, touchpoints, feedback, last_ids, "
            "generated_at, seconds, details FROM bench_dataset"
        )
        row = cursor.fetchone()
    if row is None:
        return None
    # Django makes psycopg return json columns as text (JSONField parses them itself).
    last_ids, seconds, details = (
        json.loads(value) if isinstance(value, str) else value for value in row[8:9] + row[10:]
    )
    return Dataset(*row[:8], last_ids=last_ids, generated_at=row[9], seconds=seconds, details=details)


def dataset_matches(dataset: Dataset | None, spec: Spec) -> bool:
    return (
        dataset is not None
        and dataset.customers == spec.customers
        and dataset.seed == spec.seed
        and dataset.generator == GENERATOR_VERSION
    )


# --- formatting --------------------------------------------------------------------------------------


def _column_text(table: Table, name: str, values: np.ndarray, channel_ids: np.ndarray) -> np.ndarray:
    text_type = np.dtypes.StringDType()
    if name.endswith("channel_id"):
        values = np.where(values >= 0, channel_ids[np.maximum(values, 0)], -1)
    if values.dtype.kind == "M":
        text = np.datetime_as_string(values, unit="s", timezone="UTC").astype(text_type)
    elif name in table.cents:
        cents = np.abs(values)
        text = np.strings.add(
            np.strings.add((cents // 100).astype(text_type), "."), np.strings.zfill((cents % 100).astype(text_type), 2)
        )
    elif values.dtype.kind in "iu":
        text = values.astype(text_type)
    else:
        text = values  # generated text holds no tab, newline or backslash: COPY needs no escaping
    if name in table.nullable:
        text = np.where(values < 0, "\\N", text)
    return text


def copy_text(table: Table, channel_ids: np.ndarray) -> Iterator[bytes]:
    """The table's rows in COPY text format, COPY_ROWS at a time."""
    names = list(table.columns)
    for start in range(0, len(table), COPY_ROWS):
        part = {name: values[start : start + COPY_ROWS] for name, values in table.columns.items()}
        line = _column_text(table, names[0], part[names[0]], channel_ids)
        for name in names[1:]:
            line = np.strings.add(np.strings.add(line, "\t"), _column_text(table, name, part[name], channel_ids))
        yield ("\n".join(line.tolist()) + "\n").encode()


# --- indexes and constraints ------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedDefinitions:
    constraints: list[tuple[str, str, str]]  # table, name, definition (unique and foreign keys)
    indexes: list[tuple[str, str]]  # name, CREATE INDEX statement (those not backing a constraint)


def _definitions(cursor) -> SavedDefinitions:
    cursor.execute(
        """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f') ORDER BY contype DESC, conname
        """,
        [list(TABLES)],
    )
    constraints = list(cursor.fetchall())
    cursor.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
        WHERE i.indrelid = ANY(%s::regclass[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u'))
        ORDER BY 1
        """,
        [list(TABLES)],
    )
    return SavedDefinitions(constraints=constraints, indexes=list(cursor.fetchall()))


def _drop(cursor, saved: SavedDefinitions) -> None:
    for table, name, _ in saved.constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in saved.indexes:
        cursor.execute(f"DROP INDEX {name}")


def _create(cursor, saved: SavedDefinitions) -> None:
    # Unique constraints first (foreign keys need nothing but the primary keys), then the plain indexes.
    for table, name, definition in saved.constraints:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for _, definition in saved.indexes:
        cursor.execute(definition)


# --- the load --------------------------------------------------------------------------------------------


def _channel_ids() -> np.ndarray:
    from lifecycle.models import Channel

    by_key = dict(Channel.objects.values_list("key", "id"))
    missing = [key for key in generate.CHANNELS if key not in by_key]
    if missing:
        raise RuntimeError(f"channels {missing} missing: run migrate first")
    return np.array([by_key[key] for key in generate.CHANNELS], dtype=np.int64)


def _check_columns(cursor, tables: list[Table]) -> None:
    """Every NOT NULL column without a default is generated (a new column in the schema fails loudly here)."""
    for table in tables:
        cursor.execute(
            """
            SELECT column_name FROM information_schema.columns
            WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'
            """,
            [table.name],
        )
        missing = sorted({row[0] for row in cursor.fetchall()} - set(table.columns))
        if missing:
            raise RuntimeError(f"{table.name}: the generator does not fill {missing}; update bench/generate.py")


def dataset_load(
    *, scale: str, spec: Spec, keep_indexes: bool = False, progress: Callable[[str], None] = print
) -> Dataset:
    """Generate and load `spec` into the (migrated) database, replacing every customer and their data."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    pop = generate.population(spec)
    seconds["population"] = time.perf_counter() - started
    channel_ids = _channel_ids()
    created_at = datetime.now(UTC).replace(microsecond=0)
    counts = dict.fromkeys(TABLES, 0)
    copy_seconds = 0.0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        saved = _definitions(cursor)
        if not keep_indexes:
            _drop(cursor, saved)
        started = time.perf_counter()
        for number, tables in enumerate(generate.chunks(pop, created_at)):
            if number == 0:
                _check_columns(cursor, tables)
            for table in tables:
                copy_started = time.perf_counter()
                with cursor.cursor.copy(f"COPY {table.name} ({', '.join(table.columns)}) FROM STDIN") as copy:
                    for block in copy_text(table, channel_ids):
                        copy.write(block)
                copy_seconds += time.perf_counter() - copy_started
                counts[table.name] += len(table)
            progress(
                f"  chunk {number + 1}: {counts['lifecycle_customer']:,} customers, "
                f"{counts['lifecycle_order']:,} orders, {counts['lifecycle_touchpoint']:,} touchpoints"
            )
        seconds["generate_and_copy"] = time.perf_counter() - started
        seconds["format_and_copy"] = copy_seconds
        started = time.perf_counter()
        if not keep_indexes:
            _create(cursor, saved)
        seconds["indexes_and_constraints"] = time.perf_counter() - started
        for table in TABLES:
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")  # noqa: S608
        _marketing_spend(pop)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {', '.join(TABLES)}")
    seconds["vacuum_analyze"] = time.perf_counter() - started
    last_ids = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608 - our table names
            last_ids[table] = cursor.fetchone()[0]
    details = {
        "pace": pop.pace,
        "after_touch_rate": pop.after_touch_rate,
        "shape": pop.shape.describe(),
        "keep_indexes": keep_indexes,
        "indexes": len(saved.indexes),
        "constraints": len(saved.constraints),
    }
    dataset = Dataset(
        scale=scale,
        customers=spec.customers,
        seed=spec.seed,
        end=spec.end,
        generator=GENERATOR_VERSION,
        orders=counts["lifecycle_order"],
        touchpoints=counts["lifecycle_touchpoint"],
        feedback=counts["lifecycle_feedback"],
        last_ids=last_ids,
        generated_at=created_at,
        seconds=seconds,
        details=details,
    )
    _dataset_store(dataset)
    return dataset


def _dataset_store(dataset: Dataset) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE TABLE IF NOT EXISTS bench_dataset (
                scale text, customers integer, seed integer, end_day date, generator integer, orders bigint,
                touchpoints bigint, feedback bigint, last_ids jsonb, generated_at timestamptz, seconds jsonb,
                details jsonb)
            """
        )
        cursor.execute("DELETE FROM bench_dataset")
        cursor.execute(
            "INSERT INTO bench_dataset VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                dataset.scale,
                dataset.customers,
                dataset.seed,
                dataset.end,
                dataset.generator,
                dataset.orders,
                dataset.touchpoints,
                dataset.feedback,
                json.dumps(dataset.last_ids),
                dataset.generated_at,
                json.dumps(dataset.seconds),
                json.dumps(dataset.details),
            ],
        )


def dataset_reset_live(dataset: Dataset) -> None:
    """Delete what measurements added after the load (orders, touchpoints, feedback and customers with later ids,
    outbox rows), so every run measures the generated data."""
    with connection.cursor() as cursor:
        for table in reversed(TABLES):
            cursor.execute(f"DELETE FROM {table} WHERE id > %s", [dataset.last_ids[table]])  # noqa: S608


def _marketing_spend(pop: Population) -> None:
    """Monthly spend per channel as in clm.demo.generate: fixed costs, paid ads per customer they brought, email per
    subscriber (scaled to the population)."""
    from campaigns.models import MarketingSpend, SpendPeriod
    from clm.demo.parameters import MONTHLY_COST, PAID_COST_PER_BUYER
    from lifecycle.models import Channel

    channels = dict(Channel.objects.values_list("key", "id"))
    month = pop.first_seen.astype("datetime64[s]").astype("datetime64[M]")
    months = np.arange(month.min(), month.max() + 1)
    scale = max(pop.spec.customers / 23_570, 0.01)  # CDNOW's size is what the demo costs are set for
    paid = np.bincount(
        (month - months[0]).astype(np.int64)[pop.channel == generate.CH["paid_ads"]], minlength=len(months)
    )
    known = np.cumsum(np.bincount((month - months[0]).astype(np.int64), minlength=len(months)))
    rows = []
    for i, first_day in enumerate(months.astype(date)):
        for channel, fixed in MONTHLY_COST.items():
            amount = fixed * scale
            if channel == "paid_ads":
                amount += paid[i] * PAID_COST_PER_BUYER
            elif channel == "email":
                amount += known[i] * 0.015
            rows.append(
                MarketingSpend(
                    channel_id=channels[channel], period=SpendPeriod.MONTH, date=first_day, amount=round(amount, 2)
                )
            )
    MarketingSpend.objects.all().delete()
    MarketingSpend.objects.bulk_create(rows)


def tables_analyze() -> None:
    """Current planner statistics on the tables the measurements change, as autovacuum keeps them between jobs (a
    part that starts right after another filled a table would otherwise be planned for the old row counts)."""
    changed = [*TABLES, "lifecycle_customerstage", "lifecycle_stagetransition", "lifecycle_changedcustomer"]
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(changed)}")
