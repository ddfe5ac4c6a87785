"""Batch ingestion shared by the REST API, CSV import and the CDNOW importer.

A batch is validated whole (every bad item reported with index, field and message) and then written
in one transaction as an upsert by the kind's key: new rows are created, changed rows updated, and
identical rows left untouched, so sending the same batch twice changes nothing the second time.

Each kind (customers, orders, ...) is registered once with `ingest_kind_register`; the `campaigns`
app registers its own kind, which keeps this module free of any import from it.
"""

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.functional import cached_property
from rest_framework import serializers
from rest_framework.fields import Field, SkipField, empty, get_error_detail
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from clm.base.api_errors import field_errors
from lifecycle.models import Channel, Customer
from lifecycle.services import customers_mark_changed

WRITE_CHUNK = 2000  # rows per query: `IN (...)` lists stay far below SQLite's 32,766 variables (SQLite ≥ 3.32)


@dataclass(frozen=True)
class IngestKind:
    """How one kind of record is validated and keyed.

    `serializer_class` validates one item; its validated data are model attribute values, plus
    `customer_external_id` / `create_customer` when the kind belongs to a customer (`event_time_field`
    names the event's time, which also bounds the customer's first_seen_at).
    """

    name: str
    model: type[models.Model]
    serializer_class: type[serializers.Serializer]
    key_fields: tuple[str, ...] = ("external_id",)
    event_time_field: str | None = None
    derive_external_id: bool = False
    create_defaults: Callable[[], dict[str, Any]] = dict
    # A field holding when the source changed the record: an item older than the stored row leaves it unchanged,
    # so webhooks and syncs that arrive out of order never roll a record back.
    version_field: str | None = None
    validate_batch: Callable[[list["ValidItem"]], list["ItemError"]] | None = None
    # Runs after the upsert; returns the indexes of items it changed further.
    after_write: Callable[[list["ValidItem"]], set[int]] | None = None
    # Given a stored row and an item's values for it, takes out of the values what must not overwrite the row
    # (the customers kind keeps an unsubscription that a later "not subscribed" would erase).
    keep_stored: Callable[[Mapping[str, Any], dict[str, Any]], None] | None = None
    # Runs in the writing transaction with every row a chunk created or updated (one call per chunk, so a hook
    # writes set-based): the customers kind logs consent changes with it.
    on_changes: Callable[[list["RowChange"]], None] | None = None

    @property
    def belongs_to_customer(self) -> bool:
        return self.event_time_field is not None

    def csv_columns(self) -> list[str]:
        return list(self.serializer_class().fields)

    def required_columns(self) -> list[str]:
        return [name for name, f in self.serializer_class().fields.items() if f.required]


INGEST_KINDS: dict[str, IngestKind] = {}


def ingest_kind_register(kind: IngestKind) -> IngestKind:
    INGEST_KINDS[kind.name] = kind
    return kind


@dataclass(frozen=True)
class ItemError:
    index: int
    field: str
    message: str
    code: str = "invalid"


@dataclass
class ValidItem:
    index: int
    values: dict[str, Any]
    customer_external_id: str | None = None
    create_customer: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowChange:
    """A row an item created (`stored` None) or updated: `stored` holds its values before, for the item's fields."""

    item: ValidItem
    row_id: int
    stored: dict[str, Any] | None
    changes: dict[str, Any]


ItemStatus = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class ItemResult:
    index: int
    status: ItemStatus
    id: int
    key: dict[str, Any]


@dataclass
class IngestResult:
    items: list[ItemResult] = field(default_factory=list)
    touched_customer_ids: set[int] = field(default_factory=set)

    def count(self, status: str) -> int:
        return sum(1 for item in self.items if item.status == status)


class IngestRejected(Exception):
    def __init__(self, errors: list[ItemError]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} error(s)")


# --- validation -----------------------------------------------------------------------------------


SURROGATE_CHARACTER = re.compile("[\ud800-\udfff]")  # what JSON and jsonb cannot store


class SurrogatesRefused(ProhibitSurrogateCharactersValidator):
    """DRF's check of every text field, its message and code, by one regular expression search instead of a Python
    loop over every character."""

    def __call__(self, value: Any) -> None:
        found = SURROGATE_CHARACTER.search(str(value))
        if found:
            raise serializers.ValidationError(self.message.format(code_point=ord(found.group())), code=self.code)


