"""Every read of the catalog the API, admin and other apps need (SPEC §4.1).

Hot paths read ``.values()`` rows and render them with :func:`render_product`, the one function that
defines a product's output shape, so list items, search hits and details are identical.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import BooleanField, ExpressionWrapper, F, Q, QuerySet
from django.db.models.functions import Upper

from catalog.models import SKU_PATTERN, Product
from stateset.cache import EntityCache
from stateset.csvio import keyset_rows
from stateset.db import CompiledRead, Prebuilt
from stateset.money import money_str
from stateset.pagination import Sort

PRODUCT_FIELDS = ("id", "sku", "name", "description", "price", "currency", "is_active",
                  "allow_backorder", "attributes", "created_at", "updated_at", "version")

product_cache = EntityCache("products")


SKU_RENAMES = "sku-renames"


def sku_version_key() -> str:
    """A cache key whose value moves whenever a product's SKU changes: another app that caches a
    copy of a SKU stores its entries against it (``EntityCache.get_or_load(depends_on=...)``)."""
    return product_cache.group_version_key(SKU_RENAMES)


def product_cache_keys(*, product_id: uuid.UUID | str, skus: Iterable[str] = ()) -> list[str]:
    """The detail key of a product and the ``by-sku`` keys of the SKUs it has (had)."""
    return [product_cache.key(product_id), *(product_cache.key("sku", s.upper()) for s in skus)]


def render_product(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "sku": row["sku"],
        "name": row["name"],
        "description": row["description"],
        "price": money_str(row["price"], row["currency"]),
        "currency": row["currency"],
        "is_active": row["is_active"],
        "allow_backorder": row["allow_backorder"],
        "attributes": row["attributes"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "version": row["version"],
    }


def render_products(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [render_product(row) for row in rows]


def product_data(product: Product) -> dict[str, Any]:
    """The output shape of a model instance (after a write)."""
    return render_product({field: getattr(product, field) for field in PRODUCT_FIELDS})


# --- lists and details ---------------------------------------------------------------------------


def product_list(*, filters: dict[str, Any]) -> QuerySet[Product, dict[str, Any]]:
    """``.values()`` rows for ``GET /products``; filters ``is_active``, ``min_price``,
    ``max_price``,
    ``sku`` (exact, any case: served by the UPPER(sku) unique index)."""
    rows = Product.objects.all()
    if filters.get("is_active") is not None:
        rows = rows.filter(is_active=filters["is_active"])
    if filters.get("min_price") is not None:
        rows = rows.filter(price__gte=filters["min_price"])
    if filters.get("max_price") is not None:
        rows = rows.filter(price__lte=filters["max_price"])
    if filters.get("sku"):
        rows = rows.filter(sku__iexact=filters["sku"])
    values: QuerySet[Product, dict[str, Any]] = rows.values(*PRODUCT_FIELDS)
    return values


def _load_detail(product_id: uuid.UUID | str) -> dict[str, Any] | None:
    row = Product.objects.filter(pk=product_id).values(*PRODUCT_FIELDS).first()
    return render_product(row) if row else None


def product_detail(*, product_id: uuid.UUID | str) -> dict[str, Any] | None:
    """The rendered product (cache-aside, ``[cache.entities] products`` TTL), or None."""
    return product_cache.get_or_load(product_cache.key(product_id),
                                     lambda: _load_detail(product_id))


def product_by_sku(*, sku: str) -> dict[str, Any] | None:
    """The rendered product with this SKU in any letter case, or None.

    The cache maps SKU → id and the detail comes from the id's entry. A write invalidates the SKU
    the product has after it; should a mapping still point at a product whose SKU has since changed,
    the check below notices and reads the database instead. A string that cannot be a SKU is
    answered without a query or a cache key."""
    if len(sku) > 64 or not re.match(SKU_PATTERN, sku):
        return None
    product_id = product_cache.get_or_load(
        product_cache.key("sku", sku.upper()),
        lambda: Product.objects.filter(sku__iexact=sku).values_list("id", flat=True).first(),
    )
    if product_id is not None:
        data = product_detail(product_id=product_id)
        if data is not None and data["sku"].upper() == sku.upper():
            return data
    row = Product.objects.filter(sku__iexact=sku).values(*PRODUCT_FIELDS).first()
    return render_product(row) if row else None


# Columns other apps never read (large, or only for search): loaded on access if one ever does.
_HEAVY = ("search_vector", "description", "attributes")


# A reservation's product read by SKU, its ``Upper`` alias resolved once per process: 653 → 471 µs
# a call (a read by id builds nothing worth keeping: 558 → 548).
_light_products_by_sku: Prebuilt[QuerySet[Product]] = Prebuilt(
    lambda: Product.objects.alias(sku_upper=Upper("sku")).order_by().defer(*_HEAVY))


def products_by_ids(*, product_ids: Iterable[uuid.UUID | str]) -> dict[uuid.UUID, Product]:
    """Products by id in one query (for other apps: orders, inventory)."""
    ids = tuple(dict.fromkeys(product_ids))
    if not ids:
        return {}
    if len(ids) > _COMPILED_IDS:  # one compilation per count of ids: the common ones only
        rows = list(Product.objects.filter(id__in=ids).order_by().defer(*_HEAVY))
    else:
        rows = _products_by_ids(ids)
    return {product.id: product for product in rows}


_COMPILED_IDS = 20
_products_by_ids: CompiledRead[Product] = CompiledRead(
    lambda ids: Product.objects.filter(id__in=ids).order_by().defer(*_HEAVY))


def products_by_skus(*, skus: Iterable[str]) -> dict[str, Product]:
    """Products keyed by upper-cased SKU, matched in any letter case, in one query."""
    wanted = tuple({s.upper() for s in skus})
    if not wanted:
        return {}
    rows: Iterable[Product]
    if len(wanted) > _COMPILED_IDS:
        rows = _light_products_by_sku().filter(sku_upper__in=wanted)  # type: ignore[misc]  # its alias
    else:
        rows = _products_by_skus(wanted)
    return {product.sku.upper(): product for product in rows}


# A reservation's (or an order's) products by SKU, compiled once per count of SKUs: the request's
# largest share of CPU before (17% of ``POST /inventory/reserve`` under the CPU-clock profiler).
_products_by_skus: CompiledRead[Product] = CompiledRead(
    lambda skus: Product.objects.alias(sku_upper=Upper("sku")).filter(sku_upper__in=skus)
    .order_by().defer(*_HEAVY), key=str)


# --- search --------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
MAX_QUERY_WORDS = 8


def active_product_skus(ids: Iterable[uuid.UUID]) -> Iterator[tuple[uuid.UUID, str]]:
    """(id, sku) of the active products among ``ids``, streamed (seeding stock for each)."""
    return (Product.objects.filter(is_active=True, id__in=list(ids)).values_list("id", "sku")
            .iterator())


def tsquery_text(q: str) -> str | None:
    """A ``to_tsquery`` expression for what the user typed: every word required, the last one as a
    prefix (``"blue wid"`` → ``'blue' & 'wid':*``).

    Only runs of letters and digits (any script) survive, each single-quoted, so quotes, operators
    (``&|!():*<->``) and backslashes in the input can never make the expression invalid."""
    words = [w.lower() for w in _WORD.findall(q)][:MAX_QUERY_WORDS]
    if not words:
        return None
    terms = [f"'{w}'" for w in words]
    terms[-1] += ":*"
    return " & ".join(terms)


def _search_condition(q: str) -> tuple[Q | None, SearchQuery | None]:
    q = q.strip()
    text = tsquery_text(q)
    query = None
    conditions: list[Q] = []
    if text is not None:
        # English stems ("widgets" → widget) match names and descriptions; the simple config keeps
        # words as typed, which is how SKUs are indexed.
        query = SearchQuery(text, search_type="raw", config="english") | SearchQuery(
            text, search_type="raw", config="simple"
        )
        conditions.append(Q(search_vector=query))
    if q and not any(ch.isspace() for ch in q):
        # SKU prefix ("KIT-00" finds KIT-00042), served by product_sku_prefix_idx; includes the
        # exact SKU.
        conditions.append(Q(sku_upper__startswith=q.upper()))
    if not conditions:
        return None, None
    condition = conditions[0]
    for extra in conditions[1:]:
        condition |= extra
    return condition, query


def product_search_queryset(*, q: str, is_active: bool | None = None,
                            min_price: Decimal | None = None,
                            max_price: Decimal | None = None) -> QuerySet[Product,
                                                                          dict[str, Any]] | None:
    """Matches of ``q`` ordered best first: exact SKU (any case), then ``ts_rank`` (name and SKU
    weigh A, description B), then SKU. None when ``q`` holds nothing searchable."""
    condition, query = _search_condition(q)
    if condition is None:
        return None
    q = q.strip()
    rows = Product.objects.alias(sku_upper=Upper("sku")).filter(condition)
    if is_active is not None:
        rows = rows.filter(is_active=is_active)
    if min_price is not None:
        rows = rows.filter(price__gte=min_price)
    if max_price is not None:
        rows = rows.filter(price__lte=max_price)
    rows = rows.annotate(exact_sku=ExpressionWrapper(Q(sku__iexact=q), output_field=BooleanField()))
    order = ["-exact_sku", "sku", "id"]
    if query is not None:
        rows = rows.annotate(rank=SearchRank(F("search_vector"), query))
        order.insert(1, "-rank")
    values: QuerySet[Product, dict[str, Any]] = rows.order_by(*order).values(*PRODUCT_FIELDS)
    return values


SEARCH_GROUP = "search"


def product_search(*, q: str, limit: int, offset: int = 0,
                   **filters: Any) -> tuple[list[dict[str, Any]], bool]:
    """(rendered hits, has_more) for one page of ``GET /products/search``.

    Ranking every match of a short prefix is the expensive part (``wid`` matches thousands of
    products), so pages are cached in the products' ``search`` namespace, which every product write
    moves on (``catalog.services``): a search never answers from before the last committed write."""

    def load() -> tuple[list[dict[str, Any]], bool]:
        rows = product_search_queryset(q=q, **filters)
        if rows is None:
            return [], False
        page = list(rows[offset : offset + limit + 1])
        return render_products(page[:limit]), len(page) > limit

    digest = hashlib.sha1(repr((q, limit, offset, sorted(filters.items()))).encode()).hexdigest()
    return product_cache.get_or_load(product_cache.group_key(SEARCH_GROUP, digest), load)


def product_search_filter(queryset: QuerySet[Product], term: str) -> QuerySet[Product]:
    """Restrict ``queryset`` to products matching ``term`` (admin search box): the same indexed
    full-text and SKU-prefix conditions as the API search, without its ordering."""
    condition, _ = _search_condition(term)
    if condition is None:
        return queryset.none()
    return queryset.alias(sku_upper=Upper("sku")).filter(condition)


# --- export (SPEC §4.8) ---------------------------------------------------------------------------

EXPORT_COLUMNS = ("sku", "name", "description", "price", "currency", "is_active", "attributes")


def product_export_rows(queryset: QuerySet[Any]) -> Iterator[tuple[Any, ...]]:
    """The products of ``queryset`` (a filtered list) by SKU, as rows of :data:`EXPORT_COLUMNS`
    (the columns a products import reads), fetched in keyset chunks: constant memory."""
    at_price, at_currency = EXPORT_COLUMNS.index("price") + 1, EXPORT_COLUMNS.index("currency") + 1
    for row in keyset_rows(queryset, fields=("id", *EXPORT_COLUMNS),
                           sort=Sort(field="sku", descending=False)):
        out = list(row)
        out[at_price] = money_str(row[at_price], row[at_currency])
        yield tuple(out[1:])
