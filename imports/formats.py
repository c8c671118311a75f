"""Reading an import's file as it is stored (``ImportChunk``, 1 MiB each), one record at a time:
CSV (UTF-8, with or without BOM, a header row) or NDJSON (one JSON object per line). Memory holds
one chunk and one record, whatever the size of the file.

A problem of the file as a whole (not UTF-8, a missing required header, an unknown column, a
broken CSV structure) raises :class:`FileRefused`; a problem of one row is a :class:`Record` with an
error, and the rows after it are read as usual.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from imports.kinds import ImportKind
from imports.models import ImportChunk
from stateset.bulk import CellInvalid, RowError
from stateset.csvio import unescape_cell

# A cell may hold a product description (20,000 characters) or attributes (64 KiB of JSON);
# the csv module's default limit (128 KiB) is kept well above that, per cell.
csv.field_size_limit(1024 * 1024)


class FileRefused(Exception):
    """The whole file is refused: the import ends ``failed`` with this one error."""

    def __init__(self, code: str, message: str, *, row: int | None = None,
                 column: str | None = None):
        self.code, self.message, self.row, self.column = code, message, row, column
        super().__init__(message)

    def as_error(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "code": self.code, "message": self.message}


@dataclass
class Record:
    row: int  # 1 is the first data row (after the header)
    values: dict[str, Any]
    errors: list[RowError]


class ChunkStream(io.RawIOBase):
    """The stored file as a binary stream, read chunk by chunk (one query per chunk)."""

    def __init__(self, import_id: uuid.UUID):
        self.import_id = import_id
        self._seq = 0
        self._data = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._pos >= len(self._data):
            data = (ImportChunk.objects.filter(import_record_id=self.import_id, seq=self._seq)
                    .values_list("data", flat=True).first())
            if data is None:
                return 0
            self._data, self._pos, self._seq = bytes(data), 0, self._seq + 1
        size = min(len(buffer), len(self._data) - self._pos)
        buffer[:size] = self._data[self._pos : self._pos + size]
        self._pos += size
        return size


def _lines(import_id: uuid.UUID) -> Iterator[str]:
    """The file's lines, each decoded as strict UTF-8 (a leading BOM dropped): an invalid byte
    raises UnicodeDecodeError on its own line, so the refusal names the row it is on."""
    first = True
    for raw in io.BufferedReader(ChunkStream(import_id), 1 << 20):
        line = raw.decode("utf-8")
        if first:
            line, first = line.removeprefix("\ufeff"), False
        yield line


def records(import_id: uuid.UUID, file_format: str, kind: ImportKind) -> Iterator[Record]:
    """Every data row of the file, with its values converted (CSV) and its row-level errors.
    Raises FileRefused as soon as the file turns out to be unusable."""
    reader = _csv_records if file_format == "csv" else _ndjson_records
    last_row = 0
    try:
        for record in reader(_lines(import_id), kind):
            last_row = record.row
            yield record
    except UnicodeDecodeError:
        raise FileRefused("not_utf8", f"The file is not valid UTF-8 (data row {last_row + 1}).",
                          row=last_row + 1) from None
    except csv.Error as exc:
        raise FileRefused("malformed_csv",
                          f"The CSV cannot be read after data row {last_row}: {exc}.",
                          row=last_row + 1) from None


def check_header(header: list[str], kind: ImportKind) -> None:
    if not header or not any(header):
        raise FileRefused("missing_header", "The file has no header row.")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise FileRefused("duplicate_column", f"The column {name!r} appears twice.",
                              column=name)
        seen.add(name)
    unknown = [name for name in header if name not in kind.names and name not in kind.ignored]
    if unknown:
        allowed = ", ".join(c.name for c in kind.columns)
        raise FileRefused("unknown_column",
                          f"Unknown column {unknown[0]!r}; a {kind.name} file has: {allowed}.",
                          column=unknown[0] or None)
    missing = [name for name in kind.required if name not in seen]
    if missing:
        raise FileRefused("missing_column", f"The required column {missing[0]!r} is missing.",
                          column=missing[0])
    if kind.one_of:
        present = [name for name in kind.one_of if name in seen]
        if len(present) != 1:
            raise FileRefused("missing_column" if not present else "ambiguous_columns",
                              f"Give exactly one of the columns {' or '.join(kind.one_of)}.",
                              column=present[1] if len(present) > 1 else kind.one_of[0])


def _csv_records(text: Iterator[str], kind: ImportKind) -> Iterator[Record]:
    reader = csv.reader(text, strict=True)
    first = next(reader, None)
    if first is None:
        raise FileRefused("empty_file", "The file is empty.")
    header = [name.strip().lower() for name in first]
    check_header(header, kind)
    columns = [kind.column(name) if name in kind.names else None for name in header]
    row = 0
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # blank lines are not rows
        row += 1
        if len(cells) != len(header):
            yield Record(row, {}, [RowError(None, "invalid_row",
                                            f"Expected {len(header)} cells, found {len(cells)}.")])
            continue
        values: dict[str, Any] = {}
        errors: list[RowError] = []
        for column, cell in zip(columns, cells, strict=True):
            if column is None:
                continue  # a read-only column of an export
            try:
                values[column.name] = column.from_csv(unescape_cell(cell))
            except CellInvalid as exc:
                errors.append(RowError(column.name, exc.code, exc.message))
        yield Record(row, values, errors)


def _ndjson_records(text: Iterator[str], kind: ImportKind) -> Iterator[Record]:
    row = 0
    for line in text:
        if not line.strip():
            continue
        row += 1
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield Record(row, {}, [RowError(None, "invalid_json", "This line is not valid JSON.")])
            continue
        if not isinstance(data, dict):
            yield Record(row, {},
                         [RowError(None, "invalid_row", "Each line must be a JSON object.")])
            continue
        unknown = [name for name in data if name not in kind.names and name not in kind.ignored]
        if unknown:
            allowed = ", ".join(c.name for c in kind.columns)
            raise FileRefused("unknown_column",
                              f"Unknown field {unknown[0]!r} on data row {row}; a {kind.name} "
                                                f"file has: {allowed}.", row=row,
                              column=str(unknown[0]))
        yield Record(row, {k: v for k, v in data.items() if k in kind.names}, [])


def count_rows(import_id: uuid.UUID, file_format: str, kind: ImportKind) -> int:
    """Read the file through once before anything is written: a file that will be refused is
    refused before its first row is applied, and ``rows_total`` is known for the progress."""
    total = 0
    for _ in records(import_id, file_format, kind):
        total += 1
    return total
