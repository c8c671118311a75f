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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import F, Sum

from inventory import services as inventory_services
from orders import locks, pricing
from orders.models import Order, OrderEvent, OrderItem, Payment, ShippingLine
from orders.selectors import order_cache
from stateset.db import insert_rows, save_versioned
from stateset.errors import Conflict, InvalidTransition, ValidationFailed, check_transition
from stateset.money import ZERO, money_str, parse_money, round_money
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
PAID = frozenset({Order.PaymentStatus.PAID, Order.PaymentStatus.PARTIALLY_PAID,
                  Order.PaymentStatus.PARTIALLY_REFUNDED})


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
    event; refunding records a refund of whatever was captured and not yet refunded
    (:func:`payment_record_locked`), so ``payment_status`` stays what the payments say."""
    order_check_transition(order, to_status)
    if to_status == Order.Status.REFUNDED:
        refundable = payment_totals(order).refundable
        if refundable > 0:
            # The payments say what was refunded (SPEC §4.4.2): the rest of what was captured is
            # refunded, and that full refund moves the order (its status_changed event included).
            payment_record_locked(order=order, kind=Payment.Kind.REFUND, amount=refundable,
                                  actor=actor, data={"reason": reason} if reason else None)
            return order
    current = order.status
    updates: dict[str, Any] = {"status": to_status}
    events = [event(order, OrderEvent.Kind.STATUS_CHANGED, actor, from_status=current,
                    to_status=to_status, message=reason)]
    if to_status == Order.Status.CANCELLED:
        released = inventory_services.stock_release(reference_type="order",
                                                    reference_id=str(order.id),
                                                    order_cancelled=True,
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


def order_refund(*, order: Order, amount: Decimal, actor: str = "", reference: str = "",
                 data: dict[str, Any] | None = None) -> Payment | None:
    """A refund of ``amount`` for the locked ``order`` (a return's refund): recorded as a ``refund``
    payment capped at what was captured and not yet refunded (:func:`payment_record_locked`). None,
    and nothing recorded, when that cap is zero (an order never captured, or refunded already) or
    the amount is (a free line)."""
    capped = min(amount, payment_totals(order).refundable)
    if capped <= 0:
        return None
    return payment_record_locked(order=order, kind=Payment.Kind.REFUND, amount=capped,
                                 reference=reference, actor=actor, data=data)


# --- payments (SPEC §4.4.2): called by ``orders.services.payment_record`` and by returns ----------


@dataclass(frozen=True)
class PaymentTotals:
    """Sums of an order's succeeded payments, by kind."""

    total: Decimal
    authorized: Decimal
    captured: Decimal
    refunded: Decimal
    voided: Decimal

    @property
    def open_authorization(self) -> Decimal:
        """Authorized and neither captured nor voided."""
        return max(self.authorized - self.voided - self.captured, ZERO)

    @property
    def refundable(self) -> Decimal:
        return self.captured - self.refunded

    def limit(self, kind: str) -> Decimal:
        """The most a new payment of ``kind`` may be."""
        if kind == Payment.Kind.AUTHORIZATION:
            return max(self.total - max(self.authorized - self.voided, self.captured), ZERO)
        if kind == Payment.Kind.CAPTURE:
            return (self.open_authorization if self.authorized - self.voided > 0
                    else max(self.total - self.captured, ZERO))
        if kind == Payment.Kind.VOID:
            return self.open_authorization
        return self.refundable

    def status(self) -> str:
        """``payment_status`` as SPEC §4.4.2 derives it."""
        if self.refunded > 0:
            return (Order.PaymentStatus.REFUNDED if self.refunded >= self.captured
                    else Order.PaymentStatus.PARTIALLY_REFUNDED)
        if self.captured > 0:
            return (Order.PaymentStatus.PAID if self.captured >= self.total
                    else Order.PaymentStatus.PARTIALLY_PAID)
        if self.authorized - self.voided > 0:
            return Order.PaymentStatus.AUTHORIZED
        return Order.PaymentStatus.PENDING


def payment_totals(order: Order) -> PaymentTotals:
    """One query over the order's payments (read under the order lock, so they cannot move)."""
    sums = dict(Payment.objects.filter(order_id=order.id, order_created_at=order.created_at,
                                       status=Payment.Status.SUCCEEDED)
                .values("kind").annotate(total=Sum("amount")).order_by().values_list("kind",
                                                                                     "total"))
    return PaymentTotals(total=order.total_amount,
                         authorized=sums.get(Payment.Kind.AUTHORIZATION, ZERO),
                         captured=sums.get(Payment.Kind.CAPTURE, ZERO),
                         refunded=sums.get(Payment.Kind.REFUND, ZERO),
                         voided=sums.get(Payment.Kind.VOID, ZERO))


def payment_record_locked(*, order: Order, kind: str, amount: Decimal | str | None = None,
                          provider: str = "",
                          reference: str = "", succeeded: bool = True, actor: str = "",
                          data: dict[str, Any] | None = None) -> Payment:
    """Append a payment of the locked ``order`` within its bounds (:class:`PaymentTotals`), derive
    ``payment_status`` again, write a ``payment`` event (``refunded`` for a refund) and publish
    ``payment.recorded``; a full
    refund moves the order to ``refunded`` when its machine allows it. Raises Conflict
    ``payment_exceeds``, InvalidTransition (authorizing or capturing a cancelled/refunded order),
    ValidationFailed (bad amount)."""
    if kind in (Payment.Kind.AUTHORIZATION, Payment.Kind.CAPTURE) and order.status in (
            Order.Status.CANCELLED, Order.Status.REFUNDED):
        raise InvalidTransition(f"A {order.status} order takes no new {kind}.",
                                code=f"order_{order.status}",
                                details={"status": order.status, "kind": kind})
    totals = payment_totals(order)
    allowed = totals.limit(kind)
    wanted = (allowed if amount is None
              else parse_money(amount, order.currency, "amount", allow_zero=False))
    if kind == Payment.Kind.VOID and amount is not None and wanted != allowed:
        raise ValidationFailed("A void cancels the whole uncaptured rest.",
                               details={
                                   "amount": [
                                       "Leave it out, or give "
                                       f"{money_str(allowed, order.currency)}."]})
    if wanted <= 0 or wanted > allowed:
        raise Conflict(f"This {kind} exceeds what the order allows.", code="payment_exceeds",
                       details={
            "kind": kind, "requested": money_str(wanted, order.currency),
            "allowed": money_str(allowed, order.currency)})
    payment = Payment(order_id=order.id, order_created_at=order.created_at, kind=kind,
                      amount=wanted,
                      currency=order.currency, provider=provider, reference=reference, actor=actor,
                      status=Payment.Status.SUCCEEDED if succeeded else Payment.Status.FAILED)
    insert_rows([payment])
    after = totals
    if succeeded:
        after = PaymentTotals(total=totals.total, **{
            name: getattr(totals, name) + (wanted if kind == own else ZERO)
            for name,
            own in (("authorized", Payment.Kind.AUTHORIZATION), ("captured", Payment.Kind.CAPTURE),
                              ("refunded", Payment.Kind.REFUND), ("voided", Payment.Kind.VOID))})
    from_status, status = order.status, order.status
    updates: dict[str, Any] = {"payment_status": after.status()}
    kind_of_event = (OrderEvent.Kind.REFUNDED if kind == Payment.Kind.REFUND and succeeded
                     else OrderEvent.Kind.PAYMENT)
    events = [event(order, kind_of_event, actor,
                    message=f"{kind} of {money_str(wanted, order.currency)} {order.currency}"
                            + ("" if succeeded else " failed"),
                    data={"payment_id": str(payment.id), "kind": kind,
                          "amount": money_str(wanted, order.currency),
                          "status": payment.status, "payment_status": updates["payment_status"],
                          "reference": reference, **(data or {})})]
    if (succeeded and kind == Payment.Kind.REFUND and after.refunded >= after.captured
            and Order.Status.REFUNDED in TRANSITIONS.get(order.status, frozenset())):
        status = updates["status"] = Order.Status.REFUNDED
        events.append(event(order, OrderEvent.Kind.STATUS_CHANGED, actor, from_status=from_status,
                            to_status=status, message="fully refunded"))
    save(order, updates)
    insert_rows(events)
    webhooks.publish(event_type="payment.recorded", payload={
        **event_ref(order), "payment_id": str(payment.id), "kind": kind, "status": payment.status,
        "amount": money_str(wanted, order.currency), "currency": order.currency,
        "payment_status": order.payment_status, "provider": provider, "reference": reference})
    if status != from_status:
        publish_status_change(order, from_status, status, "fully refunded")
    invalidate(order, order.customer_id)
    return payment


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


def order_units_shipped(*, order: Order, quantities: dict[uuid.UUID, int],
                        shipment_id: uuid.UUID | None, actor: str = "",
                        reason: str = "last units shipped") -> Order:
    """Units of the locked ``order`` left in a shipment (``shipment_id``; None when staff or a
    client marked the order shipped without one): ``quantity_fulfilled += n`` per item
    (item id → n), in primary-key order, each guarded so it never exceeds ``quantity``; the order
    becomes ``partially_fulfilled`` (status stays ``processing``) or, with its last units,
    ``fulfilled`` and ``shipped`` (``reason`` on that move). Events ``shipped`` (+
    ``status_changed``). Raises
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
        "shipment_id": str(shipment_id) if shipment_id else None,
        "units": sum(quantities.values()), "fulfillment_status": updates["fulfillment_status"]})]
    _fulfilment_move(order, Order.Status.PROCESSING, actor, updates, events, "shipment shipped")
    if done:
        order.status = updates.get("status", order.status)
        _fulfilment_move(order, Order.Status.SHIPPED, actor, updates, events, reason)
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


# --- edits (SPEC §4.4.3): called by ``fulfillment.services.order_edit`` under the order lock ------

EDITABLE = frozenset({Order.Status.PENDING, Order.Status.CONFIRMED, Order.Status.PROCESSING,
                      Order.Status.ON_HOLD})


@dataclass(frozen=True)
class AddedLine:
    product: Any  # catalog.models.Product
    quantity: int
    unit_price: Decimal
    list_price: Decimal | None


def _snapshot(order: Order, items: Sequence[OrderItem]) -> dict[str, Any]:
    return {"total_amount": money_str(order.total_amount, order.currency),
            "lines": [{"order_item_id": str(i.id), "sku": i.sku, "quantity": i.quantity,
                       "net_total": money_str(i.net_total, order.currency)} for i in items]}


def order_edit_locked(*, order: Order, add: Sequence[AddedLine], change: Mapping[uuid.UUID, int],
                      remove: Sequence[uuid.UUID], claimed: Mapping[uuid.UUID, int],
                      claimed_at: Mapping[tuple[uuid.UUID, uuid.UUID], int], reason: str = "",
                      actor: str = "") -> Order:
    """Change the lines of the locked ``order``: ``change`` (line → new quantity), ``remove``,
    ``add``. A line may not drop below what shipped or sits in a pending shipment (``claimed``:
    line → units; 422 ``below_fulfilled``). Stock moves by the difference only
    (``inventory.services.stock_rebalance``: lowering a backordered line cuts its waiting units
    first; all or nothing, 409 ``insufficient_stock`` unless the line may be backordered); order
    discounts are spread again and totals and taxes recomputed (``orders.pricing``); an ``edited``
    timeline event with before and after; ``order.updated``. Raises InvalidTransition
    (``order_not_editable``), ValidationFailed, InsufficientStock."""
    if order.status not in EDITABLE:
        raise InvalidTransition(f"A {order.status} order cannot be edited.",
                                code="order_not_editable",
                                details={"status": order.status, "editable": sorted(EDITABLE)})
    items = list(OrderItem.objects.filter(order_id=order.id).order_by("sku", "id"))
    by_id = {item.id: item for item in items}
    errors: dict[str, Any] = {}
    for item_id in [*change, *remove]:
        if item_id not in by_id:
            errors[str(item_id)] = ["Not a line of this order."]
    if errors:
        raise ValidationFailed("Some lines are not part of this order.",
                               code="order_item_not_found", details={"lines": errors})
    for item_id, quantity in [*change.items(), *((i, 0) for i in remove)]:
        item = by_id[item_id]
        floor = item.quantity_fulfilled + claimed.get(item_id, 0)
        if quantity < floor or (quantity == 0 and floor):
            errors[str(item_id)] = {
                "quantity": [f"At least {floor}: shipped or in a pending shipment."],
                                    "shipped": item.quantity_fulfilled,
                "in_pending_shipments": claimed.get(item_id, 0)}
    if errors:
        raise ValidationFailed("A line cannot drop below what has shipped or is being shipped.",
                               code="below_fulfilled", details={"lines": errors})
    before = _snapshot(order, items)
    old_open = {item.id: item.quantity - item.quantity_fulfilled for item in items}
    old_quantity = {item.id: item.quantity for item in items}
    kept = [item for item in items if item.id not in set(remove)]
    for item in kept:
        item.quantity = change.get(item.id, item.quantity)
    added = [OrderItem(id=uuid.uuid4(), order_id=order.id, order_created_at=order.created_at,
                       product_id=line.product.id, sku=line.product.sku, name=line.product.name,
                       quantity=line.quantity, unit_price=line.unit_price,
                       list_price=line.list_price)
             for line in add]
    lines = [*kept, *added]
    if not lines:
        raise ValidationFailed("An order keeps at least one line; cancel it instead.",
                               details={"remove": ["An order keeps at least one line."]})
    _reprice(order, lines, old_quantity)
    # Order items before stock (the global lock order): write the lines, then move the stock.
    if remove:
        OrderItem.objects.filter(id__in=list(remove), order_id=order.id).delete()
    OrderItem.objects.bulk_update(kept,
                                  ["quantity", "total_price", "line_discount", "discount_total",
                                   "net_total",
                                         "tax_total", "taxes"])
    if added:
        insert_rows(added)
    deltas = [inventory_services.LineChange(line_id=item.id, product_id=item.product_id,
                                            units=(item.quantity - item.quantity_fulfilled
                                                   - old_open.get(item.id, 0)))
              for item in lines]
    deltas += [inventory_services.LineChange(line_id=item_id, product_id=by_id[item_id].product_id,
                                             units=-old_open[item_id]) for item_id in remove]
    inventory_services.stock_rebalance(
        queue=inventory_services.Queue(order_id=order.id, order_number=order.order_number,
                                       queued_at=order.created_at),
        changes=[d for d in deltas if d.units], claimed=claimed_at, actor=actor)
    save(order, {"subtotal": order.subtotal, "discount_total": order.discount_total,
                 "shipping_total": order.shipping_total, "tax_total": order.tax_total,
                 "total_amount": order.total_amount})
    after = _snapshot(order, sorted(lines, key=lambda i: (i.sku, i.id)))
    event(order, OrderEvent.Kind.EDITED, actor, message=reason,
          data={"before": before, "after": after}).save(force_insert=True)
    webhooks.publish(event_type="order.updated", payload={**event_ref(order), "change": "edited",
                                                          "before": before, "after": after})
    invalidate(order, order.customer_id)
    return order


def _reprice(order: Order, lines: Sequence[OrderItem],
             old_quantities: Mapping[uuid.UUID, int]) -> None:
    """Price the order's lines again after an edit (``orders.pricing``): each line keeps its unit
    price and own discount (capped at its new total), the order discounts are spread again, taxes
    are computed again from the address — or, when the channel sent them, scaled to the new
    quantity — and shipping is kept. Writes the new amounts onto ``order`` and ``lines``."""
    currency = order.currency
    inputs = []
    for line in lines:
        total = round_money(line.unit_price * line.quantity, currency)
        taxes = None
        if order.taxes_sent:
            old = old_quantities.get(line.id, line.quantity) or 1
            taxes = [pricing.Tax(t["name"], Decimal(t["rate"]),
                                 round_money(Decimal(t["amount"]) * line.quantity / old, currency))
                     for t in (line.taxes or [])]
        inputs.append(pricing.LineIn(quantity=line.quantity, unit_price=line.unit_price,
                                     discount=min(line.line_discount, total), taxes=taxes))
    shipping = [pricing.ShippingIn(method=s.method, amount=s.amount,
                                   taxes=[pricing.Tax(t["name"], Decimal(t["rate"]),
                                                      Decimal(t["amount"]))
                                          for t in s.taxes] if order.taxes_sent else None)
                for s in ShippingLine.objects.filter(order_id=order.id).order_by("id")]
    discounts = sum((Decimal(d["amount"]) for d in order.discounts), ZERO)
    rules = pricing.TaxRules.for_address(order.shipping_address,
                                         prices_include_tax=order.taxes_included)
    priced = pricing.price_order(currency=currency, lines=inputs, discounts=discounts,
                                 shipping=shipping, rules=rules)
    for line, given, result in zip(lines, inputs, priced.lines, strict=True):
        line.total_price, line.line_discount = result.total_price, given.discount
        line.discount_total, line.net_total = result.discount_total, result.net_total
        line.tax_total, line.taxes = result.tax_total, [tax.as_dict(currency)
                                                        for tax in result.taxes]
    if not order.taxes_sent:
        for row, ship in zip(ShippingLine.objects.filter(order_id=order.id).order_by("id"),
                             priced.shipping, strict=True):
            ShippingLine.objects.filter(id=row.id).update(tax_total=ship.tax_total,
                                                         taxes=[tax.as_dict(currency)
                                                                for tax in ship.taxes])
    order.subtotal, order.discount_total = priced.subtotal, priced.discount_total
    order.shipping_total, order.tax_total, order.total_amount = (priced.shipping_total,
                                                                 priced.tax_total,
                                                                 priced.total_amount)
