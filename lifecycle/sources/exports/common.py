"""What the platforms' export readers share: the context they read in, the chunks they yield, and how an order in an
export that names its customer only by email finds that customer's id."""

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from decimal import Decimal
from typing import TypeVar

from django.db.models.functions import Lower

from lifecycle.models import Customer
from lifecycle.sources.exports.reading import CellError, LineError, Row
from lifecycle.sources.models import Source
from lifecycle.sources.records import ShopBatch, ShopCustomer

CHUNK_RECORDS = 1000  # customers or orders per chunk: one validation and one write each
T = TypeVar("T")


@dataclass
class ReadContext:
    """What a reader needs besides the rows: the shop, the time zone of times written without an offset, and the
    customers seen so far by email (a customers export read first in the same run fills it)."""

    source: Source
    zone: tzinfo = UTC
    customer_ids: dict[str, str] = field(default_factory=dict)  # lower-cased email -> platform id ("" = none)


@dataclass
class ExportChunk:
    """Up to CHUNK_RECORDS records of an export as shop records; `lines` tells the line each came from."""

    batch: ShopBatch = field(default_factory=ShopBatch)
    lines: dict[tuple[str, str], int] = field(default_factory=dict)  # ("customers" | "orders", platform id) -> line
    errors: list[LineError] = field(default_factory=list)
    rows: int = 0  # rows of the file it covers (a Shopify order has a row per line item)

    def customer_add(self, customer: ShopCustomer, line: int) -> None:
        self.batch.customers.append(customer)
        self.lines[("customers", customer.id)] = line


def chunks(records: Iterable[T], size: int = CHUNK_RECORDS) -> Iterator[list[T]]:
    chunk: list[T] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def grouped(rows: Iterable[Row], key_column: str) -> Iterator[tuple[Row, int]]:
    """Consecutive rows with the same value in `key_column` as one record: its first row and how many rows it has.
    The platforms write an order with several line items as several rows, the order's fields on the first."""
    first: Row | None = None
    first_key = ""
    count = 0
    for row in rows:
        key = row.raw(key_column)
        if first is not None and key and not row.error and key == first_key:
            count += 1
            continue
        if first is not None:
            yield first, count
        first, first_key, count = row, key, 1
    if first is not None:
        yield first, count


def read_rows(
    records: Iterable[tuple[Row, int]],
    read: Callable[[Row, ExportChunk], None],
    prepare: Callable[[list[Row]], None] = lambda rows: None,
) -> Iterator[ExportChunk]:
    """Feed each record's first row to `read`, chunk by chunk (`prepare` sees a chunk's rows first: one query for
    all of them); a row `read` cannot map becomes the chunk's error with its line and column."""
    for group in chunks(records):
        chunk = ExportChunk(rows=sum(count for _, count in group))
        prepare([row for row, _ in group if not row.error])
        for row, _ in group:
            if row.error:
                chunk.errors.append(LineError(row.line, "", row.error))
                continue
            try:
                read(row, chunk)
            except CellError as error:
                chunk.errors.append(LineError(row.line, error.column, error.message))
        yield chunk


def read_orders_by_email(
    rows: Iterable[Row],
    context: ReadContext,
    read: Callable[[Row, ExportChunk], None],
    *,
    order_column: str,
    email_column: str,
) -> Iterator[ExportChunk]:
    """Orders that name their customer by email only: rows grouped by `order_column`, each chunk's emails looked up
    at once (`customers_by_email`) before its orders are read."""
    return read_rows(
        grouped(rows, order_column),
        read,
        prepare=lambda first_rows: customers_by_email(context, (row.get(email_column) for row in first_rows)),
    )


def currency_check(source: Source, currency: str, column: str) -> None:
    """An order in another currency than the shop's would mix money: refuse it, naming the field."""
    if currency and currency.upper() != source.currency.upper():
        raise CellError(column, f"{currency} is not the shop's currency {source.currency}")


def positive(value: Decimal, column: str) -> Decimal:
    if value < 0:
        raise CellError(column, f"{value} is negative")
    return value


# A platform's own customer ids: an email found on a customer of another source or of the API is not this shop's.
ID_PATTERNS = {"shopify": r"\d+", "woocommerce": r"\d+", "shopware": r"[0-9a-f]{32}"}


def customers_by_email(context: ReadContext, emails: Iterable[str]) -> None:
    """Look up the shop's customers of these emails that the run has not seen yet: in CLM's customers of this source
    (an export imported before, or the history import), one query for the whole chunk."""
    wanted = {email.lower() for email in emails if email} - set(context.customer_ids)
    if not wanted:
        return
    prefix = context.source.id_prefix
    pattern = f"^{re.escape(prefix)}{ID_PATTERNS[context.source.platform]}$"
    found = (
        Customer.objects.annotate(address=Lower("email"))
        .filter(address__in=wanted, external_id__regex=pattern)
        .order_by("external_id")
        .values_list("address", "external_id")
    )
    for address, external_id in found:
        context.customer_ids.setdefault(address, external_id.removeprefix(prefix))
    context.customer_ids.update({email: "" for email in wanted if email not in context.customer_ids})


def order_customer(context: ReadContext, email: str, name: str = "") -> ShopCustomer | None:
    """The order's customer when the email is a registered customer's; None makes it a guest order (keyed by the
    email like the platform's API import keys guests, `guest_customer_id`)."""
    platform_id = context.customer_ids.get(email.lower(), "") if email else ""
    return ShopCustomer(id=platform_id, email=email, name=name) if platform_id else None


def order_lines(chunk: ExportChunk, order_id: str, customer: ShopCustomer | None, email: str, line: int) -> None:
    """Remember where an order and its customer came from (a guest, whose id is derived from it, by email)."""
    chunk.lines[("orders", order_id)] = line
    if customer is not None:
        chunk.lines.setdefault(("customers", customer.id), line)
    elif email:
        chunk.lines.setdefault(("emails", email.lower()), line)


Reader = Callable[[Iterator[Row], ReadContext], Iterator[ExportChunk]]


@dataclass(frozen=True)
class Layout:
    """A kind of export file: how to recognise it by its header, and how to read it."""

    key: str  # e.g. shopify_orders; clm_<kind> for CLM's own columns
    platform: str  # a Platform value; "" for CLM's own columns
    kind: str  # customers or orders (CLM's own: any ingest kind)
    label: str  # how messages name it, e.g. "Shopify order export"
    signature: frozenset[str] = frozenset()  # columns that tell it from every other layout
    required: tuple[str, ...] = ()  # columns it cannot be read without
    reader: Reader | None = None  # None: CLM's own columns, read as the ingest kind's fields
    # For messages: each ingest kind's fields as the file's columns (a field not named here is named as it is).
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
