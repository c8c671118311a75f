"""Every read of orders the API and admin need, with a fixed number of queries."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connections, router
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from customers.models import Customer
from inventory import selectors as inventory_selectors
from inventory.models import Backorder
from orders.models import ChannelOrder, Order, OrderEvent, OrderItem, Payment, ShippingLine
from stateset.cache import EntityCache
from stateset.csvio import keyset_chunks
from stateset.db import Prebuilt
from stateset.errors import NotFound
from stateset.money import money_str
from stateset.pagination import ListParams, Sort, bounded_counts, paginate

if TYPE_CHECKING:
    from orders.services import CreatedOrder

order_cache = EntityCache("orders")

SUMMARY_FIELDS = (
    "id", "order_number", "customer_id", "status", "payment_status", "fulfillment_status",
    "currency",
    "subtotal", "tax_total", "shipping_total", "discount_total", "total_amount", "channel",
    "external_id", "version", "created_at", "updated_at",
)
MONEY = ("subtotal", "tax_total", "shipping_total", "discount_total", "total_amount")
ITEM_FIELDS = ("id", "order_id", "product_id", "sku", "name", "quantity", "unit_price",
               "list_price",
               "total_price", "discount_total", "net_total", "tax_total", "taxes",
               "quantity_fulfilled", "quantity_returned")
ITEM_MONEY = ("unit_price", "list_price", "total_price", "discount_total", "net_total", "tax_total")
SHIPPING_FIELDS = ("id", "method", "amount", "tax_total", "taxes")
PAYMENT_FIELDS = ("id", "kind", "amount", "currency", "status", "provider", "reference",
                  "created_at")
EVENT_FIELDS = ("id", "kind", "from_status", "to_status", "message", "data", "actor", "created_at")
SORT_FIELDS = {"created_at": "created_at", "total_amount": "total_amount",
               "order_number": "order_number"}


def _channel_orders(external_id: str, channel: str | None = None) -> QuerySet[ChannelOrder]:
    rows = ChannelOrder.objects.filter(external_id=external_id)
    return rows.filter(channel=channel) if channel else rows


_CHANNELS_SQL = f"""
WITH RECURSIVE channels(channel) AS (
    SELECT min(channel) FROM {Order._meta.db_table}
    UNION ALL
    SELECT (SELECT min(o.channel) FROM {Order._meta.db_table} AS o WHERE o.channel > c.channel)
    FROM channels AS c WHERE c.channel IS NOT NULL
)
SELECT channel FROM channels WHERE channel IS NOT NULL
"""


def order_channels() -> list[str]:
    """The channels orders came from, in order: a loose index scan of ``(channel, created_at)``
    (one index probe per channel and partition), where ``SELECT DISTINCT`` would read every order
    (160 ms at a million orders: what the admin's channel filter cost)."""
    with connections[router.db_for_read(Order)].cursor() as cursor:
        cursor.execute(_CHANNELS_SQL)
        return [row[0] for row in cursor.fetchall()]


def order_filter(
    queryset: QuerySet[Any, Any] | None = None,
    *,
    status: str | None = None,
    customer_id: uuid.UUID | None = None,
    channel: str | None = None,
    external_id: str | None = None,
    backordered: bool | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    search: str | None = None,
) -> QuerySet[Any, Any]:
    """Orders (``queryset``, else all of them) matching the list filters, each served by an index.
    ``external_id`` goes through the channel lookup table; ``search`` is an order number or its
    prefix (any case), a customer email (exact, any case) or a channel's external id."""
    if queryset is None:
        queryset = Order.objects.all()
    if status:
        queryset = queryset.filter(status=status)
    if customer_id:
        queryset = queryset.filter(customer_id=customer_id)
    if channel:
        queryset = queryset.filter(channel=channel)
    if external_id:
        queryset = queryset.filter(id__in=_channel_orders(external_id, channel).values("order_id"))
    if backordered is not None:  # the inventory app's queue knows which orders wait for stock
        waiting = Q(id__in=inventory_selectors.waiting_reference_ids())
        queryset = queryset.filter(waiting if backordered else ~waiting)
    if created_from:
        queryset = queryset.filter(created_at__gte=created_from)
    if created_to:
        queryset = queryset.filter(created_at__lt=created_to)
    if search:
        term = search.strip()
        condition = Q(order_number__startswith=term.upper()) | Q(
            id__in=_channel_orders(term).values("order_id"))
        if "@" in term:
            customers = Customer.objects.annotate(email_lower=Lower("email")).filter(
                email_lower=term.lower())
            condition |= Q(customer_id__in=customers.values("id"))
        queryset = queryset.filter(condition)
    return queryset


def _summaries() -> QuerySet[Any, dict[str, Any]]:
    rows: QuerySet[Any, dict[str, Any]] = Order.objects.annotate(backordered=Exists(
        Backorder.objects.filter(reference_id=OuterRef("id"), quantity_waiting__gt=0))).values(
            *SUMMARY_FIELDS, "backordered")
    return rows


# Summary rows with ``backordered`` (an indexed probe of the backorder queue per row), for
# :func:`order_filter` to filter: ``order_filter(order_summaries(), status=...)``.
order_summaries = Prebuilt(_summaries)


def render_summary(row: dict[str, Any]) -> dict[str, Any]:
    for name in MONEY:
        row[name] = money_str(row[name], row["currency"])
    return row


def _render_taxes(taxes: list[dict[str, Any]], currency: str) -> list[dict[str, Any]]:
    return [{**tax, "amount": money_str(tax["amount"], currency)} for tax in taxes]


def item_rows(order_ids: Iterable[uuid.UUID]) -> QuerySet[Any, dict[str, Any]]:
    """Order lines as ``.values()`` rows, each with what the inventory app's backorder queue holds
    for it (``quantity_backordered``: waiting; ``backorder_allocated``: served from arriving stock),
    in the same query."""
    queue = Backorder.objects.filter(reference_id=OuterRef("order_id"), line_id=OuterRef("id"))
    waiting = Coalesce(Subquery(queue.values("quantity_waiting")[:1]), 0)
    allocated = Coalesce(Subquery(queue.values(
        allocated=F("quantity") - F("quantity_waiting"))[:1]), 0)
    rows: QuerySet[Any, dict[str, Any]] = (
        OrderItem.objects.filter(order_id__in=list(order_ids))
        .annotate(quantity_backordered=waiting, backorder_allocated=allocated)
        .values(*ITEM_FIELDS, "quantity_backordered", "backorder_allocated"))
    return rows


def render_item(row: dict[str, Any], currency: str, backordered: int | None = None) -> dict[str,
                                                                                            Any]:
    for name in ITEM_MONEY:
        row[name] = money_str(row[name], currency)
    row["taxes"] = _render_taxes(row["taxes"], currency)
    if backordered is not None:
        row["quantity_backordered"] = backordered
    row.pop("backorder_allocated", None)
    return row


def render_shipping_line(row: dict[str, Any], currency: str) -> dict[str, Any]:
    row["amount"] = money_str(row["amount"], currency)
    row["tax_total"] = money_str(row["tax_total"], currency)
    row["taxes"] = _render_taxes(row["taxes"], currency)
    return row


def render_payment(row: dict[str, Any]) -> dict[str, Any]:
    row["amount"] = money_str(row["amount"], row["currency"])
    return row


def items_by_order(currencies: Mapping[uuid.UUID, str]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Items of several orders (order id → its currency) in one query."""
    grouped: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in item_rows(currencies).order_by("order_id", "sku", "id"):
        grouped[row["order_id"]].append(render_item(row, currencies[row["order_id"]]))
    return grouped


def render_summaries(rows: Iterable[dict[str, Any]], *,
                     include_items: bool = False) -> list[dict[str, Any]]:
    items = [render_summary(row) for row in rows]
    if include_items and items:
        grouped = items_by_order({row["id"]: row["currency"] for row in items})
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
                 events: Iterable[dict[str, Any]], shipping_lines: Iterable[dict[str, Any]] = (),
                 payments: Iterable[dict[str, Any]] = (),
                 sections: dict[str, list[dict[str, Any]]] | None = None,
                 backordered: Mapping[uuid.UUID, int] | None = None) -> dict[str, Any]:
    """The full order answer, from rows the caller has (loaded, or just written). ``sections`` are
    the registered lists (empty when not given: a new order has no shipments or returns);
    ``backordered`` the units each line waits for (order line id → units)."""
    items = list(items)
    if backordered is not None:
        for row in items:
            row["quantity_backordered"] = backordered.get(row["id"], 0)
    data = render_summary({**fields_of(order, SUMMARY_FIELDS),
                           "backordered": any(row["quantity_backordered"] for row in items)})
    data.update(
        customer=fields_of(customer, ("id", "email", "first_name", "last_name")),
        shipping_address=order.shipping_address,
        billing_address=order.billing_address,
        notes=order.notes,
        metadata=order.metadata,
        discounts=order.discounts,
        taxes_included=order.taxes_included,
        items=[render_item(row, order.currency) for row in items],
        shipping_lines=[render_shipping_line(row, order.currency) for row in shipping_lines],
        payments=[render_payment(row) for row in payments],
        **{name: (sections or {}).get(name, []) for name in _sections},
        timeline=list(events),
    )
    return data


def render_created(created: CreatedOrder) -> dict[str, Any]:
    """``order_create``'s answer from the rows it wrote, in the order a read would return them."""
    items = sorted(created.items, key=lambda item: (item.sku, item.id))
    return render_order(created.order, created.customer,
                        items=[fields_of(item, ITEM_FIELDS) for item in items],
                        events=[fields_of(event, EVENT_FIELDS) for event in created.events],
                        shipping_lines=[fields_of(line, SHIPPING_FIELDS)
                                        for line in created.shipping_lines],
                        backordered=created.backordered)


def _load_detail(order_id: uuid.UUID) -> dict[str, Any] | None:
    """The full order: five queries (order with customer, items with their backordered units,
    shipping lines, payments, timeline — and the allocations from arriving stock when it has any)
    and one per registered section (shipments with their items, returns with their items)."""
    order = (
        Order.objects.select_related("customer")
        .filter(id=order_id)
        .only(*SUMMARY_FIELDS, "shipping_address", "billing_address", "notes", "metadata",
              "discounts", "taxes_included",
              "customer__id", "customer__email", "customer__first_name", "customer__last_name")
        .first()
    )
    if order is None:
        return None
    items = list(item_rows([order.id]).order_by("sku", "id"))
    events = (OrderEvent.objects.filter(order_id=order.id, order_created_at=order.created_at)
              .order_by("created_at", "id").values(*EVENT_FIELDS))
    shipping = ShippingLine.objects.filter(order_id=order.id).order_by("id").values(
        *SHIPPING_FIELDS)
    payments = order_payments(order)
    sections = {name: loader(order.id) for name, loader in _sections.items()}
    timeline = list(events)
    if any(row["backorder_allocated"] for row in items):
        timeline = sorted([*timeline, *allocation_events(order.id)],
                          key=lambda e: (e["created_at"], str(e["id"])))
    return render_order(order, order.customer, items, timeline, shipping, payments, sections)


def order_page(order_id: uuid.UUID | str) -> dict[str, Any] | None:
    """An order's back-office page: its full detail read fresh (staff act on what they see, not on
    a cached copy), each shipment with its location's code. A fixed number of queries however many
    lines, payments, shipments, returns and events it has; None for no such order."""
    try:
        order_id = uuid.UUID(str(order_id))
    except ValueError:
        return None
    data = _load_detail(order_id)
    if data is None:
        return None
    shipments: list[dict[str, Any]] = data.get("shipments", [])
    codes = (inventory_selectors.location_codes({row["location_id"] for row in shipments})
             if shipments else {})
    for shipment in shipments:
        shipment["location_code"] = codes.get(shipment["location_id"], "")
    return data


def allocation_events(order_id: uuid.UUID) -> list[dict[str, Any]]:
    """The ``backorder_allocated`` entries of an order's timeline: each reservation the inventory
    app made from arriving stock for one of its waiting lines."""
    return [{"id": row["id"], "kind": OrderEvent.Kind.BACKORDER_ALLOCATED, "from_status": "",
             "to_status": "",
             "message": f"{row['quantity']} × {row['backorder__sku']} allocated from arriving "
                        "stock.",
             "data": {"order_item_id": str(row["backorder__line_id"]), "quantity": row["quantity"],
                      "reservation_id": str(row["id"]),
                      "location_id": str(row["inventory_item__location_id"])},
             "actor": "system:backorders", "created_at": row["created_at"]}
            for row in inventory_selectors.backorder_allocations(order_id)]


def order_payment_rows(order_id: uuid.UUID) -> QuerySet[Any, dict[str, Any]]:
    """``GET /orders/{id}/payments``: NotFound for an unknown order."""
    order = Order.objects.filter(id=order_id).only("id", "created_at").first()
    if order is None:
        raise NotFound("No such order.", code="order_not_found")
    rows: QuerySet[Any, dict[str, Any]] = Payment.objects.filter(
        order_id=order.id, order_created_at=order.created_at).values(*PAYMENT_FIELDS)
    return rows


def order_payments(order: Order) -> QuerySet[Any, dict[str, Any]]:
    """An order's payments, oldest first (one query, pruned by the order's ``created_at``)."""
    rows: QuerySet[Any, dict[str, Any]] = (
        Payment.objects.filter(order_id=order.id, order_created_at=order.created_at)
        .order_by("created_at", "id").values(*PAYMENT_FIELDS))
    return rows


def order_detail(order_id: uuid.UUID) -> dict[str, Any]:
    """The cached full order (``[cache.entities] orders`` TTL, dropped after every write, and stale
    once its backorder queue moves — allocation happens in the inventory app)."""
    data = order_cache.get_or_load(order_cache.key("detail", order_id),
                                   lambda: _load_detail(order_id),
                                   depends_on=inventory_selectors.backorder_version_key(order_id))
    if data is None:
        raise NotFound("No such order.", code="order_not_found")
    return data


def customer_orders_page(customer_id: uuid.UUID, params: ListParams) -> dict[str, Any]:
    """One page of a customer's orders, cached in the customer's versioned namespace: any write to
    one of their orders bumps the namespace and so drops every cached page at once."""

    def load() -> dict[str, Any] | None:
        if not Customer.objects.filter(id=customer_id).exists():
            return None
        queryset = order_filter(order_summaries(), customer_id=customer_id, **params.filters)
        return paginate(queryset, params, render_summaries).as_dict()

    key = order_cache.group_key(f"customer:{customer_id}", "page",
                                hashlib.sha1(repr(params).encode()).hexdigest())
    page = order_cache.get_or_load(key, load,
                                   depends_on=inventory_selectors.backorder_version_key())
    if page is None:
        raise NotFound("No such customer.", code="customer_not_found")
    return page


def order_id_by_number(number: str) -> uuid.UUID:
    order_id = Order.objects.filter(order_number=number.strip().upper()).values_list("id",
                                                                                     flat=True).first()
    if order_id is None:
        raise NotFound("No order has this number.", code="order_not_found")
    return order_id


def order_events(order_id: uuid.UUID) -> QuerySet[OrderEvent, dict[str, Any]]:
    if not Order.objects.filter(id=order_id).exists():
        raise NotFound("No such order.", code="order_not_found")
    values: QuerySet[OrderEvent,
                     dict[str,
                          Any]] = OrderEvent.objects.filter(order_id=order_id).values(*EVENT_FIELDS)
    return values


def orders_today() -> dict[str, Any]:
    """Orders since midnight UTC and their revenue per currency (cancelled ones excluded), summed by
    the database over one partition's index range."""
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    today = Order.objects.filter(created_at__gte=start)
    revenue = (
        today.exclude(status__in=[Order.Status.CANCELLED, Order.Status.REFUNDED])
        .values("currency").annotate(total=Sum("total_amount")).order_by("currency")
    )
    return {"count": today.aggregate(n=Count("id"))["n"],
            "revenue": [{**row, "total": money_str(row["total"], row["currency"])}
                        for row in revenue]}


CSV_COLUMNS = ("order_number", "id", "created_at", "status", "payment_status", "fulfillment_status",
               "customer_id", "customer_email", "currency", "subtotal", "tax_total",
               "shipping_total", "discount_total", "total_amount", "channel", "external_id")
_CSV_FIELDS = tuple("customer__email" if name == "customer_email" else name for name in CSV_COLUMNS)
ITEM_CSV_COLUMNS = ("item_id", "item_sku", "item_name", "item_quantity", "item_unit_price",
                    "item_total_price",
                    "item_discount_total", "item_net_total", "item_tax_total",
                    "item_quantity_fulfilled", "item_quantity_returned")
_ITEM_CSV_FIELDS = ("id", "sku", "name", "quantity", "unit_price", "total_price", "discount_total",
                    "net_total", "tax_total", "quantity_fulfilled", "quantity_returned")
_AT_CURRENCY = CSV_COLUMNS.index("currency")
_ORDER_MONEY = tuple(CSV_COLUMNS.index(name) for name in MONEY)
_ITEM_MONEY = tuple(_ITEM_CSV_FIELDS.index(name) for name in ITEM_MONEY if name in _ITEM_CSV_FIELDS)


def _with_money(row: tuple[Any, ...], at: tuple[int, ...], currency: str) -> tuple[Any, ...]:
    """A CSV row with its amounts in the currency's digits, as the API writes them."""
    return tuple(money_str(value, currency) if index in at else value for index,
                 value in enumerate(row))


def _export_chunks(queryset: QuerySet[Order], chunk_size: int) -> Iterator[list[tuple[Any, ...]]]:
    return keyset_chunks(queryset, fields=_CSV_FIELDS,
                         sort=Sort(field="created_at", descending=True), chunk_size=chunk_size)


def order_export_rows(queryset: QuerySet[Order], *,
                      chunk_size: int = 2000) -> Iterator[tuple[Any, ...]]:
    """Every matching order, newest first, fetched in keyset chunks: memory stays constant however
    many orders match, and no cursor is held open between chunks."""
    for chunk in _export_chunks(queryset, chunk_size):
        for row in chunk:
            yield _with_money(row, _ORDER_MONEY, row[_AT_CURRENCY])


def order_export_item_rows(queryset: QuerySet[Order], *,
                           chunk_size: int = 1000) -> Iterator[tuple[Any, ...]]:
    """``include_items=true``: one row per order line (the order's columns, then the line's
    :data:`ITEM_CSV_COLUMNS`), orders newest first, lines by SKU; one query per chunk of orders for
    their lines."""
    at_id = _CSV_FIELDS.index("id")
    empty = ("",) * len(ITEM_CSV_COLUMNS)
    for chunk in _export_chunks(queryset, chunk_size):
        lines: dict[uuid.UUID, list[tuple[Any, ...]]] = defaultdict(list)
        items = (OrderItem.objects.filter(order_id__in=[row[at_id] for row in chunk])
                 .order_by("order_id", "sku", "id").values_list("order_id", *_ITEM_CSV_FIELDS))
        currency = {row[at_id]: row[_AT_CURRENCY] for row in chunk}
        for item in items:
            lines[item[0]].append(_with_money(item[1:], _ITEM_MONEY, currency[item[0]]))
        for row in chunk:
            for line in lines.get(row[at_id]) or [empty]:
                yield (*_with_money(row, _ORDER_MONEY, row[_AT_CURRENCY]), *line)


# --- the back office's dashboard (SPEC §5) --------------------------------------------------------

UNFULFILLED = (Order.FulfillmentStatus.UNFULFILLED, Order.FulfillmentStatus.PARTIALLY_FULFILLED)
TO_FULFIL = (Order.Status.CONFIRMED, Order.Status.PROCESSING)


def orders_by_status(*, cap: int) -> dict[str, int]:
    """Orders now in each status, each count exact up to ``cap`` (``cap + 1``: more), in one
    statement over the ``(status, created_at)`` index."""
    return bounded_counts({status: Order.objects.filter(status=status)
                           for status in Order.Status.values}, cap=cap)


def oldest_unfulfilled(*, limit: int = 10) -> list[dict[str, Any]]:
    """The oldest confirmed or processing orders with units left to ship: one query, each status
    an ordered index range scan of ``(status, created_at)`` stopped after ``limit`` rows."""
    fields = ("id", "order_number", "status", "fulfillment_status", "currency", "total_amount",
              "created_at")
    base = Order.objects.filter(fulfillment_status__in=UNFULFILLED)
    first, *others = [
        base.filter(status=status).order_by("created_at", "id").values(*fields)[:limit]
        for status in TO_FULFIL]
    rows = first.union(*others, all=True).order_by("created_at", "id")[:limit]
    return [{**row, "total_amount": money_str(row["total_amount"], row["currency"])}
            for row in rows]
