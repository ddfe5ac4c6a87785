"""Checking and importing CSV files of any layout, a chunk at a time (never a whole file in memory).

`export_check` maps and validates every line and compares it with what CLM stores, writing nothing: the preview
(the first records as CLM will store them, how many would be created, updated or left unchanged, every error with
its line and column). `export_import` writes: atomic (the whole run is checked first; one bad line and nothing is
written, then everything is written in one transaction) or skipping invalid lines (each chunk written in its own
transaction, bad lines reported). Platform exports go through `shop_batch_items` / `shop_items_write`, CLM's own
columns through `records_write`: the ingestion core every other path uses.
"""

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from django.db import transaction

from lifecycle.ingest import (
    INGEST_KINDS,
    IngestKind,
    ValidItem,
    channel_ids_by_key,
    records_validate,
    records_write,
)
from lifecycle.ingest_kinds import CUSTOMERS, ORDERS
from lifecycle.sources.exports.common import Layout, ReadContext, chunks
from lifecycle.sources.exports.reading import ExportFile, LineError, Row
from lifecycle.sources.models import Source
from lifecycle.sources.records import shop_batch_items, shop_items_write

MAX_ERRORS = 1000  # errors kept to show; all are counted
MAX_SKIPPED = 50
SAMPLE_ROWS = 10
Progress = Callable[[int, int], None]  # bytes done, bytes in all


@dataclass(frozen=True)
class ExportRun:
    """What to read: files with their layouts, the shop they come from (None: CLM's own columns), the time zone of
    times written without an offset, and for CLM's own kinds a column mapping (field -> the file's column)."""

    files: list[tuple[Path, Layout]]
    source: Source | None = None
    zone: tzinfo = UTC
    columns: dict[str, str] | None = None
    errors_kept: int = MAX_ERRORS  # errors kept in the report to show (all are counted)


@dataclass
class Report:
    rows: int = 0
    counts: dict[str, Counter[str]] = field(default_factory=dict)  # kind -> created / updated / unchanged
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0
    skipped: list[str] = field(default_factory=list)  # records that are no purchase (yet), guests without email
    skipped_count: int = 0
    sample: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    touched_customer_ids: set[int] = field(default_factory=set)
    errors_kept: int = MAX_ERRORS

    def error_add(self, error: LineError) -> None:
        self.error_count += 1
        if len(self.errors) < self.errors_kept:
            self.errors.append(error)

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "counts": {kind: dict(counts) for kind, counts in self.counts.items()},
            "errors": [{"line": e.line, "column": e.column, "message": e.message} for e in self.errors],
            "error_count": self.error_count,
            "skipped": self.skipped,
            "skipped_count": self.skipped_count,
            "sample": {kind: _table(rows) for kind, rows in self.sample.items() if rows},
        }


def _table(rows: list[dict[str, str]]) -> dict[str, list]:
    """Rows as columns and lists: a JSON object stored in PostgreSQL (jsonb) loses the order of its keys."""
    columns = list(dict.fromkeys(name for row in rows for name in row))
    return {"columns": columns, "rows": [[row.get(name, "") for name in columns] for row in rows]}


class ExportRejected(Exception):
    """An atomic import found errors: nothing was written."""

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__(f"{report.error_count} error(s)")


@dataclass
class _Part:
    """One kind's items of a chunk, with the line each came from and the file's names of their fields."""

    kind: IngestKind
    items: list[dict[str, Any]]
    lines: list[int]
    columns: Mapping[str, str]
    unique: bool = True  # a key met twice in the run is an error (not for customers an order export repeats)


@dataclass
class _Chunk:
    parts: list[_Part]
    errors: list[LineError]
    skipped: list[str]
    rows: int


@dataclass
class _State:
    """What one pass over a run carries from chunk to chunk."""

    report: Report
    seen: dict[str, dict[tuple, str]] = field(default_factory=dict)  # kind -> key -> where first seen
    counted: dict[str, set[tuple]] = field(default_factory=dict)  # kind -> keys counted already
    # Customers an order export repeats, as validated already: the same item again needs no second validation
    # (nor a second write: it is unchanged by then).
    repeated: set[tuple] = field(default_factory=set)
    channel_keys: dict[int, str] = field(default_factory=dict)


# --- reading a run into chunks of ingest items -------------------------------------------------------------


