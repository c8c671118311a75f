"""Every write to orders (SPEC §4.4). Stock is reached only through ``inventory.services``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from catalog import selectors as catalog_selectors
from catalog.models import Product
from customers import selectors as customers_selectors
from customers.models import Customer
from inventory import services as inventory_services
from orders.models import Order, OrderEvent, OrderItem
from stateset import metrics
from stateset.api.errors import InvalidTransition, NotFound, PreconditionFailed, ValidationFailed
from stateset.cache import EntityCache
from stateset.db import insert_rows
from stateset.inputs import writable
from webhooks import services as webhooks

order_cache = EntityCache("orders")
# Sent by ``order_transition`` inside the cancelling transaction, the order row locked and its
# reservations released, with ``order`` and ``actor``: apps that hold something for the order close
# it in the same transaction (fulfillment cancels the order's pending shipments).
order_cancelling = Signal()
CENT = Decimal("0.01")
MAX_LINES = 100

# SPEC §4.4 status machine. Fulfillment moves statuses on its own through the same table.
TRANSITIONS: dict[str, frozenset[str]] = {
    Order.Status.PENDING: frozenset({"confirmed", "processing", "on_hold", "cancelled"}),
    Order.Status.CONFIRMED: frozenset({"processing", "on_hold", "cancelled"}),
    Order.Status.PROCESSING: frozenset({"shipped", "on_hold", "cancelled"}),
    Order.Status.ON_HOLD: frozenset({"processing", "cancelled"}),
    Order.Status.SHIPPED: frozenset({"delivered", "on_hold"}),
    Order.Status.DELIVERED: frozenset({"refunded"}),
    Order.Status.CANCELLED: frozenset({"refunded"}),
    Order.Status.REFUNDED: frozenset(),
}
PAID = frozenset({Order.PaymentStatus.PAID, Order.PaymentStatus.PARTIALLY_REFUNDED})


@dataclass(frozen=True)
class CreatedOrder:
    """What ``order_create`` wrote, so the caller can answer without reading it back."""

    order: Order
    customer: Customer
    items: list[OrderItem]
    events: list[OrderEvent]


@dataclass(frozen=True)
class OrderLineInput:
    quantity: int
    product_id: uuid.UUID | None = None
    sku: str | None = None
    unit_price: Decimal | None = None


@dataclass
class _Line:
    index: int
    product: Product
    quantity: int
    unit_price: Decimal = field(init=False)

    def __post_init__(self) -> None:
        self.unit_price = self.product.price

    @property
    def total(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(CENT)


def invalidate(order: Order | uuid.UUID, customer_id: uuid.UUID | None = None) -> None:
    order_id = order.id if isinstance(order, Order) else order
    order_cache.invalidate(order_cache.key("detail", order_id))
    if customer_id is not None:
        order_cache.invalidate_group(f"customer:{customer_id}")


def _resolve_lines(lines: Sequence[OrderLineInput]) -> list[_Line]:
    """The products the lines name, through the catalog's selectors (one query each for ids and for
    SKUs); each line must name an active product, and a line naming both must name the same one."""
    if not lines:
        raise ValidationFailed("An order needs at least one item.", details={"items": ["This list may not be empty."]})
    if len(lines) > MAX_LINES:
        raise ValidationFailed(f"An order has at most {MAX_LINES} items.", details={"items": [f"At most {MAX_LINES}."]})
    by_id = catalog_selectors.products_by_ids(
        product_ids={line.product_id for line in lines if line.product_id})
    by_sku = catalog_selectors.products_by_skus(
        skus={line.sku for line in lines if line.sku and not line.product_id})
    resolved: list[_Line] = []
    errors: dict[str, Any] = {}
    for index, line in enumerate(lines):
        product = by_id.get(line.product_id) if line.product_id else by_sku.get((line.sku or "").upper())
        if product is None:
            errors[str(index)] = {"product": ["No such product."]}
            continue
        if line.product_id and line.sku and line.sku.upper() != product.sku.upper():
            errors[str(index)] = {"sku": [f"product_id {product.id} has SKU {product.sku}, not {line.sku}."]}
            continue
        if not product.is_active:
            errors[str(index)] = {"product": [f"{product.sku} is not active."]}
            continue
        resolved.append(_Line(index=index, product=product, quantity=line.quantity))
    if errors:
        inactive = all("not active" in str(e) for e in errors.values())
        raise ValidationFailed(
            "Some items name no active product.",
            code="product_inactive" if inactive else "product_not_found",
            details={"items": errors},
        )
    return resolved


def order_create(
    *,
    customer_id: uuid.UUID,
    items: Sequence[OrderLineInput],
    total_amount: Decimal | None = None,
    shipping_address: dict[str, Any] | None = None,
    billing_address: dict[str, Any] | None = None,
    notes: str = "",
    metadata: dict[str, Any] | None = None,
    actor: str = "",
) -> CreatedOrder:
    """Create an order and reserve stock for every line, in one transaction.

    Prices come from the catalog; a ``unit_price`` or ``total_amount`` that disagrees is
    ValidationFailed(code="price_mismatch"). Stock is reserved last, through
    ``inventory.services.stock_reserve`` (inventory rows changed by conditional UPDATEs in primary-key
    order), never expiring: units are consumed as they ship and released on cancel. Raises NotFound-like ValidationFailed for an unknown customer or product, InsufficientStock
    (409) naming each short line. Nothing is written unless everything is. After commit: the
    customer's order lists are invalidated and ``orders_created_total`` counts it."""
    with transaction.atomic(durable=True):
        customer = customers_selectors.customer_get(customer_id=customer_id)
        if customer is None:
            raise ValidationFailed("No such customer.", code="customer_not_found",
                                   details={"customer_id": ["No such customer."]})
        lines = _resolve_lines(items)
        mismatches = {
            str(line.index): {"unit_price": [f"The catalog price is {line.unit_price}."]}
            for line, given in zip(lines, items, strict=True)
            if given.unit_price is not None and Decimal(given.unit_price).quantize(CENT) != line.unit_price
        }
        currencies = {line.product.currency for line in lines}
        if len(currencies) > 1:
            raise ValidationFailed("Items are priced in different currencies.", code="mixed_currency",
                                   details={"currencies": sorted(currencies)})
        subtotal = sum((line.total for line in lines), Decimal("0.00"))
        total = subtotal  # no tax, shipping or discount rules are configured
        if mismatches or (total_amount is not None and Decimal(total_amount).quantize(CENT) != total):
            details: dict[str, Any] = {"expected_total": str(total)}
            if mismatches:
                details["items"] = mismatches
            raise ValidationFailed("Prices do not match the catalog.", code="price_mismatch", details=details)

        order = Order(
            id=uuid.uuid4(),
            created_at=timezone.now(),
            customer_id=customer.id,
            currency=currencies.pop(),
            subtotal=subtotal,
            total_amount=total,
            shipping_address=shipping_address,
            billing_address=billing_address,
            notes=notes,
            metadata=metadata or {},
        )
        insert_rows([order], returning=("order_number",))
        items = [
            OrderItem(
                order_id=order.id, order_created_at=order.created_at, product_id=line.product.id,
                sku=line.product.sku, name=line.product.name, quantity=line.quantity,
                unit_price=line.unit_price, total_price=line.total,
            )
            for line in lines
        ]
        events = [
            _event(order, OrderEvent.Kind.CREATED, actor, to_status=order.status,
                   data={"total_amount": str(total), "items": len(lines)}),
            _event(order, OrderEvent.Kind.RESERVED, actor,
                   data={"lines": [{"sku": line.product.sku, "quantity": line.quantity} for line in lines]}),
        ]
        insert_rows(items)
        insert_rows(events)
        webhooks.publish(event_type="order.created", payload={
            **_event_ref(order), "customer_id": str(customer.id), "status": order.status,
            "currency": order.currency, "total_amount": str(total),
            "items": [{"sku": line.product.sku, "quantity": line.quantity, "unit_price": str(line.unit_price)}
                      for line in lines],
        })
        # Stock last: the inventory row locks are then held only for the reservation's own writes
        # and the commit, which is what bounds throughput on a hot SKU.
        inventory_services.stock_reserve(
            lines=[inventory_services.ReserveLine(product_id=line.product.id, quantity=line.quantity)
                   for line in lines],
            reference_type="order",
            reference_id=str(order.id),
            expires_at=None,
            actor=actor,
        )
        order_cache.invalidate_group(f"customer:{customer.id}")  # a new id has no detail to drop
        transaction.on_commit(metrics.ORDERS_CREATED.inc)
    return CreatedOrder(order=order, customer=customer, items=items, events=events)


