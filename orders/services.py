"""Every durable write to orders (SPEC §4.4): each call is one transaction that locks the order
row first (``orders.locks``). What runs under that lock — the timeline, the status machine,
payments, the callbacks of fulfillment and returns — is ``orders.under_lock``; prices, discounts and
taxes are
``orders.pricing``. Stock is reached only through ``inventory.services``. Cancelling is a use case
of the fulfillment app (it also cancels the order's pending shipments):
``fulfillment.services.order_cancel``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from catalog import selectors as catalog_selectors
from catalog.models import Product
from customers import selectors as customers_selectors
from customers.models import Customer
from inventory import services as inventory_services
from orders import locks, pricing
from orders.models import ChannelOrder, Order, OrderEvent, OrderItem, Payment, ShippingLine
from orders.selectors import order_cache
from orders.under_lock import (
    AddedLine,
    event,
    event_ref,
    invalidate,
    order_move,
    payment_record_locked,
    save,
)
from stateset import metrics
from stateset.db import batched_inserts, insert_rows
from stateset.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    PreconditionFailed,
    ValidationFailed,
)
from stateset.inputs import clean_json_object, clean_text, writable
from stateset.money import ZERO, money_str, parse_money
from webhooks import services as webhooks

MAX_LINES = 100
MAX_SHIPPING_LINES = 20
MAX_DISCOUNTS = 20
MAX_TAXES = 10
CHANNEL_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
Kind = Payment.Kind


@dataclass(frozen=True)
class CreatedOrder:
    """What ``order_create`` wrote, so the caller can answer without reading it back."""

    order: Order
    customer: Customer
    items: list[OrderItem]
    events: list[OrderEvent]
    shipping_lines: list[ShippingLine]
    backordered: dict[uuid.UUID, int]  # order line id → units waiting for stock


@dataclass(frozen=True)
class OrderLineInput:
    quantity: int
    product_id: uuid.UUID | None = None
    sku: str | None = None
    unit_price: Decimal | str | None = None
    discount: Decimal | str | None = None
    taxes: Sequence[Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class ShippingLineInput:
    method: str
    amount: Decimal | str
    taxes: Sequence[Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class DiscountInput:
    amount: Decimal | str
    code: str = ""
    description: str = ""


# --- the lines: products, prices, currency --------------------------------------------------------


def _products(lines: Sequence[OrderLineInput]) -> list[Product]:
    """The active product each line names, through the catalog's selectors (one query each for ids
    and for SKUs); a line naming both must name the same product."""
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
    products: list[Product] = []
    errors: dict[str, Any] = {}
    for index, line in enumerate(lines):
        product = (by_id.get(line.product_id) if line.product_id
                   else by_sku.get((line.sku or "").upper()))
        if product is None:
            errors[str(index)] = {"product": ["No such product."]}
        elif line.product_id and line.sku and line.sku.upper() != product.sku.upper():
            errors[str(index)] = {
                "sku": [f"product_id {product.id} has SKU {product.sku}, not {line.sku}."]}
        elif not product.is_active:
            errors[str(index)] = {"product": [f"{product.sku} is not active."]}
        else:
            products.append(product)
    if errors:
        inactive = all("not active" in str(e) for e in errors.values())
        raise ValidationFailed("Some items name no active product.",
                               code="product_inactive" if inactive else "product_not_found",
                               details={"items": errors})
    return products


def _currency(given: str | None, products: Sequence[Product], lines: Sequence[OrderLineInput],
              set_prices: bool) -> str:
    """The order's currency: the one given, else the products' one. A product priced in another
    currency is ``mixed_currency`` unless the key may set prices and sends that line's price."""
    if given is not None:
        currency = clean_text(given, "currency", 3).upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise ValidationFailed("currency must be an ISO 4217 code.",
                                   details={"currency": ["Use a code such as USD."]})
    else:
        currency = products[0].currency
    foreign = {
        str(index): {
            "currency": [
                f"{product.sku} is priced in {product.currency}, the order in {currency}."]}
        for index, (product, line) in enumerate(zip(products, lines, strict=True))
        if product.currency != currency and not (set_prices and line.unit_price is not None)
    }
    if foreign:
        raise ValidationFailed("Items are priced in different currencies.", code="mixed_currency",
                               details={
                                   "currencies": sorted(
                                       {p.currency for p in products} | {currency}),
                                        "items": foreign})
    return currency