def _platform_chunks(run: ExportRun, layout: Layout, rows: Iterator[Row], context: ReadContext) -> Iterator[_Chunk]:
    source, reader = run.source, layout.reader
    if source is None or reader is None:
        raise ValueError(f"a {layout.label} is read for a source")
    for chunk in reader(rows, context):
        items = shop_batch_items(source=source, batch=chunk.batch)
        # shop_batch_items says why it leaves an order out as "order <id>: <why>".
        skipped = [
            f"line {chunk.lines.get(('orders', reason.removeprefix('order ').split(':', 1)[0]), 0)}: {reason}"
            for reason in items.skipped
        ]

        def lines_of(kind: str, part_items: list[dict[str, Any]], lines: dict = chunk.lines) -> list[int]:
            return [
                lines.get((kind, item["external_id"].removeprefix(source.id_prefix)))
                or lines.get(("emails", str(item.get("email", "")).lower()), 0)  # a guest
                for item in part_items
            ]

        parts = [
            _Part(
                CUSTOMERS,
                items.customers,
                lines_of("customers", items.customers),
                layout.columns.get("customers", {}),
                unique=layout.kind == "customers",
            ),
            _Part(ORDERS, items.orders, lines_of("orders", items.orders), layout.columns.get("orders", {})),
        ]
        yield _Chunk(parts, chunk.errors, skipped, chunk.rows)


def _clm_chunks(run: ExportRun, layout: Layout, rows: Iterator[Row]) -> Iterator[_Chunk]:
    kind = INGEST_KINDS[layout.kind]
    columns = run.columns or {}
    file_column = columns or {name: name for name in kind.csv_columns()}
    for group in chunks(rows):
        errors = [LineError(row.line, "", row.error) for row in group if row.error]
        good = [row for row in group if not row.error]
        # An empty cell means "not given", like a field left out of an API payload.
        items = [{name: row.raw(column) for name, column in file_column.items() if row.get(column)} for row in good]
        part = _Part(kind, items, [row.line for row in good], file_column)
        yield _Chunk([part], errors, [], len(group))


def _chunks(run: ExportRun, on_progress: Progress) -> Iterator[_Chunk]:
    context = ReadContext(source=run.source, zone=run.zone) if run.source is not None else None
    total = sum(path.stat().st_size for path, _ in run.files)
    done = 0
    for path, layout in run.files:
        with ExportFile(path) as export:
            rows = export.rows()
            if layout.platform and context is not None:
                read = _platform_chunks(run, layout, rows, context)
            else:
                read = _clm_chunks(run, layout, rows)
            for chunk in read:
                yield chunk
                on_progress(done + export.position(), total)
        done += export.size
        on_progress(done, total)


# --- validating, comparing and writing a chunk -------------------------------------------------------------


def _validate(chunk: _Chunk, state: _State) -> list[tuple[_Part, list[ValidItem]]]:
    report = state.report
    report.rows += chunk.rows
    for line_error in chunk.errors:
        report.error_add(line_error)
    report.skipped_count += len(chunk.skipped)
    report.skipped += chunk.skipped[: MAX_SKIPPED - len(report.skipped)]
    refused: dict[str, int] = {}  # customers refused in this chunk -> their line
    validated = []
    for part in chunk.parts:
        items, lines = part.items, part.lines
        if refused and part.kind is ORDERS:
            # An order of a refused customer cannot be written either.
            for item, line in zip(items, lines, strict=True):
                customer = item["customer_external_id"]
                if customer in refused:
                    column = part.columns.get("customer_external_id", "customer_external_id")
                    report.error_add(LineError(line, column, f"its customer is refused (line {refused[customer]})"))
            kept = [i for i, item in enumerate(items) if item["customer_external_id"] not in refused]
            items, lines = [items[i] for i in kept], [lines[i] for i in kept]
        if not part.unique:
            fresh = [i for i, item in enumerate(items) if _fingerprint(item) not in state.repeated]
            items, lines = [items[i] for i in fresh], [lines[i] for i in fresh]
        seen = state.seen.setdefault(part.kind.name, {}) if part.unique else None

        def describe(index: int, lines: list[int] = lines) -> str:
            return f"line {lines[index]}"

        valid, errors = records_validate(kind=part.kind, items=items, seen_keys=seen, describe=describe)
        for error in errors:
            report.error_add(LineError(lines[error.index], part.columns.get(error.field, error.field), error.message))
        if part.kind is CUSTOMERS:
            refused |= {items[error.index]["external_id"]: lines[error.index] for error in errors}
        if not part.unique:
            state.repeated |= {_fingerprint(items[item.index]) for item in valid}
        validated.append((part, valid))
    return validated


def _fingerprint(item: dict[str, Any]) -> tuple:
    return tuple(sorted(item.items()))


def _count(state: _State, kind: IngestKind, results: Mapping[tuple, str]) -> None:
    """Count each key once per run: an order export repeats a customer in chunk after chunk."""
    counted = state.counted.setdefault(kind.name, set())
    counts = state.report.counts.setdefault(kind.name, Counter())
    for key, status in results.items():
        if key not in counted:
            counted.add(key)
            counts[status] += 1


