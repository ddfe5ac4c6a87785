"""Small SQL expressions Django lacks, written for both databases CLM runs on (PostgreSQL, SQLite)."""

from collections.abc import Sequence
from typing import Any

from django.db import connections
from django.db.models import FloatField, Func, QuerySet


class DaysBetween(Func):
    """Days (fractional) from the `earlier` timestamp expression to the `later` one."""

    output_field = FloatField()
    arity = 2

    def __init__(self, earlier: Any, later: Any, **extra: Any) -> None:
        super().__init__(earlier, later, **extra)

    def _operands(self, compiler: Any) -> tuple[str, str, list]:
        earlier, later = (compiler.compile(expression) for expression in self.source_expressions)
        return earlier[0], later[0], [*later[1], *earlier[1]]

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        earlier, later, params = self._operands(compiler)
        return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)", params

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        earlier, later, params = self._operands(compiler)
        return f"(julianday({later}) - julianday({earlier}))", params


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
