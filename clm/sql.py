"""SQL helpers shared by the apps (both databases CLM runs on: PostgreSQL and SQLite)."""

from collections.abc import Sequence

from django.db import connections
from django.db.models import QuerySet


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
