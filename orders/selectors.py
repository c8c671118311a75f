"""Every read of orders the API and admin need, with a fixed number of queries."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Lower
from django.utils import timezone

from customers.models import Customer
from orders.models import Order, OrderEvent, OrderItem
from stateset.cache import EntityCache
from stateset.csvio import keyset_chunks
from stateset.errors import NotFound
from stateset.pagination import ListParams, Sort, paginate

if TYPE_CHECKING:
    from orders.services import CreatedOrder

order_cache = EntityCache("orders")
CENT = Decimal("0.01")

SUMMARY_FIELDS = (
    "id", "order_number", "customer_id", "status", "payment_status", "fulfillment_status", "currency",
    "subtotal", "tax_total", "shipping_total", "discount_total", "total_amount", "version", "created_at",
    "updated_at",
)
MONEY = ("subtotal", "tax_total", "shipping_total", "discount_total", "total_amount")
ITEM_FIELDS = ("id", "order_id", "product_id", "sku", "name", "quantity", "unit_price", "total_price",
               "quantity_fulfilled", "quantity_returned")
EVENT_FIELDS = ("id", "kind", "from_status", "to_status", "message", "data", "actor", "created_at")
SORT_FIELDS = {"created_at": "created_at", "total_amount": "total_amount", "order_number": "order_number"}


def order_filter(
    *,
    status: str | None = None,
    customer_id: uuid.UUID | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    search: str | None = None,
) -> QuerySet[Order]:
    """Orders matching the list filters. ``search`` is an order number (exact, any case) or a
    customer email (exact, any case): both hit an index."""
    queryset = Order.objects.all()
    if status:
        queryset = queryset.filter(status=status)
    if customer_id:
        queryset = queryset.filter(customer_id=customer_id)
    if created_from:
        queryset = queryset.filter(created_at__gte=created_from)
    if created_to:
        queryset = queryset.filter(created_at__lt=created_to)
    if search:
        term = search.strip()
        condition = Q(order_number=term.upper())
        if "@" in term:
            customers = Customer.objects.annotate(email_lower=Lower("email")).filter(email_lower=term.lower())
            condition |= Q(customer_id__in=customers.values("id"))
        queryset = queryset.filter(condition)
    return queryset


def order_summaries(queryset: QuerySet[Order]) -> QuerySet:
    return queryset.values(*SUMMARY_FIELDS)


def money(value: Any) -> str:
    return str(Decimal(value).quantize(CENT))


def render_summary(row: dict[str, Any]) -> dict[str, Any]:
    for name in MONEY:
        row[name] = money(row[name])
    return row


def render_item(row: dict[str, Any]) -> dict[str, Any]:
    row["unit_price"] = money(row["unit_price"])
    row["total_price"] = money(row["total_price"])
    return row


def items_by_order(order_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Items of several orders in one query."""
    grouped: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in OrderItem.objects.filter(order_id__in=list(order_ids)).order_by("order_id", "sku", "id").values(*ITEM_FIELDS):
        grouped[row["order_id"]].append(render_item(row))
    return grouped


def render_summaries(rows: Iterable[dict[str, Any]], *, include_items: bool = False) -> list[dict[str, Any]]:
    items = [render_summary(row) for row in rows]
    if include_items and items:
        grouped = items_by_order(row["id"] for row in items)
        for row in items:
            row["items"] = grouped.get(row["id"], [])
    return items