def _event(order: Order, kind: str, actor: str, **fields: Any) -> OrderEvent:
    return OrderEvent(order_id=order.id, order_created_at=order.created_at, kind=kind, actor=actor, **fields)


def _event_ref(order: Order) -> dict[str, Any]:
    """How a webhook payload names an order."""
    return {"order_id": str(order.id), "order_number": order.order_number}


def _publish_status_change(order: Order, from_status: str, to_status: str, reason: str) -> None:
    payload = {**_event_ref(order), "from_status": from_status, "to_status": to_status, "reason": reason}
    webhooks.publish(event_type="order.status_changed", payload=payload)
    if to_status == Order.Status.CANCELLED:
        webhooks.publish(event_type="order.cancelled", payload=payload)


def _locked(order_id: uuid.UUID) -> Order:
    order = Order.objects.select_for_update().filter(id=order_id).first()
    if order is None:
        raise NotFound("No such order.", code="order_not_found")
    return order


def order_transition(*, order_id: uuid.UUID, to_status: str, reason: str = "", actor: str = "",
                     expected_version: int | None = None) -> Order:
    """Move an order along the status machine and write a ``status_changed`` event.

    Locks the order row. Cancelling releases its still-active reservations (ledger ``release``
    rows through ``inventory.services.stock_release``) and writes a ``released`` event; refunding
    marks the payment refunded. Raises InvalidTransition (409) for a move the machine forbids
    (including refunding an unpaid cancelled order), PreconditionFailed (412) on a stale
    ``expected_version``, NotFound."""
    with transaction.atomic(durable=True):
        order = _locked(order_id)
        if expected_version is not None and order.version != expected_version:
            raise PreconditionFailed(details={"current_version": order.version})
        current = order.status
        if to_status not in TRANSITIONS.get(current, frozenset()):
            raise InvalidTransition(
                f"An order cannot go from {current} to {to_status}.",
                details={"from": current, "to": to_status,
                         "allowed": sorted(TRANSITIONS.get(current, frozenset()))},
            )
        if to_status == Order.Status.REFUNDED and current == Order.Status.CANCELLED and order.payment_status not in PAID:
            raise InvalidTransition("A cancelled order is refunded only if it was paid.",
                                    details={"from": current, "to": to_status,
                                             "payment_status": order.payment_status})
        updates: dict[str, Any] = {"status": to_status}
        if to_status == Order.Status.REFUNDED:
            updates["payment_status"] = Order.PaymentStatus.REFUNDED
        events = [_event(order, OrderEvent.Kind.STATUS_CHANGED, actor, from_status=current,
                         to_status=to_status, message=reason)]
        if to_status == Order.Status.CANCELLED:
            released = inventory_services.stock_release(reference_type="order", reference_id=str(order.id),
                                                        actor=actor, reason=reason or "order cancelled")
            events.append(_event(order, OrderEvent.Kind.RELEASED, actor,
                                 data={"reservations": [str(r.id) for r in released]}))
            order_cancelling.send(sender=Order, order=order, actor=actor)
        _save(order, updates)
        OrderEvent.objects.bulk_create(events)
        _publish_status_change(order, current, to_status, reason)
        invalidate(order, order.customer_id)
    return order


