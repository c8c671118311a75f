"""Every write to shipments (SPEC §4.5). Orders rows change only through ``orders.services``; stock
only through ``inventory.services``.

Rules every function here keeps:

- **One durable transaction per call**, nothing written on error.
- **Locks in one global order** (``stateset/locking.py``): the order row first, then the
  shipment(s) (``fulfillment.locks``), then (when shipping) the order items, the reservations and
  the inventory rows, each set in primary-key order. Every write to a shipment takes its order's
  lock first, so two writes to shipments of one order run one after the other: allocation cannot be
  over-counted and a shipment cannot ship twice.
- **A shipment is served from its location's reservations of the order** (``reference_type
  "order"``, ``reference_id`` the order id): a pending shipment claims units of them, shipping
  consumes them (``inventory.services.stock_fulfil_many``, ledger ``ship``).
- The order's detail embeds its shipments, so every write here bumps the order's version and drops
  its cached detail (through the orders services).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from fulfillment import locks
from fulfillment.models import Shipment, ShipmentItem
from inventory import selectors as inventory_selectors
from inventory import services as inventory_services
from orders import locks as order_locks
from orders import selectors as orders_selectors
from orders import services as orders_services
from orders import under_lock
from orders.models import Order
from stateset.db import save_versioned
from stateset.errors import (
    Conflict,
    InvalidTransition,
    PreconditionFailed,
    PreconditionRequired,
    ValidationFailed,
    check_transition,
)
from stateset.inputs import clean_actor, clean_text, writable
from webhooks import services as webhooks

Status = Shipment.Status
MAX_LINES = orders_services.MAX_LINES
MAX_QUANTITY = 10_000
MAX_CARRIER = 64
MAX_SERVICE = 64
MAX_TRACKING = 100
MAX_ACTOR = 128

# The shipment's own machine. ``ship``, ``deliver`` and ``cancel`` are the API's verbs; carriers'
# scans move a shipped parcel between ``in_transit`` and ``exception`` (PATCH ``status``).
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.SHIPPED, Status.CANCELLED}),
    Status.SHIPPED: frozenset({Status.IN_TRANSIT, Status.EXCEPTION, Status.DELIVERED}),
    Status.IN_TRANSIT: frozenset({Status.EXCEPTION, Status.DELIVERED}),
    Status.EXCEPTION: frozenset({Status.IN_TRANSIT, Status.DELIVERED}),
    Status.DELIVERED: frozenset(),
    Status.CANCELLED: frozenset(),
}
CARRIER_STATUSES = frozenset({Status.IN_TRANSIT, Status.EXCEPTION})


@dataclass(frozen=True)
class ShipmentLineInput:
    order_item_id: uuid.UUID
    quantity: int


@dataclass(frozen=True)
class CreatedShipment:
    """What ``shipment_create`` wrote, so the caller can answer without reading it back."""

    shipment: Shipment
    items: list[ShipmentItem]


# --------------------------------------------------------------------------------------------------
# Input checks (the API validates first; services are the last word: the admin calls them too)


def _transition(shipment: Shipment, to_status: str) -> None:
    check_transition(TRANSITIONS, shipment.status, to_status, entity="A shipment",
                     details={"shipment_id": str(shipment.id)})


def _save(shipment: Shipment, **updates: Any) -> None:
    save_versioned(shipment, updates)


def _tracking_taken(tracking_number: str, shipment_id: uuid.UUID | None = None) -> Conflict:
    return Conflict("Another shipment has this tracking number.", code="tracking_number_taken",
                    details={"tracking_number": tracking_number,
                             **({"shipment_id": str(shipment_id)} if shipment_id else {})})


# --------------------------------------------------------------------------------------------------
# What an order still has to allocate, and where it is reserved


@dataclass
class _Line:
    order_item_id: uuid.UUID
    product_id: uuid.UUID
    sku: str
    quantity: int
    unfulfilled: int  # quantity - quantity_fulfilled
    allocated: int  # units in this order's pending shipments
    waiting: int = 0  # units backordered: not yet allocated any stock (SPEC §4.4.3)

    @property
    def open(self) -> int:
        """Units that may go into a new shipment: allocated stock, neither shipped nor claimed."""
        return self.unfulfilled - self.allocated - self.waiting


def _order_lines(order: Order) -> tuple[list[_Line], dict[tuple[uuid.UUID, uuid.UUID], int]]:
    """The order's items with what pending shipments already claim (per item, and per product and
    location). Two queries; runs under the order lock, so nothing moves underneath."""
    claims = (ShipmentItem.objects.filter(shipment__order_id=order.id,
                                          shipment__status=Status.PENDING)
              .values("order_item_id", "order_item__product_id", "shipment__location_id")
              .annotate(units=Sum("quantity")).order_by())
    per_item: dict[uuid.UUID, int] = defaultdict(int)
    per_place: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
    for row in claims:
        per_item[row["order_item_id"]] += row["units"]
        per_place[(row["order_item__product_id"], row["shipment__location_id"])] += row["units"]
    items = orders_selectors.items_by_order({order.id: order.currency}).get(order.id, [])
    lines = [_Line(order_item_id=row["id"], product_id=row["product_id"], sku=row["sku"],
                   quantity=row["quantity"],
                   unfulfilled=row["quantity"] - row["quantity_fulfilled"],
                   allocated=per_item[row["id"]], waiting=row["quantity_backordered"])
             for row in items]
    return lines, per_place


def _reserved(order: Order) -> dict[tuple[uuid.UUID, uuid.UUID], list[Any]]:
    """The order's active reservations by (product, location), oldest first."""
    grouped: dict[tuple[uuid.UUID, uuid.UUID], list[Any]] = defaultdict(list)
    for reservation in inventory_selectors.reservations_for(reference_id=str(order.id),
                                                            reference_type="order",
                                                            status="active"):
        item = reservation.inventory_item
        grouped[(item.product_id, item.location_id)].append(reservation)
    return grouped


