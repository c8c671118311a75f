"""Writes to orders that run under a lock the caller already holds (STYLE.md: "a service that
expects its caller to hold a lock says so in its module").

Every function here expects the order row locked by ``orders.locks.lock_order`` in the caller's
transaction — the first lock of every write to an order or its children. ``orders.services`` calls
them after taking that lock itself; ``fulfillment.services`` and ``returns.services`` call them
after locking the order and then their own rows (the global order: ``stateset/locking.py``). Each
one writes the order's timeline, moves statuses through ``TRANSITIONS``, bumps the order's version
(its detail embeds shipments and returns, so its ETag must move) and drops its cached detail after
commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db.models import F

from inventory import services as inventory_services
from orders import locks
from orders.models import Order, OrderEvent, OrderItem
from orders.selectors import order_cache
from stateset.db import save_versioned
from stateset.errors import InvalidTransition, check_transition
from webhooks import services as webhooks

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


# --- the timeline, the outbox, the version -------------------------------------------------------


def invalidate(order: Order | uuid.UUID, customer_id: uuid.UUID | None = None) -> None:
    """Drop the order's cached detail (and its customer's cached order pages) now and after
    commit."""
    order_id = order.id if isinstance(order, Order) else order
    order_cache.invalidate(order_cache.key("detail", order_id))
    if customer_id is not None:
        order_cache.invalidate_group(f"customer:{customer_id}")


def event(order: Order, kind: str, actor: str, **fields: Any) -> OrderEvent:
    """A timeline row of ``order`` (not saved)."""
    return OrderEvent(order_id=order.id, order_created_at=order.created_at, kind=kind, actor=actor,
                      **fields)


def event_ref(order: Order) -> dict[str, Any]:
    """How a webhook payload names an order."""
    return {"order_id": str(order.id), "order_number": order.order_number}


def publish_status_change(order: Order, from_status: str, to_status: str, reason: str) -> None:
    payload = {**event_ref(order), "from_status": from_status, "to_status": to_status,
               "reason": reason}
    webhooks.publish(event_type="order.status_changed", payload=payload)
    if to_status == Order.Status.CANCELLED:
        webhooks.publish(event_type="order.cancelled", payload=payload)


def save(order: Order, updates: dict[str, Any]) -> None:
    """Write ``updates`` and bump the version with one UPDATE pruned to the order's partition."""
    save_versioned(order, updates, where={"created_at": order.created_at})


def _add_units(order: Order, quantities: dict[uuid.UUID, int], *, counter: str, ceiling: str,
               code: str, message: str) -> None:
    """``counter += n`` per item of ``order`` (item id → n), in primary-key order, each UPDATE
    guarded so ``counter`` never passes ``ceiling``; InvalidTransition ``code`` naming the item when
    a guard says no (the caller's transaction then rolls back)."""
    locks.items_locked_by_update(quantities)
    for item_id in sorted(quantities):
        quantity = quantities[item_id]
        changed = OrderItem.objects.filter(
            id=item_id, order_id=order.id, **{f"{ceiling}__gte": F(counter) + quantity},
        ).update(**{counter: F(counter) + quantity})
        if not changed:
            raise InvalidTransition(message, code=code,
                                    details={"order_item_id": str(item_id), "quantity": quantity})


# --- the status machine ---------------------------------------------------------------------------


def order_check_transition(order: Order, to_status: str) -> None:
    """InvalidTransition (409) unless the machine allows ``order`` to move to ``to_status`` now
    (refunding a cancelled order also needs it paid)."""
    check_transition(TRANSITIONS, order.status, to_status, entity="An order")
    if to_status == Order.Status.REFUNDED and order.status == Order.Status.CANCELLED \
            and order.payment_status not in PAID:
        raise InvalidTransition("A cancelled order is refunded only if it was paid.",
                                details={"from": order.status, "to": to_status,
                                         "payment_status": order.payment_status})


