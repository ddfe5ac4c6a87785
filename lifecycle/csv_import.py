"""CSV import of any ingest kind: the columns are the API's field names (docs/IMPORT.md).

Atomic by default: every line is validated, and one bad line means nothing is written. With
`skip_invalid`, good lines are written and bad ones are copied to a rejects file with their error.
"""

import codecs
import csv
import re
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
    refuse_utf16_and_utf32(path)
    # Undecodable bytes become lone surrogates, found line by line, so an error names its true line
    # (a strict decoder fails on a whole read buffer, lines before the bad one).
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(utf8_lines(handle))
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


_BYTE_ORDER_MARKS = [
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16's: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
]
_NOT_UTF8 = "the file is not UTF-8 encoded"
_SAVE_AS = 'save it as "CSV UTF-8"'
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def refuse_utf16_and_utf32(path: Path) -> None:
    """UTF-16 and UTF-32 (what spreadsheets call "Unicode text") decode as UTF-8 full of NULs: name them."""
    with path.open("rb") as handle:
        start = handle.readline(4096)
    for mark, name in _BYTE_ORDER_MARKS:
        if start.startswith(mark):
            raise CsvImportError([f"line 1: {_NOT_UTF8} but {name}; {_SAVE_AS}"])
    if b"\x00" in start:
        raise CsvImportError([f"line 1: {_NOT_UTF8} (it holds NUL bytes, as UTF-16 does); {_SAVE_AS}"])


def utf8_lines(handle: Iterator[str]) -> Iterator[str]:
    for number, line in enumerate(handle, start=1):
        escaped = _ESCAPED_BYTE.search(line)
        if escaped:
            byte = ord(escaped.group()) - 0xDC00
            raise CsvImportError(
                [f"line {number}: {_NOT_UTF8} (byte 0x{byte:02X} at character {escaped.start() + 1}); {_SAVE_AS}"]
            )
        yield line


def _read_header(reader: Iterator[list[str]], kind: IngestKind) -> list[str]:
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise CsvImportError(["line 1: the file is empty; expected a header line"]) from None
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