def _taxes(raw: Sequence[Mapping[str, Any]] | None, currency: str,
           field: str) -> list[pricing.Tax] | None:
    if raw is None:
        return None
    if len(raw) > MAX_TAXES:
        raise ValidationFailed(f"At most {MAX_TAXES} taxes.",
                               details={field: [f"At most {MAX_TAXES}."]})
    taxes = []
    for index, tax in enumerate(raw):
        name = clean_text(tax.get("name"), f"{field}[{index}].name", 64, required=True)
        try:
            rate = Decimal(str(tax.get("rate")))
        except InvalidOperation:
            rate = Decimal(-1)
        if isinstance(tax.get("rate"), bool) or not rate.is_finite() or not 0 <= rate < 1:
            raise ValidationFailed("A tax rate is a decimal in [0, 1).",
                                   details={f"{field}[{index}].rate": ["Use e.g. \"0.08875\"."]})
        amount = parse_money(tax.get("amount"), currency, f"{field}[{index}].amount")
        taxes.append(pricing.Tax(name=name, rate=rate, amount=amount))
    return taxes


def _price(lines: Sequence[OrderLineInput], products: Sequence[Product], currency: str,
           set_prices: bool) -> tuple[list[pricing.LineIn], list[Decimal | None]]:
    """Each line's unit price (the catalog's, or — for a key that may set prices — the channel's),
    its own discount and the channel's taxes; and each line's list price (the catalog's, in the
    order's currency, else None). ``price_mismatch`` names every line whose sent price disagrees
    with the catalog; ``taxes`` from a key that may not set prices are Forbidden."""
    priced: list[pricing.LineIn] = []
    list_prices: list[Decimal | None] = []
    mismatches: dict[str, Any] = {}
    for index, (line, product) in enumerate(zip(lines, products, strict=True)):
        catalog = product.price if product.currency == currency else None
        unit = catalog
        if line.unit_price is not None:
            given = parse_money(line.unit_price, currency, f"items[{index}].unit_price")
            if set_prices:
                unit = given
            elif given != catalog:
                mismatches[str(index)] = {
                    "unit_price": [f"The catalog price is {money_str(catalog, currency)}."]}
        if line.taxes is not None and not set_prices:
            raise Forbidden("Only a key with orders:set_prices may send taxes.",
                            code="set_prices_required",
                            details={
                                "items": {
                                    str(index): {"taxes": ["Needs the orders:set_prices scope."]}}})
        discount = (parse_money(line.discount, currency, f"items[{index}].discount")
                    if line.discount is not None else ZERO)
        assert unit is not None  # _currency refused a foreign product without a sent price
        priced.append(pricing.LineIn(quantity=line.quantity, unit_price=unit, discount=discount,
                                     taxes=_taxes(line.taxes, currency, f"items[{index}].taxes")))
        list_prices.append(catalog)
    if mismatches:
        raise ValidationFailed("Prices do not match the catalog.", code="price_mismatch",
                               details={"items": mismatches})
    return priced, list_prices


def _shipping(lines: Sequence[ShippingLineInput], currency: str,
              set_prices: bool) -> list[pricing.ShippingIn]:
    if len(lines) > MAX_SHIPPING_LINES:
        raise ValidationFailed(f"At most {MAX_SHIPPING_LINES} shipping lines.",
                               details={"shipping_lines": [f"At most {MAX_SHIPPING_LINES}."]})
    out = []
    for index, line in enumerate(lines):
        if line.taxes is not None and not set_prices:
            raise Forbidden("Only a key with orders:set_prices may send taxes.",
                            code="set_prices_required",
                            details={
                                "shipping_lines": {
                                    str(index): {"taxes": ["Needs the orders:set_prices scope."]}}})
        out.append(pricing.ShippingIn(
            method=clean_text(line.method, f"shipping_lines[{index}].method", 100, required=True),
            amount=parse_money(line.amount, currency, f"shipping_lines[{index}].amount"),
            taxes=_taxes(line.taxes, currency, f"shipping_lines[{index}].taxes")))
    return out


