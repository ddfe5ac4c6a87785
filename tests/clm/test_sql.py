"""Row counts of large tables come from PostgreSQL's statistics: an exact COUNT(*) of millions of rows on every
overview would cost seconds."""

import pytest
from django.db import connection

from lifecycle.models import Order
from lifecycle.selectors import data_summary
from tests.conftest import needs_postgresql
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


def test_small_tables_are_counted_exactly():
    OrderFactory.create_batch(3, customer=CustomerFactory())
    summary = data_summary()
    assert (summary["orders"], summary["customers_with_orders"], summary["approximate"]) == (3, 1, False)


@needs_postgresql
def test_tables_above_the_limit_are_estimated_from_the_statistics(monkeypatch):
    monkeypatch.setattr("clm.base.sql.EXACT_COUNT_LIMIT", 10)
    for _ in range(4):
        OrderFactory.create_batch(10, customer=CustomerFactory())
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Order._meta.db_table}")
    summary = data_summary()
    assert summary["approximate"] and summary["orders"] == 40 and summary["customers_with_orders"] == 4