class IngestSerializer(serializers.Serializer):
    """The base of the ingest kinds' serializers: DRF's Serializer, validating an item as DRF does, but without
    DRF's per-field cost for the optional fields an item leaves out (a raised and caught SkipField each). Imports
    validate items by the hundred thousand; a customer item names 2 of its 13 fields."""

    @cached_property
    def _field_plan(self) -> list[tuple[str, Field, Callable[[Any], Any] | None, bool, str]]:
        dotted = [field.field_name for field in self._writable_fields if len(field.source_attrs) != 1]
        if dotted:
            raise ImproperlyConfigured(f"{type(self).__name__}: ingest fields store model attributes: {dotted}")
        for writable in self._writable_fields:
            writable.validators = [
                SurrogatesRefused() if isinstance(validator, ProhibitSurrogateCharactersValidator) else validator
                for validator in writable.validators
            ]
        return [
            (
                str(field.field_name),
                field,
                getattr(self, f"validate_{field.field_name}", None),
                not field.required and field.default is empty,  # left out: nothing to validate, nothing stored
                field.source_attrs[0],
            )
            for field in self._writable_fields
        ]

    def run_validators(self, value: Any) -> None:
        if self.validators:  # DRF would first gather the read-only fields' defaults, for validators there are none
            super().run_validators(value)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)  # DRF's message for a non-object
        validated: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for name, item_field, validate_method, skippable, attribute in self._field_plan:
            if skippable and name not in data:
                continue
            try:
                value = item_field.run_validation(data.get(name, empty))
                if validate_method is not None:
                    value = validate_method(value)
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
            except DjangoValidationError as exc:
                errors[name] = get_error_detail(exc)
            except SkipField:
                pass
            else:
                validated[attribute] = value
        if errors:
            raise serializers.ValidationError(errors)
        return validated


def channel_ids_by_key() -> dict[str, int]:
    return dict(Channel.objects.values_list("key", "id"))


def _item_errors(index: int, detail: Any) -> list[ItemError]:
    return [ItemError(**error) for error in field_errors(detail, index=index)]


def _derived_external_id(kind: IngestKind, item: ValidItem) -> str:
    """A stable id from an event's content, so that resending an id-less event does not duplicate it."""
    content = {"customer": item.customer_external_id, **item.values}
    canonical = json.dumps(content, sort_keys=True, default=_canonical_value, separators=(",", ":"))
    return f"{kind.name[:2]}-{hashlib.sha256(canonical.encode()).hexdigest()[:40]}"


def _canonical_value(value: Any) -> str:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else str(value)


def _key_of(kind: IngestKind, values: Mapping[str, Any]) -> tuple:
    return tuple(values[name] for name in kind.key_fields)


def records_validate(
    *,
    kind: IngestKind,
    items: Sequence[Any],
    seen_keys: dict[tuple, str] | None = None,
    describe: Callable[[int], str] = lambda index: f"item {index}",
) -> tuple[list[ValidItem], list[ItemError]]:
    """Validate a batch without writing; return the valid items and every error found.

    `seen_keys` carries keys across the chunks of one import so duplicates are caught file-wide;
    `describe` names an item in messages (a CSV import names lines).
    """
    channels = channel_ids_by_key()
    seen = seen_keys if seen_keys is not None else {}
    valid: list[ValidItem] = []
    errors: list[ItemError] = []
    # One serializer validates every item: building its fields per item cost more than validating them.
    serializer = kind.serializer_class(context={"channel_ids": channels})
    field_names = frozenset(serializer.fields)
    for index, raw in enumerate(items):
        if not isinstance(raw, Mapping):
            errors.append(ItemError(index, "", f"Expected an object, got {type(raw).__name__}.", "not_an_object"))
            continue
        # A misspelt optional field would otherwise be dropped without a word (a CSV's header is checked alike).
        unknown = [
            ItemError(index, str(name), _unknown_field(kind), "unknown_field")
            for name in raw
            if name not in field_names
        ]
        try:
            values = dict(serializer.run_validation(raw))
        except serializers.ValidationError as exc:
            errors += unknown + _item_errors(index, exc.detail)
            continue
        if unknown:
            errors += unknown
            continue
        item = ValidItem(
            index=index,
            values=values,
            customer_external_id=values.pop("customer_external_id", None),
            create_customer=values.pop("create_customer", False),
            extra={name: values.pop(name) for name in getattr(serializer, "extra_fields", ()) if name in values},
        )
        if kind.derive_external_id and not values.get("external_id"):
            values["external_id"] = _derived_external_id(kind, item)
        key = _key_of(kind, values)
        if key in seen:
            key_field = kind.key_fields[0] if len(kind.key_fields) == 1 else ""  # "": the item as a whole
            errors.append(ItemError(index, key_field, f"Duplicate of {seen[key]}.", "duplicate"))
            continue
        seen[key] = describe(index)
        valid.append(item)
    if kind.belongs_to_customer:
        errors += _unknown_customer_errors(valid)
    if kind.validate_batch is not None:
        errors += kind.validate_batch(valid)
    bad = {error.index for error in errors}
    return [item for item in valid if item.index not in bad], sorted(errors, key=lambda e: e.index)


