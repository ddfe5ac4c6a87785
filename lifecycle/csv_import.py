"""CSV import of any ingest kind: the columns are the API's field names (docs/IMPORT.md).

Atomic by default: every line is validated, and one bad line means nothing is written. With
`skip_invalid`, good lines are written and bad ones are copied to a rejects file with their error.
"""

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from lifecycle.ingest import IngestKind, ItemError, records_validate, records_write

CHUNK_ROWS = 1000
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


class CsvImportError(Exception):
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass
class CsvImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    touched_customer_ids: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class _Row:
    line: int
    cells: list[str]


def csv_import(
    *,
    kind: IngestKind,
    path: Path,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    on_progress: Callable[[int], None] = lambda rows: None,
) -> CsvImportResult:
    """Import a CSV file; raises CsvImportError (nothing written) when atomic and any line is bad."""
    result = CsvImportResult()
    seen_keys: dict[tuple, str] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = _read_header(reader, kind)
        rejects = _RejectsWriter(rejects_path, header) if skip_invalid and rejects_path else None
        try:
            with transaction.atomic():
                for chunk in _chunks(reader, len(header)):
                    rejected = _import_chunk(
                        kind, header, chunk, seen_keys, result, write=skip_invalid or not result.errors
                    )
                    if rejects is not None:
                        rejects.add(rejected)
                    on_progress(len(chunk))
                if result.errors and not skip_invalid:
                    raise CsvImportError(result.errors)
        finally:
            if rejects is not None:
                rejects.close()
    return result


def _read_header(reader: Iterator[list[str]], kind: IngestKind) -> list[str]:
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise CsvImportError(["line 1: the file is empty; expected a header line"]) from None
    except UnicodeDecodeError:
        raise CsvImportError(["line 1: the file is not UTF-8 encoded"]) from None
    expected = kind.csv_columns()
    if len(header) == 1:
        for delimiter, name in _OTHER_DELIMITERS.items():
            if delimiter in header[0]:
                raise CsvImportError([f"line 1: the header looks {name}-separated; CLM reads comma-separated files"])
    problems = []
    unknown = [name for name in header if name not in expected]
    if unknown:
        problems.append(f"line 1: unknown column(s): {', '.join(unknown)} (columns: {', '.join(expected)})")
    missing = [name for name in kind.required_columns() if name not in header]
    if missing:
        problems.append(f"line 1: missing required column(s): {', '.join(missing)}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        problems.append(f"line 1: duplicated column(s): {', '.join(duplicated)}")
    if problems:
        raise CsvImportError(problems)
    return header


def _chunks(reader: Iterator[list[str]], width: int) -> Iterator[list[_Row]]:
    chunk: list[_Row] = []
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except UnicodeDecodeError:
            raise CsvImportError([f"line {line + 1}: the file is not UTF-8 encoded"]) from None
        except csv.Error as exc:
            raise CsvImportError([f"line {line + 1}: {exc}"]) from None
        start, line = line + 1, reader.line_num  # type: ignore[attr-defined]
        if cells:
            chunk.append(_Row(start, cells))
        if len(chunk) == CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _import_chunk(
    kind: IngestKind, header: list[str], chunk: list[_Row], seen_keys: dict, result: CsvImportResult, *, write: bool
) -> list[tuple[_Row, list[str]]]:
    """Validate a chunk, write its valid rows when `write`, and return the rejected rows with their errors."""
    items: list[dict[str, str] | None] = []
    shape_errors: list[ItemError] = []
    for offset, row in enumerate(chunk):
        if len(row.cells) != len(header):
            shape_errors.append(ItemError(offset, "line", f"expected {len(header)} fields, found {len(row.cells)}"))
            items.append(None)
        else:
            # An empty cell means "not given", like a field left out of an API payload.
            items.append({name: value for name, value in zip(header, row.cells, strict=True) if value.strip()})
    valid, errors = records_validate(
        kind=kind, items=[item or {} for item in items], seen_keys=seen_keys, describe=lambda i: f"line {chunk[i].line}"
    )
    bad = {error.index for error in shape_errors}
    errors = shape_errors + [error for error in errors if error.index not in bad]
    valid = [item for item in valid if item.index not in bad]
    messages: dict[int, list[str]] = {}
    for error in sorted(errors, key=lambda e: e.index):
        result.errors.append(f"line {chunk[error.index].line}: {error.field}: {error.message}")
        messages.setdefault(error.index, []).append(f"{error.field}: {error.message}")
    result.rejected += len(messages)
    if write and valid:
        written = records_write(kind=kind, items=valid)
        result.created += written.count("created")
        result.updated += written.count("updated")
        result.unchanged += written.count("unchanged")
        result.touched_customer_ids |= written.touched_customer_ids
    return [(chunk[index], row_messages) for index, row_messages in messages.items()]


class _RejectsWriter:
    """Copies rejected lines, with their errors in a last column, so they can be fixed and re-imported."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self._handle = path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._handle)
        self._writer.writerow([*header, "errors"])

    def add(self, rejected: list[tuple[_Row, list[str]]]) -> None:
        for row, messages in rejected:
            self._writer.writerow([*row.cells, f"line {row.line}: " + "; ".join(messages)])

    def close(self) -> None:
        self._handle.close()