def _discounts(discounts: Sequence[DiscountInput], currency: str) -> tuple[Decimal,
                                                                           list[dict[str, Any]]]:
    if len(discounts) > MAX_DISCOUNTS:
        raise ValidationFailed(f"At most {MAX_DISCOUNTS} discounts.",
                               details={"discounts": [f"At most {MAX_DISCOUNTS}."]})
    total, kept = ZERO, []
    for index, discount in enumerate(discounts):
        amount = parse_money(discount.amount, currency, f"discounts[{index}].amount",
                             allow_zero=False)
        total += amount
        kept.append({"code": clean_text(discount.code, f"discounts[{index}].code", 64),
                     "description": clean_text(discount.description,
                                               f"discounts[{index}].description", 255),
                     "amount": money_str(amount, currency)})
    return total, kept


def _channel(channel: str, external_id: str) -> tuple[str, str]:
    channel = clean_text(channel, "channel", 32) or "api"
    if not CHANNEL_RE.match(channel):
        raise ValidationFailed("Invalid channel.", details={"channel": [
            "Lower-case letters, digits, '.', '_' and '-', at most 32, e.g. shopify."]})
    return channel, clean_text(external_id, "external_id", 128)


_CLAIM_SQL = f"""
INSERT INTO {ChannelOrder._meta.db_table} (channel, external_id, order_id, order_created_at)
VALUES (%s, %s, %s, %s) ON CONFLICT (channel, external_id) DO NOTHING RETURNING id
"""


