"""The platforms' own CSV exports imported as downloaded (`import_csv --format …`): what CLM stores from each, that
the same shop by API history and by CSV gives the same records, and each bad input refused with line and column."""

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from lifecycle.models import ConsentState, Customer, Order, OrderStatus
from lifecycle.sources.models import Platform, Source
from lifecycle.sources.records import ShopBatch, guest_customer_id, shop_batch_ingest
from lifecycle.sources.shopify.mapping import graphql_customer, graphql_order
from tests.lifecycle.sources.csv_exports import a_source, copy_with, fixture, stored_customers, stored_orders
from tests.lifecycle.sources.shopify_shop import Consent, Shop, ShopifyCustomer, ShopifyOrder, graphql_nodes, utc

pytestmark = pytest.mark.django_db

SOPHIE, JUERGEN, ANA = "7210448301122", "7210448301123", "7210448301124"
SUBSCRIBED, NOT_SUBSCRIBED = ConsentState.SUBSCRIBED, ConsentState.NOT_SUBSCRIBED


def import_csv(*args: str | Path) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_csv", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args: str | Path) -> str:
    err = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("import_csv", *map(str, args), stdout=StringIO(), stderr=err)
    return f"{err.getvalue()}\n{raised.value}"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- Shopify -----------------------------------------------------------------------------------------------


def test_a_shopify_shop_comes_in_from_its_customer_and_order_exports_as_downloaded():
    a_source(Platform.SHOPIFY, name="Boutique")
    # Orders named first: the customers export is read first all the same, to tie the orders' emails to ids.
    out, _ = import_csv(
        "--format", "shopify", "--source", "Boutique",
        fixture("shopify_orders_export.csv"), fixture("shopify_customers_export.csv"),
    )  # fmt: skip

    guest = guest_customer_id("guest@example.org")
    assert stored_customers() == {
        SOPHIE: ("sophie.gallas@example.com", "Sophie Gallas", SUBSCRIBED, NOT_SUBSCRIBED),
        JUERGEN: ("juergen@example.de", "Jürgen Müller", NOT_SUBSCRIBED, SUBSCRIBED),
        ANA: ("ana@example.com", "Ana Díaz", NOT_SUBSCRIBED, NOT_SUBSCRIBED),
        guest: ("guest@example.org", "", NOT_SUBSCRIBED, NOT_SUBSCRIBED),
    }
    assert stored_orders() == {
        # three line items, one order; its time in UTC
        "5678901234501": (SOPHIE, at("2025-10-07 09:50:26+02:00"), Decimal("53.91"), OrderStatus.COMPLETED),
        # partially refunded: the amount is what was kept
        "5678901234502": (JUERGEN, at("2025-10-08 18:03:11+02:00"), Decimal("29.90"), OrderStatus.COMPLETED),
        "5678901234503": (guest, at("2025-10-09 07:15:00+02:00"), Decimal("20.00"), OrderStatus.COMPLETED),
        "5678901234504": (SOPHIE, at("2025-10-10 12:00:00+02:00"), Decimal("54.00"), OrderStatus.REFUNDED),
        "5678901234506": (JUERGEN, at("2025-10-12 10:00:00+02:00"), Decimal("29.90"), OrderStatus.CANCELLED),
    }  # #1005 is pending: no purchase yet
    assert "customers: 4 created" in out and "orders: 5 created" in out and "1 order(s) left out" in out
    assert Customer.objects.get(external_id=SOPHIE).first_seen_at == at("2025-10-07 09:50:26+02:00")


def test_importing_the_same_exports_again_changes_nothing():
    a_source(Platform.SHOPIFY, name="Boutique")
    files = [fixture("shopify_customers_export.csv"), fixture("shopify_orders_export.csv")]
    import_csv("--format", "shopify", "--source", "Boutique", *files)
    before = (stored_customers(), stored_orders())

    out, _ = import_csv("--format", "shopify", "--source", "Boutique", *files)

    assert (stored_customers(), stored_orders()) == before
    assert "customers: 0 created, 0 updated, 4 unchanged" in out
    assert "orders: 0 created, 0 updated, 5 unchanged" in out


