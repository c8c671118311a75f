"""Every durable write to orders (SPEC §4.4): each call is one transaction that locks the order
row first (``orders.locks``). What runs under that lock — the timeline, the status machine, the
callbacks of fulfillment and returns — is ``orders.under_lock``. Stock is reached only through
``inventory.services``. Cancelling is a use case of the fulfillment app (it also cancels the order's
pending shipments): ``fulfillment.services.order_cancel``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog import selectors as catalog_selectors
from catalog.models import Product
from customers import selectors as customers_selectors
from customers.models import Customer
from inventory import services as inventory_services
from orders import locks
from orders.models import Order, OrderEvent, OrderItem
from orders.selectors import CENT, order_cache
from orders.under_lock import event, event_ref, invalidate, order_move, save
from stateset import metrics
from stateset.db import insert_rows
from stateset.errors import InvalidTransition, PreconditionFailed, ValidationFailed
from stateset.inputs import writable
from webhooks import services as webhooks

MAX_LINES = 100


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


def _resolve_lines(lines: Sequence[OrderLineInput]) -> list[_Line]:
    """The products the lines name, through the catalog's selectors (one query each for ids and for
    SKUs); each line must name an active product, and a line naming both must name the same one."""
    if not lines:
        raise ValidationFailed("An order needs at least one item.",
                               details={"items": ["This list may not be empty."]})
    if len(lines) > MAX_LINES:
        raise ValidationFailed(f"An order has at most {MAX_LINES} items.",
                               details={"items": [f"At most {MAX_LINES}."]})
    by_id = catalog_selectors.products_by_ids(
        product_ids={line.product_id for line in lines if line.product_id})
    by_sku = catalog_selectors.products_by_skus(
        skus={line.sku for line in lines if line.sku and not line.product_id})
    resolved: list[_Line] = []
    errors: dict[str, Any] = {}
    for index, line in enumerate(lines):
        product = (by_id.get(line.product_id) if line.product_id
                   else by_sku.get((line.sku or "").upper()))
        if product is None:
            errors[str(index)] = {"product": ["No such product."]}
            continue
        if line.product_id and line.sku and line.sku.upper() != product.sku.upper():
            errors[str(index)] = {
                "sku": [f"product_id {product.id} has SKU {product.sku}, not {line.sku}."]}
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
    ``inventory.services.stock_reserve`` (inventory rows changed by conditional UPDATEs in
    primary-key order), never expiring: units are consumed as they ship and released on cancel.
    Raises NotFound-like ValidationFailed for an unknown customer or product, InsufficientStock
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
            if given.unit_price is not None
            and Decimal(given.unit_price).quantize(CENT) != line.unit_price
        }
        currencies = {line.product.currency for line in lines}
        if len(currencies) > 1:
            raise ValidationFailed("Items are priced in different currencies.",
                                   code="mixed_currency",
                                   details={"currencies": sorted(currencies)})
        subtotal = sum((line.total for line in lines), Decimal("0.00"))
        total = subtotal  # no tax, shipping or discount rules are configured
        if (mismatches
            or (total_amount is not None and Decimal(total_amount).quantize(CENT) != total)):
            details: dict[str, Any] = {"expected_total": str(total)}
            if mismatches:
                details["items"] = mismatches
            raise ValidationFailed("Prices do not match the catalog.", code="price_mismatch",
                                   details=details)

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
        order_items = [
            OrderItem(
                order_id=order.id, order_created_at=order.created_at, product_id=line.product.id,
                sku=line.product.sku, name=line.product.name, quantity=line.quantity,
                unit_price=line.unit_price, total_price=line.total,
            )
            for line in lines
        ]
        events = [
            event(order, OrderEvent.Kind.CREATED, actor, to_status=order.status,
                   data={"total_amount": str(total), "items": len(lines)}),
            event(order, OrderEvent.Kind.RESERVED, actor,
                   data={
                       "lines": [{"sku": line.product.sku, "quantity": line.quantity}
                                 for line in lines]}),
        ]
        insert_rows(order_items)
        insert_rows(events)
        webhooks.publish(event_type="order.created", payload={
            **event_ref(order), "customer_id": str(customer.id), "status": order.status,
            "currency": order.currency, "total_amount": str(total),
            "items": [{"sku": line.product.sku, "quantity": line.quantity,
                       "unit_price": str(line.unit_price)}
                      for line in lines],
        })
        # Stock last: the inventory row locks are then held only for the reservation's own writes
        # and the commit, which is what bounds throughput on a hot SKU.
        inventory_services.stock_reserve(
            lines=[inventory_services.ReserveLine(product_id=line.product.id,
                                                  quantity=line.quantity)
                   for line in lines],
            reference_type="order",
            reference_id=str(order.id),
            expires_at=None,
            actor=actor,
        )
        order_cache.invalidate_group(f"customer:{customer.id}")  # a new id has no detail to drop
        transaction.on_commit(metrics.ORDERS_CREATED.inc)
    return CreatedOrder(order=order, customer=customer, items=order_items, events=events)


def _locked(order_id: uuid.UUID, expected_version: int | None) -> Order:
    order = locks.lock_order(order_id)
    if expected_version is not None and order.version != expected_version:
        raise PreconditionFailed(details={"current_version": order.version})
    return order


def order_transition(*, order_id: uuid.UUID, to_status: str, reason: str = "", actor: str = "",
                     expected_version: int | None = None) -> Order:
    """Move an order along the status machine (``orders.under_lock.TRANSITIONS``) and write a
    ``status_changed`` event; refunding marks the payment refunded.

    Locks the order row. A cancellation is ``fulfillment.services.order_cancel`` (it cancels the
    order's pending shipments too); asked for here it is InvalidTransition ``use_cancel``. Raises
    InvalidTransition (409) for a move the machine forbids (including refunding an unpaid cancelled
    order), PreconditionFailed (412) on a stale ``expected_version``, NotFound."""
    with transaction.atomic(durable=True):
        order = _locked(order_id, expected_version)
        if to_status == Order.Status.CANCELLED:
            raise InvalidTransition("Cancel an order with fulfillment.services.order_cancel.",
                                    code="use_cancel")
        return order_move(order=order, to_status=to_status, reason=reason, actor=actor)


# Payment is captured elsewhere (a gateway); StateSet records what it was told, forward only.
# ``refunded`` and ``partially_refunded`` are set by refunds (``order_refund``), never here.
PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    Order.PaymentStatus.PENDING: frozenset({Order.PaymentStatus.AUTHORIZED,
                                            Order.PaymentStatus.PAID}),
    Order.PaymentStatus.AUTHORIZED: frozenset({Order.PaymentStatus.PAID}),
}


def order_record_payment(*, order_id: uuid.UUID, payment_status: str, reference: str = "",
                         actor: str = "", expected_version: int | None = None) -> Order:
    """Record that the order's payment was authorized or captured (``pending → authorized → paid``).
    Writes a ``note`` event with the gateway's reference. Raises InvalidTransition (409) for any
    other move or for a cancelled or refunded order, PreconditionFailed (412), NotFound."""
    with transaction.atomic(durable=True):
        order = _locked(order_id, expected_version)
        current = order.payment_status
        allowed = PAYMENT_TRANSITIONS.get(current, frozenset())
        if (payment_status not in allowed
            or order.status in (Order.Status.CANCELLED, Order.Status.REFUNDED)):
            raise InvalidTransition(
                f"The payment of a {order.status} order cannot go from {current} to "
                f"{payment_status}.",
                details={"from": current, "to": payment_status, "status": order.status,
                         "allowed": sorted(allowed) if order.status not in ("cancelled", "refunded")
                         else []},
            )
        save(order, {"payment_status": payment_status})
        event(order, OrderEvent.Kind.NOTE, actor, message=f"Payment {payment_status}.",
               data={"payment_status": payment_status, "from": current,
                     "reference": reference}).save(force_insert=True)
        invalidate(order, order.customer_id)
    return order


def order_update(*, order_id: uuid.UUID, changes: dict[str, Any],
                 expected_version: int | None = None, actor: str = "") -> Order:
    """PATCH: notes, shipping/billing address snapshots, metadata. Compares ``expected_version``
    (If-Match) under the row lock: 412 when it moved. Writes an ``updated`` event naming the
    fields."""
    changes = writable(changes, {"notes", "shipping_address", "billing_address", "metadata"})
    with transaction.atomic(durable=True):
        order = _locked(order_id, expected_version)
        if changes:
            save(order, changes)
            event(order, OrderEvent.Kind.UPDATED, actor,
                  data={"fields": sorted(changes)}).save(force_insert=True)
            invalidate(order, order.customer_id)
    return order