def order_cancel(*, order_id: uuid.UUID, reason: str = "", actor: str = "",
                 expected_version: int | None = None) -> Order:
    return order_transition(order_id=order_id, to_status=Order.Status.CANCELLED, reason=reason, actor=actor,
                            expected_version=expected_version)


# Payment is captured elsewhere (a gateway); StateSet records what it was told, forward only.
# ``refunded`` and ``partially_refunded`` are set by refunds (``order_refund``), never here.
PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    Order.PaymentStatus.PENDING: frozenset({Order.PaymentStatus.AUTHORIZED, Order.PaymentStatus.PAID}),
    Order.PaymentStatus.AUTHORIZED: frozenset({Order.PaymentStatus.PAID}),
}


def order_record_payment(*, order_id: uuid.UUID, payment_status: str, reference: str = "", actor: str = "",
                         expected_version: int | None = None) -> Order:
    """Record that the order's payment was authorized or captured (``pending → authorized → paid``).
    Writes a ``note`` event with the gateway's reference. Raises InvalidTransition (409) for any
    other move or for a cancelled or refunded order, PreconditionFailed (412), NotFound."""
    with transaction.atomic(durable=True):
        order = _locked(order_id)
        if expected_version is not None and order.version != expected_version:
            raise PreconditionFailed(details={"current_version": order.version})
        current = order.payment_status
        allowed = PAYMENT_TRANSITIONS.get(current, frozenset())
        if payment_status not in allowed or order.status in (Order.Status.CANCELLED, Order.Status.REFUNDED):
            raise InvalidTransition(
                f"The payment of a {order.status} order cannot go from {current} to {payment_status}.",
                details={"from": current, "to": payment_status, "status": order.status,
                         "allowed": sorted(allowed) if order.status not in ("cancelled", "refunded") else []},
            )
        _save(order, {"payment_status": payment_status})
        _event(order, OrderEvent.Kind.NOTE, actor, message=f"Payment {payment_status}.",
               data={"payment_status": payment_status, "from": current, "reference": reference}).save(force_insert=True)
        invalidate(order, order.customer_id)
    return order