def _claim_channel_order(order: Order) -> None:
    """The order is the channel's ``external_id`` once: the lookup table's unique constraint says
    so (a concurrent duplicate waits for the first to commit, then finds it). Conflict
    ``duplicate_order`` with ``details.order_id`` of the first."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [order.channel, order.external_id, order.id, order.created_at])
        if cursor.fetchone():
            return
    first = (ChannelOrder.objects.filter(channel=order.channel, external_id=order.external_id)
             .values_list("order_id", flat=True).first())
    raise Conflict("This channel order exists already.", code="duplicate_order",
                   details={"order_id": str(first), "channel": order.channel,
                            "external_id": order.external_id})


def order_create(
    *,
    customer_id: uuid.UUID,
    items: Sequence[OrderLineInput],
    shipping_lines: Sequence[ShippingLineInput] = (),
    discounts: Sequence[DiscountInput] = (),
    currency: str | None = None,
    channel: str = "api",
    external_id: str = "",
    total_amount: Decimal | str | None = None,
    shipping_address: dict[str, Any] | None = None,
    billing_address: dict[str, Any] | None = None,
    notes: str = "",
    metadata: dict[str, Any] | None = None,
    set_prices: bool = False,
    actor: str = "",
) -> CreatedOrder:
    """Create an order, price it (SPEC §4.4.1) and reserve stock for every line, in one transaction.

    Prices come from the catalog; with ``set_prices`` (a key holding ``orders:set_prices``) a line's
    ``unit_price`` and the channel's ``taxes`` are taken as sent (the catalog's price is kept as
    ``list_price``). Discounts, taxes and shipping are priced by ``orders.pricing``. A
    ``(channel, external_id)`` pair is claimed in ``orders_channelorder`` before stock is touched.
    Stock is reserved last, through ``inventory.services.stock_reserve_for_order`` (never expiring:
    units are consumed as they ship, released on cancel); a line whose product allows backorders
    reserves what is sellable and waits for the rest in the inventory app's queue.

    Raises ValidationFailed (``customer_not_found``, ``product_not_found``, ``product_inactive``,
    ``price_mismatch``, ``mixed_currency``, ``discount_exceeds``, ``total_mismatch`` with
    ``details.expected``, a bad amount), Forbidden (``set_prices_required``: taxes from a key
    that may not set prices), Conflict (``duplicate_order``), InsufficientStock (409) naming each
    short line. Nothing is written unless everything is. After commit: the customer's order lists
    are invalidated and ``orders_created_total`` counts it."""
    channel, external_id = _channel(channel, external_id)
    metadata = clean_json_object(metadata, "metadata")
    shipping_address, billing_address = (
        None if address is None else clean_json_object(address, name)
        for name, address in (("shipping_address", shipping_address),
                              ("billing_address", billing_address)))

    def attempt(optimistic: bool) -> CreatedOrder:
        with transaction.atomic(durable=True):
            customer = customers_selectors.customer_get(customer_id=customer_id)
            if customer is None:
                raise ValidationFailed("No such customer.", code="customer_not_found",
                                       details={"customer_id": ["No such customer."]})
            products = _products(items)
            order_currency = _currency(currency, products, items, set_prices)
            line_inputs, list_prices = _price(items, products, order_currency, set_prices)
            discount_total, discount_rows = _discounts(discounts, order_currency)
            priced = pricing.price_order(
                currency=order_currency, lines=line_inputs, discounts=discount_total,
                shipping=_shipping(shipping_lines, order_currency, set_prices),
                rules=pricing.TaxRules.for_address(shipping_address))
            if (total_amount is not None and parse_money(total_amount, order_currency,
                                                         "total_amount") != priced.total_amount):
                expected = money_str(priced.total_amount, order_currency)
                raise ValidationFailed("total_amount does not match the order's lines.",
                                       code="total_mismatch",
                                       details={"expected": expected,
                                                "total_amount": [f"The order totals {expected}."]})

            order = Order(
                id=uuid.uuid4(), created_at=timezone.now(), customer_id=customer.id,
                currency=order_currency,
                subtotal=priced.subtotal, discount_total=priced.discount_total,
                shipping_total=priced.shipping_total,
                tax_total=priced.tax_total, total_amount=priced.total_amount,
                taxes_included=priced.prices_include_tax,
                taxes_sent=any(line.taxes is not None for line in items)
                or any(s.taxes is not None for s in shipping_lines),
                discounts=discount_rows, channel=channel, external_id=external_id,
                shipping_address=shipping_address, billing_address=billing_address, notes=notes,
                metadata=metadata or {},
            )
            insert_rows([order], returning=("order_number",))
            if external_id:
                _claim_channel_order(order)
            order_items = [
                OrderItem(
                    order_id=order.id, order_created_at=order.created_at, product_id=product.id,
                    sku=product.sku,
                    name=product.name, quantity=line.quantity, unit_price=line.unit_price,
                    list_price=list_price,
                    total_price=line.total_price, line_discount=given.discount,
                    discount_total=line.discount_total, net_total=line.net_total,
                    tax_total=line.tax_total,
                    taxes=[tax.as_dict(order_currency) for tax in line.taxes],
                )
                for product, line, given,
                list_price in zip(products, priced.lines, line_inputs, list_prices, strict=True)
            ]
            shipping = [
                ShippingLine(order_id=order.id, order_created_at=order.created_at,
                             method=ship.method, amount=ship.amount,
                             tax_total=ship.tax_total,
                             taxes=[tax.as_dict(order_currency) for tax in ship.taxes])
                for ship in priced.shipping
            ]
            total = money_str(order.total_amount, order_currency)
            events = [
                event(order, OrderEvent.Kind.CREATED, actor, to_status=order.status,
                      data={"total_amount": total, "items": len(order_items)}),
                event(order, OrderEvent.Kind.RESERVED, actor,
                      data={
                          "lines": [{"sku": item.sku, "quantity": item.quantity}
                                    for item in order_items]}),
            ]
            # Stock, then every row of the order in the same round trip (``batched_inserts``): the
            # inventory row locks are held for the conditional UPDATE, one INSERT statement and the
            # commit, which is what bounds throughput on a hot SKU.
            with batched_inserts():
                reserved = inventory_services.stock_reserve_for_order(
                    lines=[inventory_services.ReserveLine(
                        product_id=item.product_id, quantity=item.quantity,
                        backorder_line_id=item.id,
                        product=inventory_services.ProductRef(product.id, product.sku,
                                                              product.is_active,
                                                              product.allow_backorder))
                           for item, product in zip(order_items, products, strict=True)],
                    queue=inventory_services.Queue(order_id=order.id,
                                                   order_number=order.order_number,
                                                   queued_at=order.created_at),
                    actor=actor, optimistic=optimistic,
                )
                insert_rows(order_items)
                if shipping:
                    insert_rows(shipping)
                insert_rows(events)
                webhooks.publish(event_type="order.created", payload={
                    **event_ref(order), "customer_id": str(customer.id), "status": order.status,
                    "currency": order.currency, "total_amount": total, "channel": channel,
                    "external_id": external_id,
                    "items": [{"sku": item.sku, "quantity": item.quantity,
                               "unit_price": money_str(item.unit_price, order_currency)}
                              for item in order_items],
                })
            if reserved.backordered:
                waiting = [{"sku": item.sku, "order_item_id": str(item.id),
                            "quantity": reserved.backordered[item.id]}
                           for item in order_items if item.id in reserved.backordered]
                event(order, OrderEvent.Kind.NOTE, actor, message="Backordered: waiting for stock.",
                      data={"backordered": waiting}).save(force_insert=True)
            # A new id has no detail to drop.
            order_cache.invalidate_group(f"customer:{customer.id}")
            transaction.on_commit(metrics.ORDERS_CREATED.inc)
        return CreatedOrder(order=order, customer=customer, items=order_items, events=events,
                            shipping_lines=shipping, backordered=reserved.backordered)

    # The stock is reserved optimistically first (inventory.services.stock_reserve_for_order): a
    # hot row is locked by its conditional UPDATE, not before it. When that row changed under the
    # plan, the transaction (which may hold the row's lock) is rolled back and the order made
    # again with its rows locked in order first.
    try:
        return attempt(optimistic=True)
    except inventory_services.StockRaced:
        return attempt(optimistic=False)


def _locked(order_id: uuid.UUID, expected_version: int | None) -> Order:
    order = locks.lock_order(order_id)
    if expected_version is not None and order.version != expected_version:
        raise PreconditionFailed(details={"current_version": order.version})
    return order


def order_transition(*, order_id: uuid.UUID, to_status: str, reason: str = "", actor: str = "",
                     expected_version: int | None = None) -> Order:
    """Move an order along the status machine (``orders.under_lock.TRANSITIONS``) and write a
    ``status_changed`` event.

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