def _requested(lines: list[_Line],
               items: Sequence[ShipmentLineInput] | None) -> list[tuple[_Line, int]]:
    """(line, units) the shipment carries. Explicit lines are checked against what is still open
    (allocated, unfulfilled and not in another pending shipment): ValidationFailed with per-line
    details — ``exceeds_allocated`` when only units still waiting for stock stand in the way."""
    by_id = {line.order_item_id: line for line in lines}
    if items is None:
        return [(line, line.open) for line in lines if line.open > 0]
    if not 1 <= len(items) <= MAX_LINES:
        raise ValidationFailed(f"Give 1 to {MAX_LINES} items.",
                               details={"items": [f"Give 1 to {MAX_LINES} items."]})
    errors: dict[str, Any] = {}
    seen: set[uuid.UUID] = set()
    out: list[tuple[_Line, int]] = []
    for index, item in enumerate(items):
        quantity = item.quantity
        if (isinstance(quantity, bool) or not isinstance(quantity, int)
            or not 1 <= quantity <= MAX_QUANTITY):
            errors[str(index)] = {"quantity": [f"Must be an integer between 1 and {MAX_QUANTITY}."]}
            continue
        line = by_id.get(item.order_item_id)
        if line is None:
            errors[str(index)] = {"order_item_id": ["Not an item of this order."]}
            continue
        if line.order_item_id in seen:
            errors[str(index)] = {"order_item_id": ["This item appears twice."]}
            continue
        seen.add(line.order_item_id)
        if quantity > line.open:
            errors[str(index)] = {
                "quantity": [f"At most {line.open} unit(s) of {line.sku} are left to ship."],
                                  "order_item_id": str(line.order_item_id), "requested": quantity,
                                  "ordered": line.quantity,
                "fulfilled": line.quantity - line.unfulfilled,
                                  "in_pending_shipments": line.allocated,
                "backordered": line.waiting,
                                  "available": line.open}
            continue
        out.append((line, quantity))
    if errors:
        over = all("requested" in error for error in errors.values())
        waiting = over and all(error["requested"] <= error["available"] + error["backordered"]
                               for error in errors.values())
        code = ("exceeds_allocated" if waiting else "exceeds_unfulfilled" if over
                else "validation_error")
        raise ValidationFailed("Some items cannot be shipped as asked." if not over
                               else "Some units are still waiting for stock." if waiting
                               else "More units than the order has left to ship.", code=code,
                               details={"items": errors})
    return out