def order_move(*, order: Order, to_status: str, reason: str = "", actor: str = "") -> Order:
    """Move the locked ``order`` to ``to_status`` (checked first) with a ``status_changed`` event.
    Cancelling releases its still-active reservations (ledger ``release`` rows through
    ``inventory.services.stock_release``: reservations, then inventory rows) with a ``released``
    event; refunding marks the payment refunded."""
    order_check_transition(order, to_status)
    current = order.status
    updates: dict[str, Any] = {"status": to_status}
    if to_status == Order.Status.REFUNDED:
        updates["payment_status"] = Order.PaymentStatus.REFUNDED
    events = [event(order, OrderEvent.Kind.STATUS_CHANGED, actor, from_status=current,
                    to_status=to_status, message=reason)]
    if to_status == Order.Status.CANCELLED:
        released = inventory_services.stock_release(reference_type="order",
                                                    reference_id=str(order.id),
                                                    actor=actor, reason=reason or "order cancelled")
        events.append(event(order, OrderEvent.Kind.RELEASED, actor,
                            data={"reservations": [str(r.id) for r in released]}))
    save(order, updates)
    OrderEvent.objects.bulk_create(events)
    publish_status_change(order, current, to_status, reason)
    invalidate(order, order.customer_id)
    return order


# --- returns (SPEC §4.6): called by ``returns.services`` under the order lock ---------------------


def order_return_changed(*, order: Order, actor: str = "", kind: str | None = None,
                         message: str = "", data: dict[str, Any] | None = None) -> None:
    """A return of ``order`` was written: timeline event ``kind`` (e.g. ``return_requested``) when
    given, version bump, cache invalidation."""
    if kind is not None:
        event(order, kind, actor, message=message, data=data or {}).save(force_insert=True)
    save(order, {})
    invalidate(order, order.customer_id)


def order_items_returned(*, order: Order, quantities: dict[uuid.UUID, int]) -> None:
    """``quantity_returned += n`` per item of ``order``, in primary-key order, each guarded so it
    never exceeds ``quantity_fulfilled`` (the table's CHECK); raises InvalidTransition (409,
    ``exceeds_fulfilled``) naming the item when a guard says no (the caller's transaction then rolls
    back)."""
    _add_units(order, quantities, counter="quantity_returned", ceiling="quantity_fulfilled",
               code="exceeds_fulfilled", message="More units returned than were shipped.")
    save(order, {})
    invalidate(order, order.customer_id)


def order_refund(*, order: Order, amount: Decimal, refunded_total: Decimal, actor: str = "",
                 data: dict[str, Any] | None = None) -> Order:
    """Record a refund of ``amount`` (``refunded_total`` = every refund of the order so far, this
    one included): payment ``refunded`` once ``refunded_total`` covers ``total_amount``, else
    ``partially_refunded``; a fully refunded order whose status allows it (``TRANSITIONS``, e.g.
    ``delivered → refunded``) moves to ``refunded`` with a ``status_changed`` event. Writes a
    ``refunded`` event. Raises InvalidTransition (409) when the order is not paid."""
    if order.payment_status not in PAID:
        raise InvalidTransition("Only a paid order can be refunded.", code="order_not_paid",
                                details={"payment_status": order.payment_status})
    full = refunded_total >= order.total_amount
    from_status = order.status
    updates: dict[str, Any] = {
        "payment_status": Order.PaymentStatus.REFUNDED if full
        else Order.PaymentStatus.PARTIALLY_REFUNDED,
    }
    events = [event(order, OrderEvent.Kind.REFUNDED, actor,
                    message=f"Refunded {amount} {order.currency}.",
                     data={"amount": str(amount), "refunded_total": str(refunded_total),
                           **(data or {})})]
    if full and Order.Status.REFUNDED in TRANSITIONS.get(order.status, frozenset()):
        updates["status"] = Order.Status.REFUNDED
        events.append(event(order, OrderEvent.Kind.STATUS_CHANGED, actor, from_status=order.status,
                             to_status=Order.Status.REFUNDED, message="fully refunded"))
    save(order, updates)
    OrderEvent.objects.bulk_create(events)
    if order.status != from_status:
        publish_status_change(order, from_status, order.status, "fully refunded")
    invalidate(order, order.customer_id)
    return order


# --- fulfillment (SPEC §4.5): called by ``fulfillment.services`` under the order lock -------------

FULFILLABLE = frozenset({Order.Status.PENDING, Order.Status.CONFIRMED, Order.Status.PROCESSING})