def _stored(kind: IngestKind, items: list[ValidItem]) -> dict[tuple, dict[str, Any]]:
    fields = {*kind.key_fields, *(name for item in items for name in item.values)}
    lookups = {f"{name}__in": {item.values[name] for item in items} for name in kind.key_fields}
    rows = kind.model._default_manager.filter(**lookups).values(*fields)
    return {tuple(row[name] for name in kind.key_fields): row for row in rows}


def _compare(kind: IngestKind, items: list[ValidItem]) -> dict[tuple, str]:
    """What writing the items would do to each key (as lifecycle.ingest decides it), without writing."""
    stored = _stored(kind, items) if items else {}
    results = {}
    for item in items:
        key = tuple(item.values[name] for name in kind.key_fields)
        row = stored.get(key)
        version = kind.version_field
        if row is None:
            results[key] = "created"
        elif version and item.values.get(version) and row.get(version) and item.values[version] < row[version]:
            results[key] = "unchanged"  # older than what is stored: the write would leave it
        else:
            values = dict(item.values)
            if kind.keep_stored is not None:
                kind.keep_stored(row, values)
            changed = any(row[name] != value for name, value in values.items())
            results[key] = "updated" if changed else "unchanged"
    return results


def _shown(value: Any, channel_keys: dict[int, str], name: str) -> str:
    if value is None:
        return ""
    if name.endswith("channel_id"):
        return channel_keys.get(value, str(value))
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _sample(state: _State, kind: IngestKind, items: list[ValidItem]) -> None:
    rows = state.report.sample.setdefault(kind.name, [])
    for item in items[: SAMPLE_ROWS - len(rows)]:
        shown = {"external_id": str(item.values.get("external_id", ""))}
        if item.customer_external_id is not None:
            shown["customer"] = item.customer_external_id
        for name, value in item.values.items():
            label = name.removesuffix("_id") if name.endswith("channel_id") else name
            shown.setdefault(label, _shown(value, state.channel_keys, name))
        rows.append(shown)


def _check_chunk(chunk: _Chunk, state: _State) -> None:
    for part, valid in _validate(chunk, state):
        _sample(state, part.kind, valid)
        _count(state, part.kind, _compare(part.kind, valid))


def _write_chunk(chunk: _Chunk, state: _State, source: Source | None) -> None:
    validated = _validate(chunk, state)
    with transaction.atomic():
        if source is not None:
            valid = {part.kind.name: items for part, items in validated}
            outcome = shop_items_write(customers=valid.get("customers", []), orders=valid.get("orders", []))
            _count(state, CUSTOMERS, {(key,): status for key, status in outcome.customer_results.items()})
            _count(state, ORDERS, {(key,): status for key, status in outcome.order_results.items()})
            state.report.touched_customer_ids |= outcome.touched_customer_ids
            return
        for part, items in validated:
            written = records_write(kind=part.kind, items=items)
            results = {tuple(item.key[name] for name in part.kind.key_fields): item.status for item in written.items}
            _count(state, part.kind, results)
            state.report.touched_customer_ids |= written.touched_customer_ids


# --- the two passes ----------------------------------------------------------------------------------------


def _new_state(run: ExportRun) -> _State:
    channel_keys = {pk: key for key, pk in channel_ids_by_key().items()}
    return _State(Report(errors_kept=run.errors_kept), channel_keys=channel_keys)


def export_check(*, run: ExportRun, on_progress: Progress = lambda done, total: None) -> Report:
    """Read, map and validate every line, and compare it with what is stored; write nothing."""
    state = _new_state(run)
    for chunk in _chunks(run, on_progress):
        _check_chunk(chunk, state)
    return state.report


def export_import(
    *, run: ExportRun, skip_invalid: bool = False, on_progress: Progress = lambda done, total: None
) -> Report:
    """Import the run. Atomic unless `skip_invalid`: raises ExportRejected, writing nothing, when any line is bad."""
    if skip_invalid:
        state = _new_state(run)
        for chunk in _chunks(run, on_progress):
            _write_chunk(chunk, state, run.source)
        return state.report
    # Checked whole first (the first half of the progress), so a bad last line does not undo a long write.
    checked = export_check(run=run, on_progress=lambda done, total: on_progress(done, 2 * total))
    if checked.error_count:
        raise ExportRejected(checked)
    state = _new_state(run)
    with transaction.atomic():
        for chunk in _chunks(run, lambda done, total: on_progress(total + done, 2 * total)):
            _write_chunk(chunk, state, run.source)
        if state.report.error_count:  # the data changed since the check (a customer deleted meanwhile)
            raise ExportRejected(state.report)
    return state.report