def _capacity(order: Order,
              claims: dict[tuple[uuid.UUID, uuid.UUID], int]) -> dict[tuple[uuid.UUID, uuid.UUID],
                                                                      int]:
    """Units reserved for the order per (product, location) that no pending shipment claims yet."""
    return {
        place: sum(r.remaining for r in reservations) - claims.get(place, 0)
        for place, reservations in _reserved(order).items()
    }


def _choose_location(wanted: list[tuple[_Line, int]],
                     capacity: dict[tuple[uuid.UUID, uuid.UUID], int]) -> uuid.UUID:
    """The one location whose unclaimed reservations of the order cover every wanted unit.
    ValidationFailed ``location_required`` (naming where each line is reserved) when none or several
    do but units are reserved somewhere; InvalidTransition ``not_reserved`` when nothing is."""
    need: dict[uuid.UUID, int] = defaultdict(int)
    for line, units in wanted:
        need[line.product_id] += units
    locations = {loc for (product, loc), units in capacity.items() if product in need and units > 0}
    covering = [loc for loc in locations
                if all(capacity.get((p, loc), 0) >= n for p, n in need.items())]
    if len(covering) == 1:
        return covering[0]
    if not locations:
        raise InvalidTransition("The order has no reserved stock left for these items.",
                                code="not_reserved",
                                details={"items": [str(line.order_item_id) for line, _ in wanted]})
    codes = inventory_selectors.location_codes(locations)
    where = [
        {"location_id": str(loc), "code": codes.get(loc, ""),
         "items": [{"order_item_id": str(line.order_item_id), "sku": line.sku,
                    "reserved": max(capacity.get((line.product_id, loc), 0), 0)}
                   for line, _ in wanted if capacity.get((line.product_id, loc), 0) > 0]}
        for loc in sorted(locations, key=lambda loc: codes.get(loc, ""))
    ]
    message = (
        "The items are reserved at several locations: give location_id, and ship the rest in "
               "another shipment." if not covering else
               "Several locations hold these items: give location_id.")
    raise ValidationFailed(message, code="location_required",
                           details={"location_id": ["Required for this order."],
                                    "locations": where})


def _take(need: Mapping[uuid.UUID, int], reserved: Mapping[uuid.UUID, list[Any]]
          ) -> tuple[list[tuple[uuid.UUID, int]], list[str]]:
    """(reservation id, units) consuming ``need`` (product → units) from ``reserved`` (product →
    its reservations, in the order to use them), and the products they do not cover."""
    fulfilments: list[tuple[uuid.UUID, int]] = []
    short: list[str] = []
    for product_id, units in need.items():
        for reservation in reserved.get(product_id, []):
            if units == 0:
                break
            take = min(units, reservation.remaining)
            if take > 0:
                fulfilments.append((reservation.id, take))
                units -= take
        if units:
            short.append(str(product_id))
    return fulfilments, short


def _lock_for_move(order_id: uuid.UUID, expected_version: int | None, to_status: str) -> Order:
    """The order, locked, at ``expected_version`` (If-Match; PreconditionFailed) and allowed by
    its machine to move to ``to_status`` (InvalidTransition)."""
    order = order_locks.lock_order(order_id)
    if expected_version is not None and order.version != expected_version:
        raise PreconditionFailed(details={"current_version": order.version})
    under_lock.order_check_transition(order, to_status)
    return order


def _fullest_location(wanted: list[tuple[_Line, int]],
                      capacity: dict[tuple[uuid.UUID, uuid.UUID], int]) -> uuid.UUID | None:
    """The location whose unclaimed reservations of the order cover the most of the wanted units
    (ties: the location code), or None when none holds any (``_choose_location`` then says why)."""
    need: dict[uuid.UUID, int] = defaultdict(int)
    for line, units in wanted:
        need[line.product_id] += units
    covered: dict[uuid.UUID, int] = defaultdict(int)
    for (product, location), units in capacity.items():
        if product in need and units > 0:
            covered[location] += min(units, need[product])
    if len(covered) <= 1:
        return next(iter(covered), None)
    codes = inventory_selectors.location_codes(covered)
    return min(covered, key=lambda loc: (-covered[loc], codes.get(loc, "")))