def test_an_order_export_imported_later_finds_its_customers_by_email():
    source = a_source(Platform.SHOPIFY, name="Boutique", id_prefix="b-")
    import_csv("--format", "shopify", "--source", str(source.pk), fixture("shopify_customers_export.csv"))
    import_csv("--format", "shopify", "--source", "Boutique", fixture("shopify_orders_export.csv"))

    assert stored_orders()["b-5678901234501"][0] == f"b-{SOPHIE}"
    assert stored_orders()["b-5678901234503"][0] == f"b-{guest_customer_id('guest@example.org')}"
    assert Customer.objects.count() == 4


def test_the_same_shop_by_api_history_and_by_its_exports_gives_the_same_customers_and_orders():
    """The Admin API's answers for the shop the fixture exports come from (graphql mapping), then the exports. The
    same holds for a shop brought in by webhooks too, in any order: test_three_ways.py."""
    source = a_source(Platform.SHOPIFY, name="Boutique")
    created, yes, no = utc("2025-10-01 08:00"), Consent("subscribed"), Consent("not_subscribed")
    sophie = ShopifyCustomer(int(SOPHIE), "Sophie", "Gallas", "sophie.gallas@example.com", created, yes, no)
    juergen = ShopifyCustomer(int(JUERGEN), "Jürgen", "Müller", "juergen@example.de", created, no, yes)
    ana = ShopifyCustomer(int(ANA), "Ana", "Díaz", "ana@example.com", created, no)
    orders = [
        ShopifyOrder(5678901234501, 1001, utc("2025-10-07 07:50:26"), Decimal("53.91"), "paid", sophie),
        ShopifyOrder(
            5678901234502, 1002, utc("2025-10-08 16:03:11"), Decimal("39.90"), "paid", juergen,
            refunds=((utc("2025-10-09 10:00"), Decimal("10.00")),),
        ),
        ShopifyOrder(5678901234503, 1003, utc("2025-10-09 05:15"), Decimal("20.00"), "paid", None, "guest@example.org"),
        ShopifyOrder(
            5678901234504, 1004, utc("2025-10-10 10:00"), Decimal("54.00"), "paid", sophie,
            refunds=((utc("2025-10-11 10:00"), Decimal("54.00")),),
        ),
        ShopifyOrder(5678901234505, 1005, utc("2025-10-11 06:30"), Decimal("15.00"), "pending", ana),
        ShopifyOrder(
            5678901234506, 1006, utc("2025-10-12 08:00"), Decimal("29.90"), "authorized", juergen,
            cancelled=utc("2025-10-12 09:00"),
        ),
    ]  # fmt: skip
    customers, nodes = graphql_nodes(Shop([sophie, juergen, ana], orders, end=utc("2025-11-01 00:00")))
    batch = ShopBatch(customers=[graphql_customer(n) for n in customers], orders=[graphql_order(n) for n in nodes])
    shop_batch_ingest(source=source, batch=batch)
    by_api = (stored_customers(), stored_orders())
    Order.objects.all().delete()
    Customer.objects.all().delete()

    import_csv(
        "--format", "shopify", "--source", "Boutique",
        fixture("shopify_customers_export.csv"), fixture("shopify_orders_export.csv"),
    )  # fmt: skip

    assert (stored_customers(), stored_orders()) == by_api


# --- WooCommerce -------------------------------------------------------------------------------------------


def test_a_woocommerce_shop_comes_in_from_its_exports_in_the_sites_time_zone():
    a_source(Platform.WOOCOMMERCE, name="Woo", currency="USD")
    out, _ = import_csv(
        "--format", "woocommerce", "--source", "Woo", "--timezone", "America/Phoenix",
        fixture("woocommerce_orders.csv"), fixture("woocommerce_customers.csv"),
    )  # fmt: skip

    bo = guest_customer_id("bo@example.com")
    assert set(stored_customers()) == {"12", bo}
    assert Customer.objects.get(external_id="12").first_seen_at == at("2024-02-01 10:00:00-07:00")
    assert stored_orders() == {
        "4991": ("12", at("2024-05-30 22:00:00-07:00"), Decimal("30.00"), OrderStatus.COMPLETED),
        "4992": (bo, at("2024-05-31 00:37:00-07:00"), Decimal("45.50"), OrderStatus.COMPLETED),  # processing: paid
        "4993": ("12", at("2024-06-02 09:00:00-07:00"), Decimal("20.00"), OrderStatus.REFUNDED),
        "4995": ("12", at("2024-06-04 12:00:00-07:00"), Decimal("18.00"), OrderStatus.CANCELLED),
    }  # 4994 is pending
    assert "1 order(s) left out" in out
    # The export says nothing of the visit: no channel made up (`direct` would be a guess).
    assert set(Order.objects.values_list("channel", "campaign_code")) == {(None, "")}


