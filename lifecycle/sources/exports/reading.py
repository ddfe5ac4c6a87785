"""Reading an export file: what it is (a CSV at all? UTF-8?), its header and delimiter, its rows one at a time with
their line numbers (never the whole file in memory), and the value formats the platforms write."""

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

from lifecycle.csv_import import CsvImportError, refuse_utf16_and_utf32, utf8_lines

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
# What people upload instead of a CSV file, by its first bytes.
NOT_CSV = {
    b"PK\x03\x04": "a ZIP archive (an Excel .xlsx workbook is one): save the sheet as CSV UTF-8",
    b"\xd0\xcf\x11\xe0": "an Excel 97-2003 workbook (.xls): save the sheet as CSV UTF-8",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x1f\x8b": "a gzip archive: unpack it first",
}
PROGRESS_EVERY = 1000  # rows between two position reports


class ExportFileError(Exception):
    """The file as a whole cannot be read (not a CSV, not UTF-8, no header): nothing of it is imported."""


@dataclass(frozen=True)
class LineError:
    """A problem with one line of the file; `column` is the file's column ("" for the line as a whole)."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: {self.column}" if self.column else f"line {self.line}"
        return f"{where}: {self.message}"


class CellError(ValueError):
    def __init__(self, column: str, message: str) -> None:
        self.column, self.message = column, message
        super().__init__(f"{column}: {message}")


@dataclass(slots=True)
class Row:
    """A data row: its cells by position, `index` (shared by all rows) naming the positions. No dict per row: a
    Shopify order export has some 80 columns and a row per line item, most of which are never looked at."""

    line: int
    values: list[str]
    index: Mapping[str, int]
    error: str = ""  # a row of another width than the header's: its cells are not read

    def has(self, column: str) -> bool:
        return column in self.index

    def raw(self, column: str) -> str:
        position = self.index.get(column)
        return self.values[position] if position is not None else ""

    def get(self, column: str) -> str:
        return self.raw(column).strip()

    def required(self, column: str) -> str:
        value = self.get(column)
        if not value:
            raise CellError(column, "empty; a value is required")
        return value


def _refuse_other_files(path: Path) -> None:
    with path.open("rb") as handle:
        start = handle.read(8)
    for magic, what in NOT_CSV.items():
        if start.startswith(magic):
            raise ExportFileError(f"this is not a CSV file but {what}")
    try:
        refuse_utf16_and_utf32(path)
    except CsvImportError as exc:
        raise ExportFileError(exc.errors[0]) from None


def _delimiter(first_line: str) -> str:
    counts = {delimiter: first_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    if not counts[best]:
        raise ExportFileError("line 1: no comma, semicolon or tab separates the columns: this is not a CSV file")
    return best


class ExportFile:
    """An export opened for reading: `header` and `delimiter` at once, then `rows()` streamed from disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._handle: IO[str] | None = None
        self.header: list[str] = []
        self.delimiter = ","

    def __enter__(self) -> "ExportFile":
        _refuse_other_files(self.path)
        # Undecodable bytes become lone surrogates that utf8_lines reports with their line (csv_import does alike).
        self._handle = self.path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
        try:
            first = self._handle.readline()
            if not first.strip():
                raise ExportFileError("line 1: the file is empty; expected a header line")
            self.delimiter = _delimiter(next(utf8_lines(iter([first]))))
            self.header = [name.strip() for name in next(csv.reader([first], delimiter=self.delimiter))]
        except CsvImportError as exc:
            self.close()
            raise ExportFileError(exc.errors[0]) from None
        except ExportFileError:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def position(self) -> int:
        """Bytes read so far (the reader reads ahead a buffer: good enough for a progress bar)."""
        handle = self._handle
        return handle.buffer.tell() if handle is not None else self.size  # type: ignore[attr-defined]

    def rows(self) -> Iterator[Row]:
        """The data rows after the header; blank lines are left out. Raises ExportFileError on unreadable bytes."""
        if self._handle is None:
            raise RuntimeError("open the ExportFile first")
        lines = _numbered(self._handle)
        reader = csv.reader(utf8_lines(lines), delimiter=self.delimiter)
        width, line = len(self.header), 1
        index = {name: position for position, name in reversed(list(enumerate(self.header)))}  # the first of a name
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except CsvImportError as exc:
                raise ExportFileError(exc.errors[0]) from None
            except csv.Error as exc:
                raise ExportFileError(f"line {line + 1}: {exc}") from None
            start, line = line + 1, reader.line_num  # _numbered stands an empty line in for the header
            if not any(cells):
                continue
            if len(cells) != width:
                yield Row(start, [], {}, f"expected {width} fields, found {len(cells)}")
            else:
                yield Row(start, cells, index)


def _numbered(handle: IO[str]) -> Iterator[str]:
    """The lines after the header. utf8_lines counts from 1, so its messages would name the line before: the
    header is put back as an empty first line."""
    yield "\n"
    yield from handle


# --- the values the platforms write -----------------------------------------------------------------


def decimal_value(row: Row, column: str, *, default: Decimal | None = None) -> Decimal:
    text = row.get(column)
    if not text:
        if default is not None:
            return default
        raise CellError(column, "empty; an amount is required")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CellError(column, f"{text!r} is not a decimal number (like 19.90)") from None
    if not value.is_finite():
        raise CellError(column, f"{text!r} is not a decimal number (like 19.90)")
    return value


def time_value(row: Row, column: str, *, formats: tuple[str, ...], zone: tzinfo = UTC) -> datetime:
    """A date-time in one of `formats` (strptime), or ISO 8601; one without an offset is read in `zone`."""
    text = row.required(column)
    try:  # the C parser first: ISO 8601, which Shopify's "2025-10-07 09:50:26 +0200" is but for the space
        parsed = datetime.fromisoformat(text.replace(" +", "+").replace(" -", "-"))
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    except ValueError:
        pass
    for pattern in formats:
        try:
            parsed = datetime.strptime(text, pattern)  # noqa: DTZ007 - made aware below
            break
        except ValueError:
            continue
    else:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise CellError(column, f"{text!r} is not a date and time (like {_example(formats)})") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def _example(formats: tuple[str, ...]) -> str:
    return datetime(2025, 10, 7, 9, 50, 26, tzinfo=UTC).strftime(formats[0]).replace("+0000", "+0200")


def yes_no(row: Row, column: str) -> bool | None:
    """yes/no (true/false, 1/0) as a bool; None when the column is missing or the cell empty."""
    text = row.get(column).lower()
    if not text:
        return None
    if text in ("yes", "true", "1"):
        return True
    if text in ("no", "false", "0"):
        return False
    raise CellError(column, f"{text!r} is neither yes nor no")