def order_update(*, order_id: uuid.UUID, expected_version: int | None = None, actor: str = "",
                 **changes: Any) -> Order:
    """PATCH: notes, shipping/billing address snapshots, metadata. Compares ``expected_version``
    (If-Match) under the row lock: 412 when it moved. Writes an ``updated`` event naming the fields."""
    writable(changes, {"notes", "shipping_address", "billing_address", "metadata"})
    with transaction.atomic(durable=True):
        order = _locked(order_id)
        if expected_version is not None and order.version != expected_version:
            raise PreconditionFailed(details={"current_version": order.version})
        if changes:
            _save(order, changes)
            _event(order, OrderEvent.Kind.UPDATED, actor, data={"fields": sorted(changes)}).save(force_insert=True)
            invalidate(order, order.customer_id)
    return order


def _save(order: Order, updates: dict[str, Any]) -> None:
    """Write ``updates`` and bump the version with one UPDATE pruned to the order's partition."""
    now = timezone.now()
    Order.objects.filter(id=order.id, created_at=order.created_at).update(
        **updates, version=F("version") + 1, updated_at=now
    )
    for name, value in updates.items():
        setattr(order, name, value)
    order.version += 1
    order.updated_at = now


# --- Returns (called by ``returns.services`` inside its own transaction) ----------------------------
# The returns app changes orders rows only through these. Each expects the order locked by
# ``order_lock`` (the first lock a return write takes), bumps the order's version (its detail embeds
# the returns, so its ETag must move) and invalidates the cached detail after commit.


def order_lock(*, order_id: uuid.UUID, named_in_body: bool = False) -> Order:
    """Lock the order row (``SELECT ... FOR UPDATE``) in the caller's transaction. Raises NotFound,
    or with ``named_in_body`` (a new shipment or return names its order in the request body)
    ValidationFailed ``order_not_found`` on the ``order_id`` field."""
    try:
        return _locked(order_id)
    except NotFound:
        if not named_in_body:
            raise
        raise ValidationFailed("No such order.", code="order_not_found",
                               details={"order_id": ["No such order."]}) from None