def fields_of(obj: Any, names: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


DetailSection = Callable[[uuid.UUID], list[dict[str, Any]]]
_sections: dict[str, DetailSection] = {}


def register_detail_section(name: str, loader: DetailSection) -> None:
    """An app above orders adds a list to every order's detail (fulfillment: ``shipments``,
    returns: ``returns``): ``loader(order_id)`` returns its rows in one query. Called from the app's
    ``AppConfig.ready``, so orders never imports the apps that build on it. Their writes bump the
    order's version and drop its cached detail (``orders.under_lock``)."""
    _sections[name] = loader


def render_order(order: Order, customer: Customer, items: Iterable[dict[str, Any]],
                 events: Iterable[dict[str, Any]],
                 sections: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The full order answer, from rows the caller has (loaded, or just written). ``sections`` are
    the registered lists (empty when not given: a new order has no shipments or returns)."""
    data = render_summary(fields_of(order, SUMMARY_FIELDS))
    data.update(
        customer=fields_of(customer, ("id", "email", "first_name", "last_name")),
        shipping_address=order.shipping_address,
        billing_address=order.billing_address,
        notes=order.notes,
        metadata=order.metadata,
        items=[render_item(row) for row in items],
        **{name: (sections or {}).get(name, []) for name in _sections},
        timeline=list(events),
    )
    return data


def render_created(created: CreatedOrder) -> dict[str, Any]:
    """``order_create``'s answer from the rows it wrote, in the order a read would return them."""
    items = sorted(created.items, key=lambda item: (item.sku, item.id))
    return render_order(created.order, created.customer,
                        items=[fields_of(item, ITEM_FIELDS) for item in items],
                        events=[fields_of(event, EVENT_FIELDS) for event in created.events])


def _load_detail(order_id: uuid.UUID) -> dict[str, Any] | None:
    """The full order: three queries (order with customer, items, timeline) and one per registered
    section (shipments with their items, returns with their items)."""
    order = (
        Order.objects.select_related("customer")
        .filter(id=order_id)
        .only(*SUMMARY_FIELDS, "shipping_address", "billing_address", "notes", "metadata",
              "customer__id", "customer__email", "customer__first_name", "customer__last_name")
        .first()
    )
    if order is None:
        return None
    items = OrderItem.objects.filter(order_id=order.id).order_by("sku", "id").values(*ITEM_FIELDS)
    events = (OrderEvent.objects.filter(order_id=order.id, order_created_at=order.created_at)
              .order_by("created_at", "id").values(*EVENT_FIELDS))
    sections = {name: loader(order.id) for name, loader in _sections.items()}
    return render_order(order, order.customer, items, events, sections)


def order_detail(order_id: uuid.UUID) -> dict[str, Any]:
    """The cached full order (``[cache.entities] orders`` TTL, dropped after every write)."""
    data = order_cache.get_or_load(order_cache.key("detail", order_id), lambda: _load_detail(order_id))
    if data is None:
        raise NotFound("No such order.", code="order_not_found")
    return data


def customer_orders_page(customer_id: uuid.UUID, params: ListParams) -> dict[str, Any]:
    """One page of a customer's orders, cached in the customer's versioned namespace: any write to
    one of their orders bumps the namespace and so drops every cached page at once."""

    def load() -> dict[str, Any] | None:
        if not Customer.objects.filter(id=customer_id).exists():
            return None
        queryset = order_summaries(order_filter(customer_id=customer_id, **params.filters))
        return paginate(queryset, params, render_summaries).as_dict()

    key = order_cache.group_key(f"customer:{customer_id}", "page", hashlib.sha1(repr(params).encode()).hexdigest())
    page = order_cache.get_or_load(key, load)
    if page is None:
        raise NotFound("No such customer.", code="customer_not_found")
    return page


def order_id_by_number(number: str) -> uuid.UUID:
    order_id = Order.objects.filter(order_number=number.strip().upper()).values_list("id", flat=True).first()
    if order_id is None:
        raise NotFound("No order has this number.", code="order_not_found")
    return order_id


def order_events(order_id: uuid.UUID) -> QuerySet:
    if not Order.objects.filter(id=order_id).exists():
        raise NotFound("No such order.", code="order_not_found")
    return OrderEvent.objects.filter(order_id=order_id).values(*EVENT_FIELDS)


def orders_today() -> dict[str, Any]:
    """Orders since midnight UTC and their revenue per currency (cancelled ones excluded), summed by
    the database over one partition's index range."""
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    today = Order.objects.filter(created_at__gte=start)
    revenue = (
        today.exclude(status__in=[Order.Status.CANCELLED, Order.Status.REFUNDED])
        .values("currency").annotate(total=Sum("total_amount")).order_by("currency")
    )
    return {"count": today.aggregate(n=Count("id"))["n"], "revenue": list(revenue)}


CSV_COLUMNS = ("order_number", "id", "created_at", "status", "payment_status", "fulfillment_status",
               "customer_id", "customer_email", "currency", "subtotal", "tax_total", "shipping_total",
               "discount_total", "total_amount")
_CSV_FIELDS = tuple("customer__email" if name == "customer_email" else name for name in CSV_COLUMNS)
ITEM_CSV_COLUMNS = ("item_id", "item_sku", "item_name", "item_quantity", "item_unit_price", "item_total_price",
                    "item_quantity_fulfilled", "item_quantity_returned")
_ITEM_CSV_FIELDS = ("id", "sku", "name", "quantity", "unit_price", "total_price", "quantity_fulfilled",
                    "quantity_returned")


def _export_chunks(queryset: QuerySet[Order], chunk_size: int) -> Iterator[list[tuple[Any, ...]]]:
    return keyset_chunks(queryset, fields=_CSV_FIELDS, sort=Sort(field="created_at", descending=True),
                         chunk_size=chunk_size)


def order_export_rows(queryset: QuerySet[Order], *, chunk_size: int = 2000) -> Iterator[tuple[Any, ...]]:
    """Every matching order, newest first, fetched in keyset chunks: memory stays constant however
    many orders match, and no cursor is held open between chunks."""
    for chunk in _export_chunks(queryset, chunk_size):
        yield from chunk


def order_export_item_rows(queryset: QuerySet[Order], *, chunk_size: int = 1000) -> Iterator[tuple[Any, ...]]:
    """``include_items=true``: one row per order line (the order's columns, then the line's
    :data:`ITEM_CSV_COLUMNS`), orders newest first, lines by SKU; one query per chunk of orders for
    their lines."""
    at_id = _CSV_FIELDS.index("id")
    empty = ("",) * len(ITEM_CSV_COLUMNS)
    for chunk in _export_chunks(queryset, chunk_size):
        lines: dict[uuid.UUID, list[tuple[Any, ...]]] = defaultdict(list)
        items = (OrderItem.objects.filter(order_id__in=[row[at_id] for row in chunk])
                 .order_by("order_id", "sku", "id").values_list("order_id", *_ITEM_CSV_FIELDS))
        for item in items:
            lines[item[0]].append(item[1:])
        for row in chunk:
            for line in lines.get(row[at_id]) or [empty]:
                yield (*row, *line)