def _unknown_field(kind: IngestKind) -> str:
    return f"Unknown field; the fields are: {', '.join(kind.csv_columns())}."


def _unknown_customer_errors(items: list[ValidItem]) -> list[ItemError]:
    # An item naming no customer (None) is reported unknown all the same: None matches no external id.
    wanted = {
        item.customer_external_id
        for item in items
        if not item.create_customer and item.customer_external_id is not None
    }
    known = set(customer_ids_by_external_id(wanted))
    return [
        ItemError(
            item.index,
            "customer_external_id",
            f"Unknown customer {item.customer_external_id!r}: send the customer first, or set create_customer "
            "to true to create it as a prospect.",
            "unknown_customer",
        )
        for item in items
        if not item.create_customer and item.customer_external_id not in known
    ]


def customer_ids_by_external_id(external_ids: Iterable[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    wanted = list(external_ids)
    for start in range(0, len(wanted), WRITE_CHUNK):
        chunk = wanted[start : start + WRITE_CHUNK]
        ids.update(Customer.objects.filter(external_id__in=chunk).values_list("external_id", "id"))
    return ids


# --- writing --------------------------------------------------------------------------------------


def records_write(*, kind: IngestKind, items: list[ValidItem]) -> IngestResult:
    """Upsert validated items by the kind's key; call inside a transaction."""
    result = IngestResult()
    event_time_field = kind.event_time_field  # set for the kinds that belong to a customer
    if event_time_field is not None:
        _resolve_customers(event_time_field, items, result)
    for start in range(0, len(items), WRITE_CHUNK):
        _upsert_chunk(kind, items[start : start + WRITE_CHUNK], result)
    if event_time_field is not None:
        _lower_first_seen(event_time_field, items)
    if kind.after_write is not None:
        changed = kind.after_write(items)
        result.items = [
            replace(item, status="updated") if item.index in changed and item.status == "unchanged" else item
            for item in result.items
        ]
    # In the writing transaction: the reclassification the change needs is not lost with a broker that is down.
    customers_mark_changed(customer_ids=result.touched_customer_ids)
    return result


def records_ingest(*, kind: IngestKind, items: Sequence[Any]) -> IngestResult:
    """Validate a whole batch and write it in one transaction, or raise IngestRejected and write nothing."""
    valid, errors = records_validate(kind=kind, items=items)
    if errors:
        raise IngestRejected(errors)
    with transaction.atomic():
        return records_write(kind=kind, items=valid)


def _customer_of(item: ValidItem) -> str:
    """The external id of the customer an item of a customer's kind belongs to (its serializer requires one)."""
    if item.customer_external_id is None:
        raise ValueError(f"item {item.index} names no customer")
    return item.customer_external_id


def _resolve_customers(event_time_field: str, items: list[ValidItem], result: IngestResult) -> None:
    ids = customer_ids_by_external_id({_customer_of(item) for item in items})
    first_event: dict[str, datetime] = {}
    for item in items:
        customer = _customer_of(item)
        if customer not in ids and item.create_customer:
            at = item.values[event_time_field]
            known = first_event.get(customer)
            first_event[customer] = at if known is None else min(known, at)
    if first_event:
        Customer.objects.bulk_create(
            [Customer(external_id=ext, first_seen_at=at) for ext, at in first_event.items()], batch_size=WRITE_CHUNK
        )
        ids.update(customer_ids_by_external_id(first_event))
    for item in items:
        item.values["customer_id"] = ids[_customer_of(item)]
    result.touched_customer_ids.update(ids.values())


def _existing_rows(kind: IngestKind, items: list[ValidItem]) -> dict[tuple, dict[str, Any]]:
    """Stored values of the rows the items would upsert, keyed like the items (plain values: no model instances)."""
    fields = {"pk", *kind.key_fields, *(name for item in items for name in item.values)}
    if kind.key_fields == ("external_id",):
        rows = kind.model._default_manager.filter(external_id__in=[item.values["external_id"] for item in items])
    else:
        # Narrow by each key field, then match whole keys in Python.
        lookups = {f"{name}__in": {item.values[name] for item in items} for name in kind.key_fields}
        rows = kind.model._default_manager.filter(**lookups)
    return {tuple(row[name] for name in kind.key_fields): row for row in rows.values(*fields)}


def _upsert_chunk(kind: IngestKind, items: list[ValidItem], result: IngestResult) -> None:
    existing = _existing_rows(kind, items)
    to_create: list[tuple[ValidItem, models.Model]] = []
    to_update: list[models.Model] = []
    changed_fields: set[str] = set()
    statuses: dict[int, ItemStatus] = {}
    written: list[RowChange] = []
    for item in items:
        row = existing.get(_key_of(kind, item.values))
        if row is None:
            to_create.append((item, kind.model(**{**kind.create_defaults(), **item.values})))
            continue
        if _is_stale(kind.version_field, item.values, row):
            statuses[item.index] = "unchanged"
            item.values["id"] = row["pk"]
            continue
        if kind.keep_stored is not None:
            kind.keep_stored(row, item.values)
        changes = {name: value for name, value in item.values.items() if row[name] != value}
        statuses[item.index] = "updated" if changes else "unchanged"
        if "customer_id" in changes:  # the record moved: its former customer's features change too
            result.touched_customer_ids.add(row["customer_id"])
        if changes:
            changed_fields.update(changes)
            stored = {name: value for name, value in row.items() if name != "pk"}
            to_update.append(kind.model(pk=row["pk"], **{**stored, **changes}))
            written.append(RowChange(item, row["pk"], row, changes))
        item.values["id"] = row["pk"]
    if to_create:
        created = kind.model._default_manager.bulk_create([instance for _, instance in to_create])
        if created and created[0].pk is None:  # backends that do not return ids on bulk insert
            keys = {_key_of(kind, item.values): item for item, _ in to_create}
            for key, row in _existing_rows(kind, [item for item, _ in to_create]).items():
                keys[key].values["id"] = row["pk"]
        else:
            for (item, _), instance in zip(to_create, created, strict=True):
                item.values["id"] = instance.pk
        statuses.update({item.index: "created" for item, _ in to_create})
        written += [RowChange(item, item.values["id"], None, item.values) for item, _ in to_create]
    if to_update:
        updated_at = next((f for f in kind.model._meta.fields if f.name == "updated_at"), None)
        if updated_at is not None:
            # bulk_update does not apply auto_now.
            now = timezone.now()
            for instance in to_update:
                setattr(instance, updated_at.attname, now)
            changed_fields.add("updated_at")
        kind.model._default_manager.bulk_update(to_update, sorted(changed_fields))
    if kind.on_changes is not None and written:
        kind.on_changes(written)
    for item in items:
        row_id = item.values.pop("id")
        item_key = {name: _plain(item.values[name]) for name in kind.key_fields}
        result.items.append(ItemResult(item.index, statuses[item.index], row_id, item_key))
        if kind.model is Customer:
            result.touched_customer_ids.add(row_id)


def _is_stale(version_field: str | None, values: dict[str, Any], row: dict[str, Any]) -> bool:
    if version_field is None:
        return False
    sent, stored = values.get(version_field), row.get(version_field)
    return sent is not None and stored is not None and sent < stored


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _lower_first_seen(event_time_field: str, items: list[ValidItem]) -> None:
    """A customer is first seen no later than their earliest event."""
    earliest: dict[int, datetime] = {}
    for item in items:
        at = item.values[event_time_field]
        customer_id = item.values["customer_id"]
        if customer_id not in earliest or at < earliest[customer_id]:
            earliest[customer_id] = at
    ids = list(earliest)
    now = timezone.now()
    stale = [
        Customer(pk=pk, first_seen_at=earliest[pk], updated_at=now)
        for start in range(0, len(ids), WRITE_CHUNK)
        for pk, first_seen_at in Customer.objects.filter(pk__in=ids[start : start + WRITE_CHUNK]).values_list(
            "pk", "first_seen_at"
        )
        if first_seen_at > earliest[pk]
    ]
    Customer.objects.bulk_update(stale, ["first_seen_at", "updated_at"], batch_size=WRITE_CHUNK)