def _at_location(wanted: list[tuple[_Line, int]], capacity: dict[tuple[uuid.UUID, uuid.UUID], int],
                 location_id: uuid.UUID, defaulted: bool) -> list[tuple[_Line, int]]:
    """Check (explicit items) or cut down (default items) the lines to what ``location_id``'s
    unclaimed reservations of the order cover. ValidationFailed ``not_reserved_at_location``."""
    left = {product: units for (product, loc), units in capacity.items() if loc == location_id}
    out: list[tuple[_Line, int]] = []
    short: list[dict[str, Any]] = []
    for line, units in wanted:
        can = max(min(units, left.get(line.product_id, 0)), 0)
        if defaulted:
            if can:
                out.append((line, can))
                left[line.product_id] -= can
            continue
        if can < units:
            short.append({"order_item_id": str(line.order_item_id), "sku": line.sku,
                          "requested": units,
                          "reserved_here": max(left.get(line.product_id, 0), 0)})
        else:
            out.append((line, units))
            left[line.product_id] -= units
    if short or not out:
        raise ValidationFailed(
            "The order's stock for these items is not reserved at this location.",
                               code="not_reserved_at_location",
                               details={"location_id": str(location_id), "items": short or [
                                   {"order_item_id": str(line.order_item_id), "sku": line.sku,
                                    "requested": units,
                                    "reserved_here": 0} for line, units in wanted]})
    return out


# --------------------------------------------------------------------------------------------------
# The services


def shipment_create(
    *,
    order_id: uuid.UUID,
    carrier: str,
    items: Sequence[ShipmentLineInput] | None = None,
    location_id: uuid.UUID | None = None,
    service: str = "",
    tracking_number: str | None = None,
    actor: str = "",
) -> CreatedShipment:
    """Create a pending shipment of an order's units, to be shipped from one location.

    ``items`` defaults to every unit not yet fulfilled and not in another pending shipment (at
    ``location_id``, when given, as far as the order's reservations there cover them). Without
    ``location_id`` the location is the one whose reservations of the order cover every unit —
    with default items and the units reserved at several locations, the one covering the most of
    them, and the shipment takes what it holds; with explicit items, 422 ``location_required``.

    Locks the order row (then nothing else: the shipment is new). Writes the shipment, its items,
    the order's ``shipment_created`` event and — for a pending or confirmed order — the move to
    ``processing``; publishes ``shipment.created`` with its items. Raises ValidationFailed
    (``order_not_found``, ``location_not_found``,
    ``exceeds_unfulfilled`` with per-line details, ``location_required``,
    ``not_reserved_at_location``, bad fields), InvalidTransition (``order_on_hold``,
    ``order_cancelled``, ``order_fulfilled``,
    ``nothing_to_ship``, ``not_reserved``), Conflict (``tracking_number_taken``)."""
    carrier = clean_text(carrier, "carrier", MAX_CARRIER, required=True)
    service = clean_text(service, "service", MAX_SERVICE)
    tracking = clean_text(tracking_number, "tracking_number", MAX_TRACKING) or None
    actor = clean_actor(actor, MAX_ACTOR)
    with transaction.atomic(durable=True):
        order = order_locks.lock_order(order_id, named_in_body=True)
        under_lock.order_check_fulfillable(order)
        lines, claims = _order_lines(order)
        wanted = _requested(lines, items)
        if not wanted:
            raise InvalidTransition("Every unit of the order is shipped or in a pending shipment.",
                                    code="nothing_to_ship", details={"order_id": str(order.id)})
        capacity = _capacity(order, claims)
        if location_id is None and items is None:
            # Everything open, from wherever it is: the one location holding it all, else the one
            # holding the most of it (the rest goes in another shipment, from another location).
            location_id = _fullest_location(wanted, capacity)
        if location_id is not None:
            inventory_selectors.locations_checked([location_id])
            wanted = _at_location(wanted, capacity, location_id, defaulted=items is None)
        else:
            location_id = _choose_location(wanted, capacity)
        if tracking and Shipment.objects.filter(tracking_number=tracking).exists():
            raise _tracking_taken(tracking)
        now = timezone.now()
        shipment = Shipment(id=uuid.uuid4(), order_id=order.id, order_created_at=order.created_at,
                            location_id=location_id, carrier=carrier, service=service,
                            tracking_number=tracking,
                            status=Status.PENDING, created_at=now, updated_at=now)
        try:
            with transaction.atomic():  # a concurrent shipment took the tracking number first
                shipment.save(force_insert=True)
        except IntegrityError:
            raise _tracking_taken(tracking or "") from None
        shipment_items = ShipmentItem.objects.bulk_create([
            ShipmentItem(shipment=shipment, order_item_id=line.order_item_id, quantity=units)
            for line, units in sorted(wanted, key=lambda pair: (pair[0].sku, pair[0].order_item_id))
        ])
        under_lock.order_shipment_created(
            order=order, shipment_id=shipment.id, actor=actor,
            lines=[{"order_item_id": str(line.order_item_id), "sku": line.sku, "quantity": units}
                   for line, units in wanted])
        webhooks.publish(event_type="shipment.created", payload=_payload(
            order, shipment, units={i.order_item_id: i.quantity for i in shipment_items}))
    return CreatedShipment(shipment=shipment, items=shipment_items)