def test_a_woocommerce_one_row_per_item_export_is_one_order_per_order_id(tmp_path):
    a_source(Platform.WOOCOMMERCE, name="Woo", currency="USD")
    lines = fixture("woocommerce_orders.csv").read_text().splitlines()
    path = tmp_path / "orders.csv"
    path.write_text("\n".join([lines[0], lines[1], lines[1], lines[1], lines[2]]) + "\n")

    import_csv("--format", "woocommerce", "--source", "Woo", path)

    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["4991", "4992"]


# --- Shopware 6 --------------------------------------------------------------------------------------------

LENA, MAX = "0191c5a0e5c372b1a4c8a3f1d2e4b601", guest_customer_id("max@example.de")
COMPLETED_STATE_ID = "5c4b3a2918f74e6dbd0c1a2b3c4d5e6f"


def test_a_shopware_default_orders_export_counts_the_states_listed_by_id_as_completed():
    source = a_source(Platform.SHOPWARE, name="SW")
    import_csv("--format", "shopware", "--source", "SW", fixture("shopware_orders.csv"))
    assert Order.objects.count() == 0  # the profile names states by id: none is a completed status yet

    source.completed_statuses = [*source.completed_statuses, COMPLETED_STATE_ID]
    source.save()
    import_csv(
        "--format", "shopware", "--source", "SW", fixture("shopware_customers.csv"), fixture("shopware_orders.csv")
    )

    assert stored_orders() == {
        "0191d0c4a1b27c3e9f8a7b6c5d4e3f01": (LENA, at("2024-05-02 13:45:10.123+00:00"), Decimal("122.40"), "completed"),
        "0191d0c4a1b27c3e9f8a7b6c5d4e3f02": (MAX, at("2024-05-03 08:00:00+00:00"), Decimal("59.90"), "completed"),
    }
    assert stored_customers()[LENA][:2] == ("lena@example.de", "Lena Schmidt")
    assert MAX in stored_customers()  # a guest account: keyed by email, as the API import keys Shopware's guests
    assert set(Order.objects.values_list("channel", "campaign_code")) == {(None, "")}  # the export has no visit


def test_a_shopware_export_with_the_state_mappings_reads_payments_refunds_and_cancellations():
    a_source(Platform.SHOPWARE, name="SW")
    import_csv(
        "--format", "shopware", "--source", "SW",
        fixture("shopware_customers.csv"), fixture("shopware_orders_with_states.csv"),
    )  # fmt: skip

    assert {external_id: row[3] for external_id, row in stored_orders().items()} == {
        "0191d0c4a1b27c3e9f8a7b6c5d4e3f01": OrderStatus.COMPLETED,
        "0191d0c4a1b27c3e9f8a7b6c5d4e3f02": OrderStatus.REFUNDED,
        "0191d0c4a1b27c3e9f8a7b6c5d4e3f04": OrderStatus.CANCELLED,
    }  # 10002 is open and unpaid


# --- bad input: nothing written, a clear message -----------------------------------------------------------


def test_an_export_of_another_platform_is_refused_saying_what_it_looks_like():
    a_source(Platform.SHOPIFY, name="Boutique")
    message = refused("--format", "shopify", "--source", "Boutique", fixture("woocommerce_orders.csv"))
    assert "this looks like a WooCommerce order export, not Shopify" in message
    message = refused("--format", "shopware", "--source", "Boutique", fixture("shopware_orders.csv"))
    assert "is a Shopify shop, not Shopware 6" in message
    assert Order.objects.count() == Customer.objects.count() == 0