def order_check_fulfillable(order: Order) -> None:
    """Raise InvalidTransition (409) unless units of ``order`` may be allocated or shipped now, with
    code ``order_on_hold``, ``order_cancelled`` (cancelled or refunded) or ``order_fulfilled``
    (shipped or delivered: nothing is left to ship)."""
    if order.status in FULFILLABLE:
        return
    codes: dict[str, str] = {Order.Status.ON_HOLD: "order_on_hold",
                             Order.Status.CANCELLED: "order_cancelled",
                             Order.Status.REFUNDED: "order_cancelled"}
    code = codes.get(order.status, "order_fulfilled")
    raise InvalidTransition(f"The order is {order.status}; it cannot be shipped.", code=code,
                            details={"order_id": str(order.id), "status": order.status})


def _fulfilment_move(order: Order, to_status: str, actor: str, updates: dict[str, Any],
                     events: list[OrderEvent], reason: str) -> None:
    if order.status == to_status or to_status not in TRANSITIONS.get(order.status, frozenset()):
        return
    events.append(event(order, OrderEvent.Kind.STATUS_CHANGED, actor, from_status=order.status,
                         to_status=to_status, message=reason))
    updates["status"] = to_status


def _fulfilment_write(order: Order, updates: dict[str, Any], events: list[OrderEvent]) -> None:
    save(order, updates)
    OrderEvent.objects.bulk_create(events)
    for event in events:
        if event.kind == OrderEvent.Kind.STATUS_CHANGED:
            publish_status_change(order, event.from_status, event.to_status, event.message)
    invalidate(order, order.customer_id)


def order_shipment_created(*, order: Order, shipment_id: uuid.UUID, lines: Sequence[dict[str, Any]],
                           actor: str = "") -> Order:
    """A shipment was created for the locked ``order``: ``shipment_created`` event; a pending or
    confirmed order moves to ``processing`` (``status_changed``). Raises InvalidTransition (see
    :func:`order_check_fulfillable`)."""
    order_check_fulfillable(order)
    updates: dict[str, Any] = {}
    events = [event(order, OrderEvent.Kind.SHIPMENT_CREATED, actor,
                     data={"shipment_id": str(shipment_id), "lines": list(lines)})]
    _fulfilment_move(order, Order.Status.PROCESSING, actor, updates, events, "shipment created")
    _fulfilment_write(order, updates, events)
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
    done = not OrderItem.objects.filter(order_id=order.id,
                                        quantity_fulfilled__lt=F("quantity")).exists()
    updates: dict[str, Any] = {"fulfillment_status": Order.FulfillmentStatus.FULFILLED if done
                               else Order.FulfillmentStatus.PARTIALLY_FULFILLED}
    events = [event(order, OrderEvent.Kind.SHIPPED, actor, data={
        "shipment_id": str(shipment_id), "units": sum(quantities.values()),
        "fulfillment_status": updates["fulfillment_status"]})]
    _fulfilment_move(order, Order.Status.PROCESSING, actor, updates, events, "shipment shipped")
    if done:
        order.status = updates.get("status", order.status)
        _fulfilment_move(order, Order.Status.SHIPPED, actor, updates, events, "last units shipped")
    _fulfilment_write(order, updates, events)
    return order


def order_shipment_delivered(*, order: Order, shipment_id: uuid.UUID, all_delivered: bool,
                             actor: str = "") -> Order:
    """A shipment of the locked ``order`` was delivered: ``delivered`` event; when every
    non-cancelled shipment of a fulfilled order is delivered (``all_delivered``) the order moves to
    ``delivered`` if the machine allows it from where it is (an order on hold stays on hold)."""
    updates: dict[str, Any] = {}
    events = [event(order, OrderEvent.Kind.DELIVERED, actor,
                    data={"shipment_id": str(shipment_id)})]
    if all_delivered and order.fulfillment_status == Order.FulfillmentStatus.FULFILLED:
        _fulfilment_move(order, Order.Status.DELIVERED, actor, updates, events,
                         "every shipment delivered")
    _fulfilment_write(order, updates, events)
    return order


def order_shipment_changed(*, order: Order, shipment_id: uuid.UUID, note: str = "",
                           actor: str = "") -> Order:
    """A shipment of the locked ``order`` changed without moving the order (cancelled, new tracking
    number): the order detail shows its shipments, so the version is bumped and the cache dropped;
    ``note`` (when given) goes on the timeline."""
    events = [event(order, OrderEvent.Kind.NOTE, actor, message=note,
                    data={"shipment_id": str(shipment_id)})] \
        if note else []
    _fulfilment_write(order, {}, events)
    return order