def order_lock_with(model: type[Any], child_id: uuid.UUID, not_found: NotFound) -> tuple[Order, Any]:
    """Lock the order of a child row (a shipment, a return), then the child: the global lock order
    every write to an order's children follows. Raises ``not_found`` when the child does not exist."""
    order_id = model.objects.filter(id=child_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise not_found
    order = _locked(order_id)
    return order, model.objects.select_for_update().get(id=child_id)  # children are never deleted


def order_return_changed(*, order: Order, actor: str = "", kind: str | None = None, message: str = "",
                         data: dict[str, Any] | None = None) -> None:
    """A return of ``order`` was written: timeline event ``kind`` (e.g. ``return_requested``) when
    given, version bump, cache invalidation."""
    if kind is not None:
        _event(order, kind, actor, message=message, data=data or {}).save(force_insert=True)
    _save(order, {})
    invalidate(order, order.customer_id)


def _add_units(order: Order, quantities: dict[uuid.UUID, int], *, counter: str, ceiling: str, code: str,
               message: str) -> None:
    """``counter += n`` per item of ``order`` (item id → n), in primary-key order, each UPDATE
    guarded so ``counter`` never passes ``ceiling``; InvalidTransition ``code`` naming the item when
    a guard says no (the caller's transaction then rolls back)."""
    for item_id in sorted(quantities):
        quantity = quantities[item_id]
        changed = OrderItem.objects.filter(
            id=item_id, order_id=order.id, **{f"{ceiling}__gte": F(counter) + quantity},
        ).update(**{counter: F(counter) + quantity})
        if not changed:
            raise InvalidTransition(message, code=code, details={"order_item_id": str(item_id), "quantity": quantity})


def order_items_returned(*, order: Order, quantities: dict[uuid.UUID, int]) -> None:
    """``quantity_returned += n`` per item of ``order``, in primary-key order, each guarded so it
    never exceeds ``quantity_fulfilled`` (the table's CHECK); raises InvalidTransition (409,
    ``exceeds_fulfilled``) naming the item when a guard says no (the caller's transaction then rolls
    back)."""
    _add_units(order, quantities, counter="quantity_returned", ceiling="quantity_fulfilled",
               code="exceeds_fulfilled", message="More units returned than were shipped.")
    _save(order, {})
    invalidate(order, order.customer_id)


def order_refund(*, order: Order, amount: Decimal, refunded_total: Decimal, actor: str = "",
                 data: dict[str, Any] | None = None) -> Order:
    """Record a refund of ``amount`` (``refunded_total`` = every refund of the order so far, this one
    included): payment ``refunded`` once ``refunded_total`` covers ``total_amount``, else
    ``partially_refunded``; a fully refunded order whose status allows it (``TRANSITIONS``, e.g.
    ``delivered → refunded``) moves to ``refunded`` with a ``status_changed`` event. Writes a
    ``refunded`` event. Raises InvalidTransition (409) when the order is not paid."""
    if order.payment_status not in PAID:
        raise InvalidTransition("Only a paid order can be refunded.", code="order_not_paid",
                                details={"payment_status": order.payment_status})
    full = refunded_total >= order.total_amount
    from_status = order.status
    updates: dict[str, Any] = {
        "payment_status": Order.PaymentStatus.REFUNDED if full else Order.PaymentStatus.PARTIALLY_REFUNDED,
    }
    events = [_event(order, OrderEvent.Kind.REFUNDED, actor, message=f"Refunded {amount} {order.currency}.",
                     data={"amount": str(amount), "refunded_total": str(refunded_total), **(data or {})})]
    if full and Order.Status.REFUNDED in TRANSITIONS.get(order.status, frozenset()):
        updates["status"] = Order.Status.REFUNDED
        events.append(_event(order, OrderEvent.Kind.STATUS_CHANGED, actor, from_status=order.status,
                             to_status=Order.Status.REFUNDED, message="fully refunded"))
    _save(order, updates)
    OrderEvent.objects.bulk_create(events)
    if order.status != from_status:
        _publish_status_change(order, from_status, order.status, "fully refunded")
    invalidate(order, order.customer_id)
    return order


# ---------------------------------------------------------------------------------------------------
# Fulfillment (SPEC §4.5): the order side of a shipment. ``fulfillment.services`` calls these inside
# its own durable transaction, after locking the order row with ``order_lock`` (above); each writes the
# timeline, moves statuses through TRANSITIONS, bumps the version and drops the cached detail.

FULFILLABLE = frozenset({Order.Status.PENDING, Order.Status.CONFIRMED, Order.Status.PROCESSING})


def order_check_fulfillable(order: Order) -> None:
    """Raise InvalidTransition (409) unless units of ``order`` may be allocated or shipped now, with
    code ``order_on_hold``, ``order_cancelled`` (cancelled or refunded) or ``order_fulfilled``
    (shipped or delivered: nothing is left to ship)."""
    if order.status in FULFILLABLE:
        return
    code = {Order.Status.ON_HOLD: "order_on_hold", Order.Status.CANCELLED: "order_cancelled",
            Order.Status.REFUNDED: "order_cancelled"}.get(order.status, "order_fulfilled")
    raise InvalidTransition(f"The order is {order.status}; it cannot be shipped.", code=code,
                            details={"order_id": str(order.id), "status": order.status})


def _fulfilment_move(order: Order, to_status: str, actor: str, updates: dict[str, Any],
                     events: list[OrderEvent], reason: str) -> None:
    if order.status == to_status or to_status not in TRANSITIONS.get(order.status, frozenset()):
        return
    events.append(_event(order, OrderEvent.Kind.STATUS_CHANGED, actor, from_status=order.status,
                         to_status=to_status, message=reason))
    updates["status"] = to_status


def _fulfilment_save(order: Order, updates: dict[str, Any], events: list[OrderEvent]) -> None:
    _save(order, updates)
    OrderEvent.objects.bulk_create(events)
    for event in events:
        if event.kind == OrderEvent.Kind.STATUS_CHANGED:
            _publish_status_change(order, event.from_status, event.to_status, event.message)
    invalidate(order, order.customer_id)


def order_shipment_created(*, order: Order, shipment_id: uuid.UUID, lines: Sequence[dict[str, Any]],
                           actor: str = "") -> Order:
    """A shipment was created for the locked ``order``: ``shipment_created`` event; a pending or
    confirmed order moves to ``processing`` (``status_changed``). Raises InvalidTransition (see
    :func:`order_check_fulfillable`)."""
    order_check_fulfillable(order)
    updates: dict[str, Any] = {}
    events = [_event(order, OrderEvent.Kind.SHIPMENT_CREATED, actor,
                     data={"shipment_id": str(shipment_id), "lines": list(lines)})]
    _fulfilment_move(order, Order.Status.PROCESSING, actor, updates, events, "shipment created")
    _fulfilment_save(order, updates, events)
    return order


def order_units_shipped(*, order: Order, quantities: dict[uuid.UUID, int], shipment_id: uuid.UUID,
                        actor: str = "") -> Order:
    """Units of the locked ``order`` left in a shipment: ``quantity_fulfilled += n`` per item
    (item id → n), in primary-key order, each guarded so it never exceeds ``quantity``; the order
    becomes ``partially_fulfilled`` (status stays ``processing``) or, with its last units,
    ``fulfilled`` and ``shipped``. Events ``shipped`` (+ ``status_changed``). Raises
    InvalidTransition (see :func:`order_check_fulfillable`; ``exceeds_unfulfilled`` when a guard
    says no, and the caller's transaction then rolls back)."""
    order_check_fulfillable(order)
    _add_units(order, quantities, counter="quantity_fulfilled", ceiling="quantity",
               code="exceeds_unfulfilled", message="More units than the order has left to ship.")
    done = not OrderItem.objects.filter(order_id=order.id, quantity_fulfilled__lt=F("quantity")).exists()
    updates: dict[str, Any] = {"fulfillment_status": Order.FulfillmentStatus.FULFILLED if done
                               else Order.FulfillmentStatus.PARTIALLY_FULFILLED}
    events = [_event(order, OrderEvent.Kind.SHIPPED, actor, data={
        "shipment_id": str(shipment_id), "units": sum(quantities.values()),
        "fulfillment_status": updates["fulfillment_status"]})]
    _fulfilment_move(order, Order.Status.PROCESSING, actor, updates, events, "shipment shipped")
    if done:
        order.status = updates.get("status", order.status)
        _fulfilment_move(order, Order.Status.SHIPPED, actor, updates, events, "last units shipped")
    _fulfilment_save(order, updates, events)
    return order


def order_shipment_delivered(*, order: Order, shipment_id: uuid.UUID, all_delivered: bool,
                             actor: str = "") -> Order:
    """A shipment of the locked ``order`` was delivered: ``delivered`` event; when every
    non-cancelled shipment of a fulfilled order is delivered (``all_delivered``) the order moves to
    ``delivered`` if the machine allows it from where it is (an order on hold stays on hold)."""
    updates: dict[str, Any] = {}
    events = [_event(order, OrderEvent.Kind.DELIVERED, actor, data={"shipment_id": str(shipment_id)})]
    if all_delivered and order.fulfillment_status == Order.FulfillmentStatus.FULFILLED:
        _fulfilment_move(order, Order.Status.DELIVERED, actor, updates, events, "every shipment delivered")
    _fulfilment_save(order, updates, events)
    return order


def order_shipment_changed(*, order: Order, shipment_id: uuid.UUID, note: str = "", actor: str = "") -> Order:
    """A shipment of the locked ``order`` changed without moving the order (cancelled, new tracking
    number): the order detail shows its shipments, so the version is bumped and the cache dropped;
    ``note`` (when given) goes on the timeline."""
    events = [_event(order, OrderEvent.Kind.NOTE, actor, message=note, data={"shipment_id": str(shipment_id)})] \
        if note else []
    _fulfilment_save(order, {}, events)
    return order
