"""SQL helpers shared by the apps (both databases CLM runs on: PostgreSQL and SQLite)."""

from collections.abc import Sequence

from django.db import connections
from django.db.models import Model, QuerySet


def grouped_counts(inner: QuerySet, columns: Sequence[str]) -> list[tuple]:
    """Rows (*values of `columns`, count) of `inner` grouped by those columns, in one query.

    Django cannot group the rows of an aggregated or windowed query again; the ORM builds `inner` and this shell,
    valid on both databases, counts its rows. Only quoted column names are put into the text.
    """
    connection = connections[inner.db]
    sql, params = inner.query.get_compiler(connection=connection).as_sql()
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {names}, COUNT(*) FROM ({sql}) t GROUP BY {names}", params)  # noqa: S608
        return cursor.fetchall()


# Above this many rows a table's size comes from the planner's statistics: an exact COUNT(*) of millions of
# rows on every page load would cost seconds (docs/QUERIES.md).
EXACT_COUNT_LIMIT = 100_000


def estimated_rows(models: Sequence[type[Model]]) -> dict[type[Model], int | None]:
    """PostgreSQL's estimate of each table's rows, from the statistics ANALYZE keeps (autovacuum refreshes them), in
    one query; None for tables below EXACT_COUNT_LIMIT, without statistics, or on SQLite: callers count those."""
    connection = connections[models[0]._default_manager.db]
    if connection.vendor != "postgresql":
        return dict.fromkeys(models)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples::bigint FROM pg_class WHERE oid = ANY(%s::regclass[])",
            [[model._meta.db_table for model in models]],
        )
        rows = dict(cursor.fetchall())
    return {model: n if (n := rows.get(model._meta.db_table, -1)) >= EXACT_COUNT_LIMIT else None for model in models}


def estimated_distinct(model: type[Model], column: str, rows: int) -> int | None:
    """PostgreSQL's estimate of a column's distinct values in a table of `rows` rows (pg_stats)."""
    connection = connections[model._default_manager.db]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_distinct FROM pg_stats WHERE tablename = %s AND attname = %s", [model._meta.db_table, column]
        )
        stats = cursor.fetchone()
    if stats is None:
        return None
    # n_distinct < 0 is minus the share of distinct values among the rows.
    return round(-stats[0] * rows) if stats[0] < 0 else round(stats[0])