def test_an_order_in_another_currency_is_refused_naming_line_and_field(tmp_path):
    a_source(Platform.SHOPIFY, name="Boutique")
    path = copy_with(
        fixture("shopify_orders_export.csv"), tmp_path / "orders.csv", {",EUR,39.90,": ",CHF,39.90,"}
    )  # #1002, on line 5 (after the header and #1001's three rows)

    message = refused("--format", "shopify", "--source", "Boutique", path)

    assert "line 5: Currency: CHF is not the shop's currency EUR" in message
    assert "nothing was imported" in message
    assert Order.objects.count() == Customer.objects.count() == 0

    out, err = import_csv("--format", "shopify", "--source", "Boutique", "--skip-invalid", path)
    assert "orders: 4 created" in out and "line 5: Currency: CHF" in err
    assert not Order.objects.filter(external_id="5678901234502").exists()
    assert "5,Currency,CHF is not the shop's currency EUR" in (tmp_path / "orders.rejects.csv").read_text()


def test_a_value_that_cannot_be_read_is_reported_with_line_and_column(tmp_path):
    a_source(Platform.SHOPIFY, name="Boutique")
    path = copy_with(
        fixture("shopify_orders_export.csv"),
        tmp_path / "orders.csv",
        {"2025-10-09 07:15:00 +0200": "09/10/2025", ",54.00,,,Standard": ",54,00,,,Standard"},
    )

    message = refused("--format", "shopify", "--source", "Boutique", path)

    assert "line 6: Created at: '09/10/2025' is not a date and time (like 2025-10-07 09:50:26 +0200)" in message
    assert "line 7: line: expected" in message or "line 7: expected" in message  # a comma too many: the row's width
    assert Order.objects.count() == 0


def test_a_file_in_another_encoding_is_refused_saying_so(tmp_path):
    a_source(Platform.SHOPIFY, name="Boutique")
    latin1 = tmp_path / "customers.csv"
    latin1.write_bytes(fixture("shopify_customers_export.csv").read_text(encoding="utf-8-sig").encode("latin-1"))
    utf16 = tmp_path / "customers16.csv"
    utf16.write_bytes(fixture("shopify_customers_export.csv").read_text(encoding="utf-8-sig").encode("utf-16"))

    message = refused("--format", "shopify", "--source", "Boutique", latin1)
    assert "line 3: the file is not UTF-8 encoded (byte 0xFC" in message and 'save it as "CSV UTF-8"' in message
    assert "not UTF-8 encoded but UTF-16" in refused("--format", "shopify", "--source", "Boutique", utf16)
    assert Customer.objects.count() == 0


def test_a_file_that_is_not_csv_is_refused(tmp_path):
    a_source(Platform.SHOPIFY, name="Boutique")
    workbook = tmp_path / "orders.xlsx"
    workbook.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(200))
    prose = tmp_path / "notes.csv"
    prose.write_text("Dear customer\nthank you\n")

    assert "not a CSV file but a ZIP archive (an Excel .xlsx" in refused(
        "--format", "shopify", "--source", "Boutique", workbook
    )
    assert "this is not a CSV file" in refused("--format", "shopify", "--source", "Boutique", prose)


def test_format_needs_a_source_and_a_new_one_needs_its_currency(tmp_path):
    orders = fixture("shopify_orders_export.csv")
    assert "--format needs --source" in refused("--format", "shopify", orders)
    assert "add --currency to create a CSV-only source" in refused("--format", "shopify", "--source", "New", orders)

    out, _ = import_csv("--format", "shopify", "--source", "New", "--currency", "eur", orders)

    source = Source.objects.get(name="New")
    assert (source.platform, source.currency, source.credentials, source.shop_url) == ("shopify", "EUR", {}, "")
    assert "Created the CSV-only source 'New' (EUR)" in out and Order.objects.count() == 5


def test_a_file_in_clms_own_columns_is_not_an_export(tmp_path):
    a_source(Platform.SHOPIFY, name="Boutique")
    path = tmp_path / "customers.csv"
    path.write_text("external_id,email\nc1,a@example.com\n")
    assert "CLM's own columns, not a Shopify export: import it without --format" in refused(
        "--format", "shopify", "--source", "Boutique", path
    )
