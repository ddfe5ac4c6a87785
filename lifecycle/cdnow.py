"""Import of the CDNOW purchase history (SPEC §10): one completed order per customer and day.

The files ship inside the `lifetimes` package, which is installed without its dependencies and is
never imported (it pulls old numerical code); its files are located through its metadata.
"""

import functools
import importlib.metadata
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from lifecycle.ingest import ValidItem, records_write
from lifecycle.ingest_kinds import EARLIEST_EVENT, FUTURE_TOLERANCE, ORDERS
from lifecycle.models import Customer, OrderStatus


class CdnowFormat(StrEnum):
    MASTER = "master"  # customer id, date, number of CDs, dollar value; one header line
    SAMPLE = "sample"  # master customer id, sample customer id, date, number of CDs, dollar value


class CdnowFileError(ValueError):
    pass


@dataclass(frozen=True)
class CdnowImportResult:
    customers: int
    customers_created: int
    orders: int
    orders_created: int


def cdnow_default_path(file_format: CdnowFormat = CdnowFormat.MASTER) -> Path:
    """The CDNOW file inside the installed `lifetimes` distribution."""
    name = "CDNOW_sample.txt" if file_format == CdnowFormat.SAMPLE else "CDNOW_master.txt"
    try:
        distribution = importlib.metadata.distribution("lifetimes")
    except importlib.metadata.PackageNotFoundError:
        raise CdnowFileError(
            "The lifetimes package is not installed: pip install --no-deps lifetimes==0.11.3, or pass --path."
        ) from None
    return Path(str(distribution.locate_file(f"lifetimes/datasets/{name}")))


def cdnow_detect_format(lines: list[str]) -> CdnowFormat:
    for line in lines:
        fields = line.split()
        if fields and fields[0].isdigit():
            return CdnowFormat.SAMPLE if len(fields) == 5 else CdnowFormat.MASTER
    raise CdnowFileError("No data line found.")


def cdnow_parse(lines: list[str], file_format: CdnowFormat) -> dict[tuple[str, str], Decimal]:
    """Sum of dollar value per (customer id, YYYYMMDD); every malformed line is reported."""
    width = 5 if file_format == CdnowFormat.SAMPLE else 4
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    errors: list[str] = []
    latest = timezone.now() + FUTURE_TOLERANCE
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or (number == 1 and not fields[0].isdigit()):
            continue  # blank line or the master file's header
        if len(fields) != width:
            errors.append(f"line {number}: expected {width} columns, found {len(fields)}")
            continue
        customer, day, amount = fields[0], fields[width - 3], fields[width - 1]
        try:
            moment = _midnight_utc(day)
        except ValueError:
            errors.append(f"line {number}: date: {day!r} is not a YYYYMMDD date")
            continue
        if moment < EARLIEST_EVENT:
            errors.append(f"line {number}: date: {day!r} is before 1970-01-01")
            continue
        if moment > latest:
            errors.append(f"line {number}: date: {day!r} is in the future")
            continue
        try:
            value = Decimal(amount)
        except InvalidOperation:
            errors.append(f"line {number}: dollar_value: {amount!r} is not a number")
            continue
        if not value.is_finite() or value < 0:
            errors.append(f"line {number}: dollar_value: {amount!r} must be a non-negative number")
            continue
        totals[(customer, day)] += value
    if errors:
        raise CdnowFileError("\n".join(errors))
    return totals


def cdnow_customer_external_id(customer: str) -> str:
    return f"cdnow-{customer}"


def cdnow_import(*, path: Path, file_format: CdnowFormat | None = None) -> CdnowImportResult:
    """Import a CDNOW file in one transaction; a second run adds nothing."""
    lines = _ascii_lines(path)
    totals = cdnow_parse(lines, file_format or cdnow_detect_format(lines))
    first_day: dict[str, str] = {}
    for customer, day in totals:
        first_day[customer] = min(day, first_day.get(customer, day))
    orders = [
        ValidItem(
            index=index,
            values={
                "external_id": f"cdnow-{customer}-{day}",
                "placed_at": _midnight_utc(day),
                "amount": amount,
                "status": OrderStatus.COMPLETED,
            },
            customer_external_id=cdnow_customer_external_id(customer),
        )
        for index, ((customer, day), amount) in enumerate(sorted(totals.items()))
    ]
    with transaction.atomic():
        before = Customer.objects.count()
        Customer.objects.bulk_create(
            [
                Customer(external_id=cdnow_customer_external_id(customer), first_seen_at=_midnight_utc(day))
                for customer, day in sorted(first_day.items())
            ],
            ignore_conflicts=True,
            batch_size=2000,
        )
        customers_created = Customer.objects.count() - before
        result = records_write(kind=ORDERS, items=orders)
    return CdnowImportResult(
        customers=len(first_day),
        customers_created=customers_created,
        orders=len(orders),
        orders_created=result.count("created"),
    )


def _ascii_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        return data.decode("ascii").splitlines()
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CdnowFileError(f"line {line}: not an ASCII text file (byte 0x{data[exc.start]:02X})") from None


@functools.cache  # ~550 distinct days among 70k records
def _midnight_utc(day: str) -> datetime:
    return datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