def shipment_ship(*, shipment_id: uuid.UUID, actor: str = "") -> Shipment:
    """Hand a pending shipment to the carrier: consume its units from the order's reservations at
    the shipment's location (``reserved`` and ``on_hand`` drop, ledger ``ship`` referencing the
    shipment), ``quantity_fulfilled`` grows, the order becomes partially fulfilled or — with its
    last units — fulfilled and ``shipped``; ``shipped_at`` is set; events ``shipped`` on the order's
    timeline and ``shipment.shipped`` in the outbox.

    Locks: the order, the shipment, the order items (primary-key order), then the reservations and
    inventory rows (inside ``stock_fulfil_many``). Raises NotFound, InvalidTransition (not pending —
    so a second ship is 409 —, ``order_on_hold``/``order_cancelled``, ``not_reserved`` when the
    order's reservations there no longer cover the units), Conflict from inventory."""
    actor = clean_actor(actor, MAX_ACTOR)
    with transaction.atomic(durable=True):
        order, shipment = locks.lock_shipment(shipment_id)
        _transition(shipment, Status.SHIPPED)
        under_lock.order_check_fulfillable(order)
        rows = list(ShipmentItem.objects.filter(shipment_id=shipment.id).order_by("id")
                    .values_list("order_item_id", "order_item__product_id", "quantity"))
        quantities = {item_id: quantity for item_id, _, quantity in rows}
        per_product: dict[uuid.UUID, int] = defaultdict(int)
        for _, product_id, quantity in rows:
            per_product[product_id] += quantity
        reserved = {product: reservations
                    for (product, location), reservations in _reserved(order).items()
                    if location == shipment.location_id}
        fulfilments, short = _take(per_product, reserved)
        if short:
            raise InvalidTransition(
                "The order's reservations at this location no longer cover the shipment.",
                                    code="not_reserved", details={"product_ids": short,
                                                                  "location_id": str(
                                                                      shipment.location_id)})
        # Order items before reservations and inventory rows: the global lock order.
        under_lock.order_units_shipped(order=order, quantities=quantities, shipment_id=shipment.id,
                                            actor=actor)
        inventory_services.stock_fulfil_many(fulfilments=fulfilments, actor=actor,
                                             reference_type="shipment",
                                             reference_id=str(shipment.id))
        _save(shipment, status=Status.SHIPPED, shipped_at=timezone.now())
        webhooks.publish(event_type="shipment.shipped",
                         payload=_payload(order, shipment, units=quantities))
    return shipment


def shipment_deliver(*, shipment_id: uuid.UUID, actor: str = "") -> Shipment:
    """Mark a shipped (in transit, exception) shipment delivered: ``delivered_at``; the order's
    ``delivered`` event, and once every non-cancelled shipment of a fulfilled order is delivered the
    order becomes ``delivered``; ``shipment.delivered`` in the outbox. Locks the order, then the
    shipment. Raises NotFound, InvalidTransition (pending, cancelled, already delivered)."""
    actor = clean_actor(actor, MAX_ACTOR)
    with transaction.atomic(durable=True):
        order, shipment = locks.lock_shipment(shipment_id)
        _transition(shipment, Status.DELIVERED)
        _save(shipment, status=Status.DELIVERED, delivered_at=timezone.now())
        open_ones = (Shipment.objects.filter(order_id=order.id)
                     .exclude(status__in=[Status.DELIVERED, Status.CANCELLED]).exists())
        under_lock.order_shipment_delivered(order=order, shipment_id=shipment.id,
                                            all_delivered=not open_ones,
                                                 actor=actor)
        webhooks.publish(event_type="shipment.delivered", payload=_payload(order, shipment))
    return shipment


