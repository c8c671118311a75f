"""CSV out and back in, for every export and import (SPEC §4.8).

- **Formula-safe.** A spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, tab or
  carriage return as a formula (``=HYPERLINK(...)`` in a customer's name is an attack on whoever
  opens the export). :func:`safe_cell` prefixes such a text cell with ``'``, which spreadsheets
  show as text; :func:`unescape_cell` removes exactly that one quote on import, so an export
  re-imports unchanged. A text that already starts with quotes before such a character gets one
  more, so the round trip is exact for every value. Numbers the exports write themselves (a
  negative stock delta) are written as numbers: they cannot carry a formula.
- **Constant memory.** :func:`keyset_rows` reads a queryset in keyset chunks (never OFFSET, no
  cursor held open between chunks) and :func:`csv_response` streams what it yields, a few hundred
  rows per chunk written, so an export of ten million rows costs what one of a thousand does.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from stateset.encoding import dumps
from stateset.pagination import Sort, after_keyset

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_WRITE = 500


def _needs_quote(text: str) -> bool:
    return text.lstrip("'").startswith(FORMULA_START)


def safe_cell(value: Any) -> Any:
    """The cell to write for ``value``: text, or a number as is. None is empty, booleans are
    ``true``/``false``, dicts and lists are JSON, datetimes RFC 3339 with ``Z``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal, float)):
        return value
    if isinstance(value, dt.datetime):
        text = value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    elif isinstance(value, (dict, list)):
        text = dumps(value).decode()
    elif isinstance(value, uuid.UUID):
        return str(value)
    else:
        text = str(value)
    return "'" + text if _needs_quote(text) else text


def unescape_cell(text: str) -> str:
    """Undo :func:`safe_cell`'s quote: one leading ``'`` before (quotes and) a formula character."""
    if text.startswith("'") and _needs_quote(text[1:]):
        return text[1:]
    return text


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """UTF-8 CSV bytes of ``header`` and ``rows``, every cell through :func:`safe_cell`, yielded
    every few hundred rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for count, row in enumerate(rows, 1):
        writer.writerow([safe_cell(value) for value in row])
        if count % ROWS_PER_WRITE == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def csv_response(filename: str, header: Sequence[str],
                 rows: Iterable[Sequence[Any]]) -> StreamingHttpResponse:
    """A streamed ``text/csv`` attachment (the API's exports and the admin's export actions)."""
    response = StreamingHttpResponse(csv_chunks(header, rows),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def keyset_chunks(queryset: QuerySet[Any], *, fields: Sequence[str], sort: Sort | None = None,
                  chunk_size: int = 2000) -> Iterator[list[tuple[Any, ...]]]:
    """Every row of ``queryset`` as ``values_list(*fields)`` tuples, ordered by ``sort`` (default:
    primary key) then id, in lists of ``chunk_size`` fetched by keyset (one query each, so a chunk
    can be joined to its children in one more). ``fields`` must include ``id`` and the sort
    field."""
    sort = sort or Sort(field="id", descending=False)
    names = list(fields)
    at_sort, at_id = names.index(sort.field), names.index("id")
    base = queryset.order_by(*sort.order_by()).values_list(*names)
    last: tuple[Any, Any] | None = None
    while True:
        chunk = base if last is None else after_keyset(base, sort, *last)
        rows = list(chunk[:chunk_size])
        if rows:
            yield rows
        if len(rows) < chunk_size:
            return
        last = (rows[-1][at_sort], rows[-1][at_id])


def keyset_rows(queryset: QuerySet[Any], *, fields: Sequence[str], sort: Sort | None = None,
                chunk_size: int = 2000) -> Iterator[tuple[Any, ...]]:
    """:func:`keyset_chunks`, row by row."""
    for rows in keyset_chunks(queryset, fields=fields, sort=sort, chunk_size=chunk_size):
        yield from rows
