"""Small SQL expressions Django lacks, written for both databases CLM runs on (PostgreSQL, SQLite)."""

from typing import Any

from django.db.models import FloatField, Func


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