def shipment_cancel(*, shipment_id: uuid.UUID, reason: str = "", actor: str = "") -> Shipment:
    """Cancel a pending shipment: its units are open again (its reservations were never touched).
    A note on the order's timeline; ``shipment.cancelled``. Locks the order, then the shipment.
    Raises NotFound,
    InvalidTransition (anything but pending: a shipped parcel is not cancelled, it is returned)."""
    reason = clean_text(reason, "reason", 500)
    actor = clean_actor(actor, MAX_ACTOR)
    with transaction.atomic(durable=True):
        order, shipment = locks.lock_shipment(shipment_id)
        _transition(shipment, Status.CANCELLED)
        _save(shipment, status=Status.CANCELLED)
        under_lock.order_shipment_changed(
            order=order, shipment_id=shipment.id, actor=actor,
            note=f"Shipment {shipment.id} cancelled" + (f": {reason}" if reason else "."))
        webhooks.publish(event_type="shipment.cancelled",
                         payload=_payload(order, shipment, reason=reason))
    return shipment


def order_cancel(*, order_id: uuid.UUID, reason: str = "", actor: str = "",
                 expected_version: int | None = None) -> Order:
    """Cancel an order (SPEC §4.4) — a use case of two apps, written out here in the upper one: the
    order's pending shipments are cancelled (their units were only claimed, never taken) and its
    reservations released, in one durable transaction. Shipped parcels are left as they are: they
    come back as returns. Publishes ``shipment.cancelled`` for each pending shipment (one INSERT)
    besides the order's own events.

    Locks, in the global order: the order, its pending shipments (primary key), then the
    reservations and inventory rows (inside ``stock_release``). Raises NotFound, PreconditionFailed
    (412), InvalidTransition (409, the order's machine forbids it: e.g. shipped)."""
    actor = clean_actor(actor, MAX_ACTOR)
    reason = clean_text(reason, "reason", 500)
    with transaction.atomic(durable=True):
        order = _lock_for_move(order_id, expected_version, Order.Status.CANCELLED)
        pending = locks.lock_pending_shipments(order)
        for shipment in pending:
            _save(shipment, status=Status.CANCELLED)
        under_lock.order_move(order=order, to_status=Order.Status.CANCELLED, reason=reason,
                              actor=actor)
        if pending:
            under_lock.order_shipment_changed(
                order=order, shipment_id=pending[0].id, actor=actor,
                note=f"{len(pending)} pending shipment(s) cancelled with the order.")
            webhooks.publish_many([
                ("shipment.cancelled", _payload(order, shipment,
                                                reason=reason or "order cancelled"))
                for shipment in pending])
    return order


def order_set_status(*, order_id: uuid.UUID, to_status: str, reason: str = "", actor: str = "",
                     expected_version: int | None = None) -> Order:
    """``POST /orders/{id}/status``: any move of the order's machine; a cancellation is
    :func:`order_cancel`, a move to ``shipped`` :func:`order_mark_shipped`, every other move
    ``orders.services.order_transition``."""
    if to_status == Order.Status.CANCELLED:
        return order_cancel(order_id=order_id, reason=reason, actor=actor,
                            expected_version=expected_version)
    if to_status == Order.Status.SHIPPED:
        return order_mark_shipped(order_id=order_id, reason=reason, actor=actor,
                                  expected_version=expected_version)
    return orders_services.order_transition(order_id=order_id, to_status=to_status, reason=reason,
                                            actor=actor, expected_version=expected_version)


