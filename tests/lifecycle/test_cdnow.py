from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from lifecycle.cdnow import CdnowFormat, cdnow_default_path
from lifecycle.models import Customer, Order

pytestmark = pytest.mark.django_db


def import_cdnow(*args: str) -> str:
    out = StringIO()
    call_command("import_cdnow", *args, stdout=out)
    return out.getvalue()


def test_the_files_are_found_in_the_installed_lifetimes_package_without_importing_it():
    import sys

    path = cdnow_default_path(CdnowFormat.MASTER)
    assert path.is_file() and path.name == "CDNOW_master.txt"
    assert "lifetimes" not in sys.modules


def test_sample_file_imports_end_to_end():
    out = import_cdnow("--path", str(cdnow_default_path(CdnowFormat.SAMPLE)))
    assert "2357 customers (2357 new)" in out
    assert Customer.objects.count() == 2357
    orders = Order.objects.count()
    # one order per customer and day: the sample's 6,919 records fall on fewer distinct days
    assert 6000 < orders < 6919
    customer = Customer.objects.get(external_id="cdnow-00004")
    assert customer.first_seen_at == datetime(1997, 1, 1, tzinfo=UTC)
    assert list(customer.orders.values_list("external_id", "amount")) == [
        ("cdnow-00004-19970101", Decimal("29.33")),
        ("cdnow-00004-19970118", Decimal("29.73")),
        ("cdnow-00004-19970802", Decimal("14.96")),
        ("cdnow-00004-19971212", Decimal("26.48")),
    ]


def test_a_second_import_adds_nothing():
    sample = str(cdnow_default_path(CdnowFormat.SAMPLE))
    import_cdnow("--path", sample)
    out = import_cdnow("--path", sample)
    assert "(0 new)" in out and "orders (0 new)" in out


def test_master_file_gives_exactly_23570_customers_and_67591_orders():
    import_cdnow()
    assert Customer.objects.count() == 23570
    assert Order.objects.count() == 67591
    assert Order.objects.filter(amount=0).count() > 0  # zero-amount records are kept
    # same-day records are summed, so revenue equals the file's total
    total = Decimal(0)
    for line in cdnow_default_path().read_text().splitlines()[1:]:
        total += Decimal(line.split()[3])
    assert (
        Order.objects.aggregate(total=Sum("amount"))["total"].quantize(Decimal("0.01")) == total
    )  # SQLite sums as float


def test_malformed_file_is_reported_by_line_and_nothing_written(tmp_path):
    path = tmp_path / "cdnow.txt"
    path.write_text(" 00001 19970101  1   11.77\n 00002 19971345  1   12.00\n 00003 19970102  2   abc\n 00004 1\n")
    with pytest.raises(CommandError) as excinfo:
        import_cdnow("--path", str(path))
    message = str(excinfo.value)
    assert "line 2: date" in message and "line 3: dollar_value" in message and "line 4: expected 4 columns" in message
    assert Customer.objects.count() == 0


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        import_cdnow("--path", str(tmp_path / "missing.txt"))