# --- payments (SPEC §4.4.2) ----------------------------------------------------------------------

PAYMENT_ACTS = {"authorize": Kind.AUTHORIZATION, "capture": Kind.CAPTURE, "void": Kind.VOID,
                "refund": Kind.REFUND}


def payment_record(*, order_id: uuid.UUID, act: str, amount: Decimal | str | None = None,
                   provider: str = "", reference: str = "", succeeded: bool = True, actor: str = "",
                   expected_version: int | None = None) -> tuple[Payment, Order]:
    """Record what a payment provider did: ``act`` is ``authorize``, ``capture``, ``void`` or
    ``refund``; ``amount`` defaults to the most the act allows. The bounds (authorizations ≤ the
    order total, capture ≤ what is authorized and not captured — or the unpaid total without an
    authorization —, refund ≤ captured − refunded, void = the uncaptured rest) are checked under the
    order lock, so concurrent calls never exceed them. ``payment_status`` is derived again; a full
    refund moves a delivered or cancelled order to ``refunded``. A failed attempt (``succeeded``
    false) is recorded and changes no amount.

    Locks the order row. Writes the payment, a ``payment`` timeline event and the outbox event
    ``payment.recorded``. Raises ValidationFailed (unknown act, bad amount), Conflict
    ``payment_exceeds`` (beyond a bound; ``details`` name it), InvalidTransition (capturing or
    authorizing a cancelled or refunded order), PreconditionFailed, NotFound."""
    if act not in PAYMENT_ACTS:
        raise ValidationFailed("Unknown payment act.",
                               details={"kind": [f"One of: {', '.join(PAYMENT_ACTS)}."]})
    provider = clean_text(provider, "provider", 64)
    reference = clean_text(reference, "reference", 255)
    with transaction.atomic(durable=True):
        order = _locked(order_id, expected_version)
        payment = payment_record_locked(order=order, kind=PAYMENT_ACTS[act], amount=amount,
                                        provider=provider,
                                        reference=reference, succeeded=succeeded, actor=actor)
    return payment, order


