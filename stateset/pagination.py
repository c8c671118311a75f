"""Lists: ``?page=&limit=`` (``per_page`` alias) with a bounded-cost total, plus keyset ``cursor``.

Answer shape (SPEC §3)::

    {"items": [...], "page": 1, "limit": 20, "total": N, "total_pages": T,
     "total_is_estimate": false, "next_cursor": "..." | null}

``total`` is exact up to ``[api] exact_count_limit`` rows (a ``COUNT`` over a ``LIMIT``ed subquery,
so its cost is bounded); above that it is the planner's estimate and ``total_is_estimate`` is true.
``next_cursor`` continues after the last row by keyset (``(sort_field, id) < (last)``), never
OFFSET.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.models import Field, Model, Q, QuerySet

from stateset.columns import column_refuses
from stateset.encoding import dumps
from stateset.errors import ValidationFailed


@dataclass(frozen=True)
class Sort:
    field: str  # model field name
    descending: bool

    def order_by(self) -> tuple[str, str]:
        sign = "-" if self.descending else ""
        return f"{sign}{self.field}", f"{sign}id"


@dataclass(frozen=True)
class ListParams:
    page: int
    limit: int
    cursor: str | None
    sort: Sort
    filters: dict[str, Any]


# --- totals ---------------------------------------------------------------------------------------


class _Estimates:
    """The row-count estimates this process read or made, kept ``seconds``: a big list's total
    costs its cache round trip (~70 µs of a worker's CPU) once per process and ten seconds, not on
    every request. An estimate is a minute old at most in the shared cache, so ten seconds more."""

    seconds = 10.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, int]] = {}

    def get(self, key: str) -> int | None:
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def put(self, key: str, estimate: int) -> None:
        if len(self._entries) > 1_000:
            self._entries = {}
        self._entries[key] = (time.monotonic() + self.seconds, estimate)

    def clear(self) -> None:
        self._entries = {}


estimates = _Estimates()


def bounded_total(queryset: QuerySet[Any]) -> tuple[int, bool]:
    """(total, is_estimate). Exact up to the configured limit; beyond it the planner's row estimate,
    remembered for a minute so a big list does not pay even the bounded count on every request."""
    cap = settings.API_EXACT_COUNT_LIMIT
    unordered = queryset.order_by()
    sql, sql_params = unordered.values("pk").query.sql_with_params()
    cache_key = "count-estimate:" + hashlib.sha1(
        dumps([sql, [str(p) for p in sql_params]])).hexdigest()
    known = estimates.get(cache_key)
    if known is not None:
        return known, True
    estimate = cache.get(cache_key)
    if estimate is not None:
        estimates.put(cache_key, int(estimate))
        return int(estimate), True
    exact = unordered[: cap + 1].count()
    if exact <= cap:
        return exact, False
    plan = orjson.loads(unordered.explain(format="json"))
    estimate = max(int(plan[0]["Plan"]["Plan Rows"]), exact)
    cache.set(cache_key, estimate, 60)
    estimates.put(cache_key, estimate)
    return estimate, True


def bounded_counts(querysets: dict[str, QuerySet[Any]], *, cap: int) -> dict[str, int]:
    """Several counts in one statement, each a ``COUNT`` over a subquery ``LIMIT``ed to ``cap + 1``
    rows (so each costs at most that many index entries; ``cap + 1`` means "more than cap"). For
    the dashboard's figures: orders per status, returns per status. All on one database."""
    if not querysets:
        return {}
    alias = next(iter(querysets.values())).db
    connection = connections[alias]
    parts: list[str] = []
    for queryset in querysets.values():
        sql, sql_params = queryset.order_by().values("pk")[: cap + 1].query.sql_with_params()
        # The values are written into the statement (quoted by psycopg): a prepared statement's
        # generic plan cannot know that one status holds no rows and another most of them, and
        # would scan a million rows to count none.
        inlined = connection.ops.compose_sql(sql, sql_params)  # type: ignore[attr-defined]  # PostgreSQL's operations: the only backend here
        parts.append(f"(SELECT count(*) FROM ({inlined}) AS bounded)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts))
        row = cursor.fetchone()
    return {name: int(value) for name, value in zip(querysets, row, strict=True)}


# --- cursors --------------------------------------------------------------------------------------


def _sort_key(sort: Sort) -> str:
    return f"{'-' if sort.descending else ''}{sort.field}"


def encode_cursor(sort_value: Any, pk: Any, sort: Sort) -> str:
    """``[sort value, pk, sort]``: the sort it was made for travels with it, so a cursor passed to
    the list in another order is refused rather than silently skipping rows."""
    raw = dumps([sort_value, pk, _sort_key(sort)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_CURSOR_CHARS = 512
_SCALARS = (str, int, float, bool, type(None))


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed("The cursor is not valid for this list.", code="invalid_cursor",
                            details={"cursor": ["Pass back next_cursor exactly as received, with "
                                                "the same sort_by and sort_order."]})


def _decode_cursor(cursor: str, model: type[Model], sort: Sort) -> tuple[Any, Any]:
    """``[sort value, pk]`` from a cursor this module wrote — or 422 ``invalid_cursor``. A crafted
    cursor is bounded in length and shape (two scalars) and each value must be one the column can
    hold, so the keyset query it builds never reaches the database with a value it would refuse."""
    if not isinstance(cursor, str) or not 1 <= len(cursor) <= MAX_CURSOR_CHARS:
        raise _bad_cursor()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(decoded, list) or len(decoded) not in (2, 3):  # 2: before the sort
            raise ValueError("shape")
        value, pk = decoded[:2]
        if len(decoded) == 3 and decoded[2] != _sort_key(sort):
            raise ValueError("another sort")
        if (not isinstance(value, _SCALARS) or not isinstance(pk, (str, int))
            or isinstance(pk, bool)):
            raise ValueError("shape")
        field = model._meta.get_field(sort.field)
        assert isinstance(field, Field), sort.field  # a column, never a relation
        value = None if value is None else _storable(field, field.to_python(value))
        pk = _storable(model._meta.pk, model._meta.pk.to_python(pk))
    except Exception:
        raise _bad_cursor() from None
    if pk is None or (value is None and not field.null):
        raise _bad_cursor()
    return value, pk


def _storable(field: Any, value: Any) -> Any:
    """``value`` when the column can hold it; ValueError otherwise (the cursor was crafted)."""
    if column_refuses(field, value):
        raise ValueError("not storable")
    return value


def after_keyset(queryset: QuerySet[Any], sort: Sort, value: Any, pk: Any) -> QuerySet[Any]:
    field = sort.field
    if value is None:
        return queryset.filter(**{f"{field}__isnull": True,
                                  "pk__lt" if sort.descending else "pk__gt": pk})
    op = "lt" if sort.descending else "gt"
    # The first condition bounds the index range scan; the second breaks ties by id.
    return queryset.filter(
        Q(**{f"{field}__{op}e": value}) & (Q(**{f"{field}__{op}": value}) | Q(**{f"pk__{op}": pk}))
    )


@dataclass
class Page:
    items: list[Any]
    page: int | None
    limit: int
    total: int
    total_is_estimate: bool
    next_cursor: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "page": self.page,
            "limit": self.limit,
            "total": self.total,
            "total_pages": math.ceil(self.total / self.limit) if self.total else 0,
            "total_is_estimate": self.total_is_estimate,
            "next_cursor": self.next_cursor,
        }


def paginate(
    queryset: QuerySet[Any],
    params: ListParams,
    render: Callable[[Iterable[Any]], list[Any]],
    *,
    sort_value: Callable[[Any], Any] | None = None,
    with_total: bool = True,
) -> Page:
    """Order ``queryset`` by the requested sort (``id`` breaks ties), slice one page (+1 row to know
    if there is a next one) and render it. ``render`` turns the rows into output items;
    ``sort_value`` reads the sort field off a row (defaults to ``getattr``/``[]``)."""
    model = queryset.model
    ordered = queryset.order_by(*params.sort.order_by())
    if params.cursor:
        value, pk = _decode_cursor(params.cursor, model, params.sort)
        rows = list(after_keyset(ordered, params.sort, value, pk)[: params.limit + 1])
        page_number = None
        offset = None
    else:
        offset = (params.page - 1) * params.limit
        rows = list(ordered[offset : offset + params.limit + 1])
        page_number = params.page
    has_more = len(rows) > params.limit
    if not with_total:
        total, estimate = 0, False
    elif offset is not None and not has_more and (rows or offset == 0):
        # The last page, read in full: the total is exact without counting (a short list, such as
        # locations, pays one query, not two).
        total, estimate = offset + len(rows), False
    else:
        total, estimate = bounded_total(queryset)
    rows = rows[: params.limit]
    next_cursor = None
    if has_more and rows:
        last = rows[-1]
        read = sort_value or _default_reader(params.sort.field)
        next_cursor = encode_cursor(read(last), _read(last, "pk"), params.sort)
    return Page(items=render(rows), page=page_number, limit=params.limit, total=total,
                total_is_estimate=estimate, next_cursor=next_cursor)


def _read(row: Any, name: str) -> Any:
    if isinstance(row, dict):
        return row["id"] if name == "pk" else row[name]
    return getattr(row, name)


def _default_reader(field: str) -> Callable[[Any], Any]:
    return lambda row: _read(row, field)