def order_mark_shipped(*, order_id: uuid.UUID, reason: str = "", actor: str = "",
                       expected_version: int | None = None) -> Order:
    """Mark a ``processing`` order shipped by hand (it left without a StateSet shipment): its
    unshipped units are shipped as a shipment ships them — the order's reservations are consumed
    (``reserved`` and ``on_hand`` drop, ledger ``ship`` referencing the order), every line becomes
    fulfilled — so no reservation outlives the order. An order whose units are all shipped already
    (back from ``on_hold``) just moves.

    Refused (409, nothing written) while a pending shipment holds some of its units
    (``pending_shipments``: ship or cancel it), while units still wait for stock (``backordered``)
    or when its reservations no longer cover the rest (``not_reserved``). Locks, in the global
    order: the order, its items, then the reservations and inventory rows (inside
    ``stock_fulfil_many``). Raises NotFound, PreconditionFailed (412), InvalidTransition."""
    actor = clean_actor(actor, MAX_ACTOR)
    reason = clean_text(reason, "reason", 500)
    with transaction.atomic(durable=True):
        order = _lock_for_move(order_id, expected_version, Order.Status.SHIPPED)
        lines, claims = _order_lines(order)
        if claims:
            raise InvalidTransition(
                "A pending shipment holds units of this order: ship or cancel it first.",
                code="pending_shipments", details={"order_id": str(order.id)})
        waiting = [str(line.order_item_id) for line in lines if line.waiting]
        if waiting:
            raise InvalidTransition("Units of this order are still waiting for stock.",
                                    code="backordered", details={"order_item_ids": waiting})
        quantities = {line.order_item_id: line.unfulfilled for line in lines if line.unfulfilled}
        if not quantities:
            return under_lock.order_move(order=order, to_status=Order.Status.SHIPPED,
                                         reason=reason, actor=actor)
        per_product: dict[uuid.UUID, int] = defaultdict(int)
        for line in lines:
            per_product[line.product_id] += line.unfulfilled
        reserved: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for (product_id, _), reservations in sorted(_reserved(order).items(), key=str):
            reserved[product_id].extend(reservations)
        fulfilments, short = _take(per_product, reserved)
        if short:
            raise InvalidTransition("The order's reservations no longer cover its unshipped units.",
                                    code="not_reserved", details={"product_ids": short})
        under_lock.order_units_shipped(order=order, quantities=quantities, shipment_id=None,
                                       actor=actor, reason=reason or "marked shipped")
        if fulfilments:
            inventory_services.stock_fulfil_many(fulfilments=fulfilments, actor=actor,
                                                 reference_type="order",
                                                 reference_id=str(order.id))
    return order


def shipment_update(*, shipment_id: uuid.UUID, expected_version: int | None = None, actor: str = "",
                    **changes: Any) -> Shipment:
    """PATCH: ``carrier``, ``service``, ``tracking_number`` (not once delivered or cancelled) and a
    carrier's ``status`` (``in_transit`` / ``exception`` of a shipped parcel). Compares
    ``expected_version`` (If-Match) under the lock: PreconditionFailed (412). Locks the order, then
    the shipment. Raises ValidationFailed, InvalidTransition, Conflict
    (``tracking_number_taken``)."""
    writable(changes, {"carrier", "service", "tracking_number", "status"})
    clean: dict[str, Any] = {}
    if "carrier" in changes:
        clean["carrier"] = clean_text(changes["carrier"], "carrier", MAX_CARRIER, required=True)
    if "service" in changes:
        clean["service"] = clean_text(changes["service"], "service", MAX_SERVICE)
    if "tracking_number" in changes:
        clean["tracking_number"] = (clean_text(changes["tracking_number"], "tracking_number",
                                               MAX_TRACKING) or None)
    if "status" in changes:
        if changes["status"] not in CARRIER_STATUSES:
            raise ValidationFailed(
                "Only a carrier's status can be set here; use ship, deliver or cancel.",
                                   details={
                                       "status": [
                                           f"One of: {', '.join(sorted(CARRIER_STATUSES))}."]})
        clean["status"] = changes["status"]
    actor = clean_actor(actor, MAX_ACTOR)
    with transaction.atomic(durable=True):
        order, shipment = locks.lock_shipment(shipment_id)
        if expected_version is not None and shipment.version != expected_version:
            raise PreconditionFailed(details={"current_version": shipment.version})
        if shipment.status in (Status.DELIVERED, Status.CANCELLED) and clean:
            raise InvalidTransition(f"A {shipment.status} shipment cannot be changed.",
                                    details={"shipment_id": str(shipment.id),
                                             "status": shipment.status})
        if "status" in clean and clean["status"] != shipment.status:
            _transition(shipment, clean["status"])
        changed = {name: value for name, value in clean.items() if getattr(shipment, name) != value}
        if not changed:
            return shipment
        tracking = changed.get("tracking_number")
        if (tracking
            and Shipment.objects.filter(tracking_number=tracking).exclude(id=shipment.id).exists()):
            raise _tracking_taken(tracking)
        try:
            with transaction.atomic():
                _save(shipment, **changed)
        except IntegrityError:
            raise _tracking_taken(tracking or "") from None
        under_lock.order_shipment_changed(order=order, shipment_id=shipment.id, actor=actor)
    return shipment


