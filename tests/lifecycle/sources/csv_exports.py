"""Helpers of the CSV export tests: the fixture files, a source per platform, what CLM stored, and a generator of a
large Shopify orders export (the upload benchmark uses it too)."""

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lifecycle.models import Customer, Order
from lifecycle.sources.models import Source
from lifecycle.sources.platforms import PLATFORMS
from lifecycle.sources.records import DEFAULT_CHANNEL_RULES

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "csv"


def fixture(name: str) -> Path:
    return FIXTURES / name


def a_source(platform: str, *, currency: str = "EUR", name: str = "", id_prefix: str = "") -> Source:
    return Source.objects.create(
        name=name or f"{platform} shop",
        platform=platform,
        shop_url=f"https://{platform}.example",
        currency=currency,
        id_prefix=id_prefix,
        completed_statuses=list(PLATFORMS[platform].default_completed_statuses),
        channel_rules=DEFAULT_CHANNEL_RULES,
    )


def stored_customers() -> dict[str, tuple]:
    return {
        customer.external_id: (customer.email, customer.name, customer.email_consent, customer.sms_consent)
        for customer in Customer.objects.all()
    }


def stored_orders() -> dict[str, tuple]:
    return {
        order.external_id: (order.customer.external_id, order.placed_at, order.amount, order.status)
        for order in Order.objects.select_related("customer")
    }


def copy_with(source: Path, target: Path, replace: dict[str, str]) -> Path:
    text = source.read_text(encoding="utf-8-sig")
    for old, new in replace.items():
        text = text.replace(old, new)
    target.write_text(text, encoding="utf-8")
    return target


def shopify_orders_export(path: Path, *, target_bytes: int, customers: int = 20_000) -> int:
    """A Shopify orders export of about `target_bytes`, shaped as fixtures/csv/shopify_orders_export.csv (three line
    items per order, the order's fields on its first row); written as it goes. Returns the number of orders."""
    header = next(csv.reader(fixture("shopify_orders_export.csv").open(encoding="utf-8-sig")))
    start = datetime(2023, 1, 1, tzinfo=UTC)
    statuses = ["paid", "paid", "paid", "partially_refunded", "refunded", "pending"]
    orders = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\ufeff")
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        while handle.tell() < target_bytes:
            orders += 1
            email = f"customer{orders % customers}@example.com"
            created = (start + timedelta(minutes=7 * orders)).strftime("%Y-%m-%d %H:%M:%S +0200")
            status = statuses[orders % len(statuses)]
            first = {
                "Name": f"#{1000 + orders}",
                "Email": email,
                "Financial Status": status,
                "Currency": "EUR",
                "Subtotal": "59.70",
                "Total": "59.70",
                "Created at": created,
                "Billing Name": f"Customer {orders % customers}",
                "Billing Address1": "Hauptstraße 5",
                "Billing City": "Berlin",
                "Billing Zip": "'10115",
                "Billing Country": "DE",
                "Payment Method": "Shopify Payments",
                "Refunded Amount": {"partially_refunded": "10.00", "refunded": "59.70"}.get(status, "0.00"),
                "Id": str(5_600_000_000_000 + orders),
                "Risk Level": "Low",
                "Source": "web",
            }
            for item in range(3):
                row = {"Name": first["Name"], "Email": email, "Created at": created}
                row |= {"Lineitem quantity": "1", "Lineitem name": f"Product {item}", "Lineitem price": "19.90"}
                writer.writerow([({**first, **row} if item == 0 else row).get(column, "") for column in header])
    return orders


def csv_text(header: list[str], rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