# The first wave's shorthand: a status names a full authorization or capture.
_SHORTHAND: dict[str, str] = {Order.PaymentStatus.AUTHORIZED: "authorize",
                              Order.PaymentStatus.PAID: "capture"}


def order_record_payment(*, order_id: uuid.UUID, payment_status: str, reference: str = "",
                         actor: str = "", expected_version: int | None = None) -> Order:
    """``POST /orders/{id}/payment`` (kept for the first wave's clients): ``authorized`` records an
    authorization of the whole total, ``paid`` captures the rest. Raises as :func:`payment_record`,
    and ValidationFailed for another status."""
    if payment_status not in _SHORTHAND:
        raise ValidationFailed("payment_status must be authorized or paid.",
                               details={
                                   "payment_status": [
                                       "Use authorized or paid; refunds go through returns."]})
    _, order = payment_record(order_id=order_id, act=_SHORTHAND[payment_status],
                              reference=reference, actor=actor, expected_version=expected_version)
    return order


def order_update(*, order_id: uuid.UUID, changes: dict[str, Any],
                 expected_version: int | None = None, actor: str = "") -> Order:
    """PATCH: notes, shipping/billing address snapshots, metadata. Compares ``expected_version``
    (If-Match) under the row lock: 412 when it moved. Writes an ``updated`` event naming the
    fields and publishes ``order.updated`` (``change: "updated"``, ``changed``: those fields)."""
    changes = writable(changes, {"notes", "shipping_address", "billing_address", "metadata"})
    for name in ("shipping_address", "billing_address", "metadata"):
        if name in changes and (name == "metadata" or changes[name] is not None):
            changes[name] = clean_json_object(changes[name], name)
    with transaction.atomic(durable=True):
        order = _locked(order_id, expected_version)
        if changes:
            save(order, changes)
            event(order, OrderEvent.Kind.UPDATED, actor,
                  data={"fields": sorted(changes)}).save(force_insert=True)
            webhooks.publish(event_type="order.updated", payload={
                **event_ref(order), "change": "updated", "version": order.version,
                "changed": sorted(changes)})
            invalidate(order, order.customer_id)
    return order


def lines_to_add(*, order: Order, lines: Sequence[OrderLineInput],
                 set_prices: bool) -> list[AddedLine]:
    """Lines an edit adds to ``order``: active products in the order's currency, priced by the
    catalog or — for a key that may set prices — as sent (``price_mismatch``, ``mixed_currency``,
    ``product_not_found`` as for a new order)."""
    if not lines:
        return []
    products = _products(lines)
    _currency(order.currency, products, lines, set_prices)
    priced, list_prices = _price(
        [OrderLineInput(quantity=line.quantity, product_id=line.product_id, sku=line.sku,
                                                 unit_price=line.unit_price) for line in lines],
                                 products, order.currency, set_prices)
    return [AddedLine(product=product, quantity=line.quantity, unit_price=line.unit_price,
                      list_price=list_price)
            for product, line, list_price in zip(products, priced, list_prices, strict=True)]