def _payload(order: Order, shipment: Shipment, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"shipment_id": str(shipment.id), "order_id": str(order.id),
               "order_number": order.order_number,
               "status": shipment.status, "carrier": shipment.carrier, "service": shipment.service,
               "tracking_number": shipment.tracking_number,
                               "location_id": str(shipment.location_id)}
    if "units" in extra:
        payload["items"] = [{"order_item_id": str(i), "quantity": q} for i,
                            q in extra["units"].items()]
    if "reason" in extra:
        payload["reason"] = extra["reason"]
    return payload


def order_edit(*, order_id: uuid.UUID, expected_version: int | None,
               add: Sequence[orders_services.OrderLineInput] = (),
               change: Mapping[uuid.UUID, int] | None = None,
               remove: Sequence[uuid.UUID] = (), reason: str = "", set_prices: bool = False,
               actor: str = "") -> Order:
    """``POST /orders/{id}/edit`` (SPEC §4.4.3) — a use case of orders and fulfillment, written out
    here: a line may not drop below its shipped units plus those in this app's pending shipments,
    which only this app knows. ``expected_version`` (If-Match) is required (PreconditionRequired,
    428). The rest is ``orders.under_lock.order_edit_locked``.

    Locks, in the global order: the order, then (inside the orders and inventory services) its
    items, its reservations, the inventory rows and the backorder queues of the products involved.
    Raises PreconditionRequired (428), PreconditionFailed (412), NotFound, InvalidTransition
    (``order_not_editable``), ValidationFailed (``below_fulfilled``, ``order_item_not_found``, a
    line's product, price or quantity), InsufficientStock (409, nothing changed)."""
    change = dict(change or {})
    if not (add or change or remove):
        raise ValidationFailed("Give lines to add, change or remove.",
                               details={
                                   "non_field_errors": ["At least one of add, change, remove."]})
    if len(add) + len(change) + len(remove) > MAX_LINES:
        raise ValidationFailed(f"At most {MAX_LINES} changes.",
                               details={"non_field_errors": [f"At most {MAX_LINES}."]})
    for quantity in [*change.values(), *(line.quantity for line in add)]:
        if (isinstance(quantity, bool) or not isinstance(quantity, int)
            or not 1 <= quantity <= MAX_QUANTITY):
            raise ValidationFailed("A quantity is an integer from 1.", details={"quantity": [
                f"Must be an integer between 1 and {MAX_QUANTITY}."]})
    if set(change) & set(remove):
        raise ValidationFailed("A line is both changed and removed.",
                               details={"remove": ["Also in change."]})
    if expected_version is None:
        raise PreconditionRequired()
    reason = clean_text(reason, "reason", 500)
    actor = clean_actor(actor, MAX_ACTOR)
    with transaction.atomic(durable=True):
        order = order_locks.lock_order(order_id)
        if order.version != expected_version:
            raise PreconditionFailed(details={"current_version": order.version})
        claims = (ShipmentItem.objects.filter(shipment__order_id=order.id,
                                              shipment__status=Status.PENDING)
                  .values("order_item_id", "order_item__product_id", "shipment__location_id")
                  .annotate(units=Sum("quantity")).order_by())
        claimed: dict[uuid.UUID, int] = defaultdict(int)
        claimed_at: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
        for row in claims:
            claimed[row["order_item_id"]] += row["units"]
            claimed_at[(row["order_item__product_id"],
                        row["shipment__location_id"])] += row["units"]
        added = orders_services.lines_to_add(order=order, lines=add, set_prices=set_prices)
        under_lock.order_edit_locked(order=order, add=added, change=change, remove=remove,
                                     claimed=claimed,
                                     claimed_at=claimed_at, reason=reason, actor=actor)
    return order
