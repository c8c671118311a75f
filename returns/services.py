"""Every write to returns (SPEC §4.6). Orders rows change only through ``orders.services``; stock
only through ``inventory.services``.

Every service here runs in one durable transaction and takes its locks in one global order: the
order row first, then the return row (``returns.locks``), then order items and inventory rows (each
by primary key, inside the functions that change them). Holding the order lock serialises every
return write of one order, which is what keeps two concurrent requests for the same units from both
succeeding.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from inventory import selectors as inventory_selectors
from inventory import services as inventory_services
from inventory.models import Location
from orders import locks as order_locks
from orders import under_lock
from orders.models import Order, OrderEvent, OrderItem
from returns import locks
from returns.models import Return, ReturnItem
from stateset.db import insert_rows, save_versioned
from stateset.errors import Conflict, PreconditionFailed, ValidationFailed, check_transition
from stateset.inputs import clean_actor
from stateset.money import money_str, round_money
from webhooks import services as webhooks

MAX_LINES = 100
MAX_QUANTITY = 10_000
MAX_REASON = 500
MAX_NOTES = 5_000
MAX_ACTOR = 128  # OrderEvent.actor
Status = Return.Status
Condition = ReturnItem.Condition

# SPEC §4.6 status machine.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.REQUESTED: frozenset({Status.APPROVED, Status.REJECTED, Status.CANCELLED}),
    Status.APPROVED: frozenset({Status.RECEIVED, Status.CANCELLED}),
    Status.RECEIVED: frozenset({Status.REFUNDED}),
    Status.REFUNDED: frozenset({Status.CLOSED}),
    Status.REJECTED: frozenset(),
    Status.CLOSED: frozenset(),
    Status.CANCELLED: frozenset(),
}
# Returns whose units count against what may still be returned (rejected and cancelled ones give
# their units back).
HOLDING = frozenset({Status.REQUESTED, Status.APPROVED, Status.RECEIVED, Status.REFUNDED,
                     Status.CLOSED})
REFUNDED = frozenset({Status.REFUNDED, Status.CLOSED})


@dataclass(frozen=True)
class ReturnLineInput:
    order_item_id: uuid.UUID
    quantity: int
    condition: str
    restock: bool = True
    location_id: uuid.UUID | None = None


@dataclass(frozen=True)
class ReceiveLineInput:
    """What the warehouse found for one line of a return when it came in."""

    return_item_id: uuid.UUID
    condition: str
    restock: bool = True
    location_id: uuid.UUID | None = None


@dataclass(frozen=True)
class CreatedReturn:
    """What ``return_create`` wrote, so the caller can answer without reading it back."""

    rma: Return
    items: list[ReturnItem]


# --- events (SPEC §4.7): the outbox row is written in the same transaction as the change -----


def _publish(event_type: str, rma: Return, order: Order, **extra: Any) -> None:
    """``return.*``: the return, its order, its status and refund so far, then ``extra`` (``items``
    when a return is requested or received)."""
    webhooks.publish(event_type=event_type, payload={
        "return_id": str(rma.id), "rma_number": rma.rma_number, "order_id": str(rma.order_id),
        "order_number": order.order_number, "status": rma.status, "currency": rma.currency,
        "refund_amount": money_str(rma.refund_amount, rma.currency), **extra,
    })


def _items(lines: Sequence[ReturnItem], skus: Mapping[uuid.UUID, str]) -> list[dict[str, Any]]:
    return [{"return_item_id": str(line.id), "order_item_id": str(line.order_item_id),
             "sku": skus[line.order_item_id], "quantity": line.quantity,
             "condition": line.condition, "restock": line.restock,
             "location_id": str(line.location_id) if line.location_id else None}
            for line in lines]


# SPEC §4.7: the status moves that publish an event of their own (a cancelled return has none).
MOVE_EVENTS: dict[str, str] = {Status.APPROVED: "return.approved",
                               Status.REJECTED: "return.rejected",
               Status.CLOSED: "return.closed"}


# --- create ----------------------------------------------------------------------------------


def _check_input(items: Sequence[ReturnLineInput], reason: str, notes: str) -> None:
    """Shape of the request, before any query: bounded texts, 1..MAX_LINES lines, positive bounded
    quantities, known conditions, each order item once."""
    for name, value, limit in (("reason", reason, MAX_REASON), ("notes", notes, MAX_NOTES)):
        if not isinstance(value, str) or len(value) > limit:
            raise ValidationFailed(f"{name} must be text of at most {limit} characters.",
                                   details={name: [f"At most {limit} characters."]})
    if not items:
        raise ValidationFailed("A return needs at least one item.",
                               details={"items": ["This list may not be empty."]})
    if len(items) > MAX_LINES:
        raise ValidationFailed(f"A return has at most {MAX_LINES} items.",
                               details={"items": [f"At most {MAX_LINES}."]})
    errors: dict[str, Any] = {}
    seen: set[tuple[uuid.UUID, str]] = set()
    for index, line in enumerate(items):
        problems: dict[str, list[str]] = {}
        if (isinstance(line.quantity, bool) or not isinstance(line.quantity, int)
            or not 1 <= line.quantity <= MAX_QUANTITY):
            problems["quantity"] = [f"Give a whole number from 1 to {MAX_QUANTITY}."]
        if line.condition not in Condition.values:
            problems["condition"] = [f"One of: {', '.join(Condition.values)}."]
        # One order line may come back in several conditions (1 resellable, 1 damaged), each once.
        if (line.order_item_id, line.condition) in seen:
            problems["order_item_id"] = [
                "This order item appears twice in this condition; give it once with "
                                         "the total quantity."]
        seen.add((line.order_item_id, line.condition))
        if problems:
            errors[str(index)] = problems
    if errors:
        raise ValidationFailed("Invalid return items.", details={"items": errors})


def _held_quantities(order_item_ids: Sequence[uuid.UUID], *,
                     exclude: uuid.UUID | None = None) -> dict[uuid.UUID, int]:
    """Units of each order item already in the order's live returns (one query)."""
    rows = ReturnItem.objects.filter(order_item_id__in=order_item_ids, rma__status__in=HOLDING)
    if exclude is not None:
        rows = rows.exclude(rma_id=exclude)
    totals = rows.values("order_item_id").annotate(total=Sum("quantity")).values_list(
        "order_item_id", "total")
    return {item_id: int(total) for item_id, total in totals}


def return_create(*, order_id: uuid.UUID, items: Sequence[ReturnLineInput], reason: str = "",
                  notes: str = "", actor: str = "") -> CreatedReturn:
    """Request a return (RMA) of shipped units of an order.

    Locks the order row first, so concurrent requests for the same order run one after the other
    and each sees the units the previous one took. Each line may ask for at most the item's shipped
    units (``quantity_fulfilled``) minus those already in the order's other requested, approved,
    received, refunded or closed returns; otherwise ValidationFailed (422, ``exceeds_returnable``)
    with per-line details and nothing written. Also 422: an unknown order (``order_not_found``), an
    item of another order (``order_item_not_found``), an unknown or inactive location. Writes the
    return with ``rma_number`` from its sequence, its items, and a ``return_requested`` event on the
    order (whose version moves and whose cached detail is dropped after commit);
    ``return.requested`` with its items."""
    _check_input(items, reason, notes)
    actor = clean_actor(actor, MAX_ACTOR)
    with transaction.atomic(durable=True):
        order = order_locks.lock_order(order_id, named_in_body=True)
        wanted = [line.order_item_id for line in items]
        order_items = {
            row.id: row for row in OrderItem.objects.filter(order_id=order.id, id__in=wanted)
            .only("id", "order_id", "sku", "quantity_fulfilled")
        }
        unknown = {str(i): {"order_item_id": ["No such item in this order."]}
                   for i, line in enumerate(items) if line.order_item_id not in order_items}
        if unknown:
            raise ValidationFailed("Some items are not part of this order.",
                                   code="order_item_not_found", details={"items": unknown})
        inventory_selectors.locations_checked(
            {line.location_id for line in items if line.location_id is not None},
                                              active=True)
        held = _held_quantities(wanted)
        asked: dict[uuid.UUID, int] = defaultdict(int)
        over: dict[str, Any] = {}
        for index, line in enumerate(items):
            item = order_items[line.order_item_id]
            returnable = item.quantity_fulfilled - held.get(item.id, 0) - asked[item.id]
            asked[item.id] += line.quantity
            if line.quantity > returnable:
                over[str(index)] = {
                    "quantity": [
                        f"At most {max(returnable, 0)} unit(s) of {item.sku} can be returned."],
                    "requested": line.quantity, "returnable": max(returnable, 0),
                    "shipped": item.quantity_fulfilled, "in_other_returns": held.get(item.id, 0),
                }
        if over:
            raise ValidationFailed("More units than were shipped and not yet returned.",
                                   code="exceeds_returnable", details={"items": over})
        now = timezone.now()
        rma = Return(id=uuid.uuid4(), order_id=order.id, order_created_at=order.created_at,
                     reason=reason,
                     notes=notes, currency=order.currency, created_at=now, updated_at=now)
        insert_rows([rma], returning=("rma_number",))
        lines = [
            ReturnItem(id=uuid.uuid4(), rma_id=rma.id, order_item_id=line.order_item_id,
                       quantity=line.quantity,
                       condition=line.condition, restock=line.restock, location_id=line.location_id)
            for line in items
        ]
        insert_rows(lines)
        under_lock.order_return_changed(
            order=order, actor=actor, kind=OrderEvent.Kind.RETURN_REQUESTED,
            message=f"Return {rma.rma_number} requested.",
            data={"return_id": str(rma.id), "rma_number": rma.rma_number,
                  "lines": [{"order_item_id": str(li.order_item_id),
                             "sku": order_items[li.order_item_id].sku,
                             "quantity": li.quantity, "condition": li.condition} for li in lines]},
        )
        _publish("return.requested", rma, order,
                 items=_items(lines, {i: row.sku for i, row in order_items.items()}))
    return CreatedReturn(rma=rma, items=lines)


# --- the status machine ----------------------------------------------------------------------


def _check_move(rma: Return, to_status: str, expected_version: int | None, note: str) -> None:
    if not isinstance(note, str) or len(note) > MAX_REASON:
        raise ValidationFailed(f"note must be text of at most {MAX_REASON} characters.",
                               details={"note": [f"At most {MAX_REASON} characters."]})
    if expected_version is not None and rma.version != expected_version:
        raise PreconditionFailed(details={"current_version": rma.version})
    check_transition(TRANSITIONS, rma.status, to_status, entity="A return")


def _save(rma: Return, to_status: str, note: str, **updates: Any) -> None:
    """Status, any other fields and the version, in one UPDATE; the instance follows."""
    if note:
        updates["notes"] = (f"{rma.notes}\n{to_status}: {note}" if rma.notes
                            else f"{to_status}: {note}")
    save_versioned(rma, {"status": to_status, **updates})


def _move(return_id: uuid.UUID, to_status: str, *, note: str, actor: str,
          expected_version: int | None) -> Return:
    actor = clean_actor(actor, MAX_ACTOR)
    with transaction.atomic(durable=True):
        order, rma = locks.lock_return(return_id)
        _check_move(rma, to_status, expected_version, note)
        _save(rma, to_status, note)
        under_lock.order_return_changed(order=order, actor=actor)
        if to_status in MOVE_EVENTS:
            _publish(MOVE_EVENTS[to_status], rma, order)
    return rma


def return_approve(*, return_id: uuid.UUID, note: str = "", actor: str = "",
                   expected_version: int | None = None) -> Return:
    """requested → approved. Locks the order, then the return. Publishes ``return.approved``.
    Raises NotFound, InvalidTransition (409), PreconditionFailed (412, stale
    ``expected_version``)."""
    return _move(return_id, Status.APPROVED, note=note, actor=actor,
                 expected_version=expected_version)


def return_reject(*, return_id: uuid.UUID, note: str = "", actor: str = "",
                  expected_version: int | None = None) -> Return:
    """requested → rejected; its units may be asked for again; ``return.rejected``. Locks and
    raises as approve."""
    return _move(return_id, Status.REJECTED, note=note, actor=actor,
                 expected_version=expected_version)


def return_cancel(*, return_id: uuid.UUID, note: str = "", actor: str = "",
                  expected_version: int | None = None) -> Return:
    """requested | approved → cancelled; its units may be asked for again. Locks and raises as
    approve."""
    return _move(return_id, Status.CANCELLED, note=note, actor=actor,
                 expected_version=expected_version)


def return_close(*, return_id: uuid.UUID, note: str = "", actor: str = "",
                 expected_version: int | None = None) -> Return:
    """refunded → closed; ``return.closed``. Locks and raises as approve."""
    return _move(return_id, Status.CLOSED, note=note, actor=actor,
                 expected_version=expected_version)


def _shipped_from(order_id: uuid.UUID) -> dict[uuid.UUID, uuid.UUID]:
    """Per product, the location most of the order's shipped units left from: the order's
    reservations are consumed as units ship, so their ``quantity_fulfilled`` says where."""
    shipped: dict[uuid.UUID, dict[uuid.UUID, int]] = defaultdict(lambda: defaultdict(int))
    for reservation in inventory_selectors.reservations_for(reference_id=str(order_id),
                                                            reference_type="order"):
        if reservation.quantity_fulfilled > 0:
            item = reservation.inventory_item
            shipped[item.product_id][item.location_id] += reservation.quantity_fulfilled
    return {product_id: max(per_location, key=lambda loc: (per_location[loc], str(loc)))
            for product_id, per_location in shipped.items()}


def _restock_locations(order: Order, lines: list[ReturnItem]) -> dict[uuid.UUID, uuid.UUID]:
    """Where each restocked line goes (line id → location id): the line's own location; else the
    active location the units shipped from; else the highest-priority active location (lowest
    ``priority``, then ``code``). Conflict ``no_active_location`` (409) when there is none."""
    chosen: dict[uuid.UUID, uuid.UUID] = {}
    pending = [line for line in lines if line.location_id is None]
    if pending:
        origin = _shipped_from(order.id)
        active = set(Location.objects.filter(is_active=True, id__in=set(origin.values()))
                     .values_list("id", flat=True)) if origin else set()
        fallback = Location.objects.filter(is_active=True).order_by("priority",
                                                                    "code").values_list("id",
                                                                                        flat=True).first()
        for line in pending:
            location_id = origin.get(line.order_item.product_id)
            if location_id not in active:
                location_id = fallback
            if location_id is None:
                raise Conflict("No active location to put returned units in.",
                               code="no_active_location")
            chosen[line.id] = location_id
    for line in lines:
        if line.location_id is not None:
            chosen[line.id] = line.location_id
    return chosen


def _inspected(lines: list[ReturnItem],
               found: Sequence[ReceiveLineInput]) -> list[ReturnItem]:
    """Apply what the warehouse found (condition, restock, location per line) to the return's
    lines; the lines that changed. ValidationFailed for a line of another return, a bad condition,
    an unknown or inactive location, or one order line twice in one condition."""
    by_id = {line.id: line for line in lines}
    errors: dict[str, Any] = {}
    for index, given in enumerate(found):
        if given.return_item_id not in by_id:
            errors[str(index)] = {"return_item_id": ["Not a line of this return."]}
        elif given.condition not in Condition.values:
            errors[str(index)] = {"condition": [f"One of: {', '.join(Condition.values)}."]}
    if errors:
        raise ValidationFailed("Invalid return lines.", details={"items": errors})
    inventory_selectors.locations_checked(
        {given.location_id for given in found if given.location_id is not None}, active=True)
    changed: list[ReturnItem] = []
    for given in found:
        line = by_id[given.return_item_id]
        new = (given.condition, given.restock, given.location_id or line.location_id)
        if new != (line.condition, line.restock, line.location_id):
            line.condition, line.restock, line.location_id = new
            changed.append(line)
    pairs = [(line.order_item_id, line.condition) for line in lines]
    if len(set(pairs)) != len(pairs):
        raise ValidationFailed(
            "One order line appears twice in one condition; receive it as one line.",
            details={"items": ["Each order line once per condition."]})
    return changed


def return_receive(*, return_id: uuid.UUID, note: str = "", actor: str = "",
                   expected_version: int | None = None,
                   found: Sequence[ReceiveLineInput] = ()) -> Return:
    """approved → received: the units are back in the warehouse.

    ``found`` is what the warehouse found, per line (condition, restock, location; lines not named
    stay as requested): written on the lines before the units are put away.

    Resellable lines with ``restock`` go back on hand through
    ``inventory.services.stock_return_many`` (ledger ``return``, reference the return) at the line's
    location, or, when it has none, at the active location the units shipped from, else the
    highest-priority active location — the chosen location is written on the line. Damaged and
    defective lines (and restock=false) stay out of stock. Every line adds to its order item's
    ``quantity_returned`` (guarded ≤ shipped).

    Locks: the order, the return, the order items (by primary key), the inventory rows (by primary
    key, inside inventory). Publishes ``return.received`` with its items (where each restocked line
    went) and, for the units put back, ``inventory.received`` per row (movement ``return``).
    Raises NotFound, InvalidTransition (409; ``exceeds_fulfilled``),
    PreconditionFailed (412), Conflict (409, ``no_active_location``)."""
    actor = clean_actor(actor, MAX_ACTOR)
    with transaction.atomic(durable=True):
        order, rma = locks.lock_return(return_id)
        _check_move(rma, Status.RECEIVED, expected_version, note)
        lines = list(ReturnItem.objects.filter(rma_id=rma.id).select_related("order_item")
                     .only("id", "quantity", "condition", "restock", "location_id", "order_item",
                           "order_item__id",
                           "order_item__product_id", "order_item__sku").order_by("id"))
        if found:
            inspected = _inspected(lines, found)
            try:
                with transaction.atomic():
                    ReturnItem.objects.bulk_update(inspected,
                                                   ["condition", "restock", "location_id"])
            except IntegrityError:  # two lines swapping conditions meet the unique constraint
                raise ValidationFailed(
                    "Two lines of this order line cannot swap conditions at once.",
                    details={"items": ["Change one line's condition at a time."]}) from None
        restock = [line for line in lines if line.restock
                   and line.condition == Condition.RESELLABLE]
        if restock:
            locations = _restock_locations(order, restock)
            chosen = [line for line in restock if line.location_id != locations[line.id]]
            for line in chosen:
                line.location_id = locations[line.id]
            # the line says where its units went
            ReturnItem.objects.bulk_update(chosen, ["location_id"])
        quantities: dict[uuid.UUID, int] = defaultdict(int)
        for line in lines:
            quantities[line.order_item_id] += line.quantity
        under_lock.order_items_returned(order=order, quantities=dict(quantities))
        if restock:
            inventory_services.stock_return_many(
                lines=[inventory_services.StockLine(location_id=locations[line.id],
                                                    quantity=line.quantity,
                                                    product_id=line.order_item.product_id)
                       for line in restock],
                actor=actor, reason=f"return {rma.rma_number}", reference_type="return",
                reference_id=str(rma.id),
            )
        _save(rma, Status.RECEIVED, note)
        _publish("return.received", rma, order,
                 items=_items(lines, {line.order_item_id: line.order_item.sku for line in lines}))
    return rma


def _line_refunds(order: Order, rma: Return) -> list[tuple[ReturnItem, Decimal]]:
    """What each line of ``rma`` refunds: its units' share of their order line's net price and tax
    (k of n units: k/n of each, rounded half-up; the line's last units take the remainder, so a
    line's refunds sum to what it cost). Prices that included tax refund the net price alone."""
    lines = list(
        ReturnItem.objects.filter(rma_id=rma.id).select_related("order_item").order_by("id"))
    earlier: dict[uuid.UUID, tuple[int, Decimal]] = {}
    done = (ReturnItem.objects.filter(order_item_id__in={line.order_item_id for line in lines},
                                      rma__status__in=REFUNDED).exclude(rma_id=rma.id)
            .values("order_item_id").annotate(units=Sum("quantity"),
                                              amount=Sum("refund_amount")).order_by())
    for row in done:
        earlier[row["order_item_id"]] = (row["units"], row["amount"] or Decimal(0))
    out = []
    for line in lines:
        item = line.order_item
        paid = item.net_total + (Decimal(0) if order.taxes_included else item.tax_total)
        units, amount = earlier.get(item.id, (0, Decimal(0)))
        if units + line.quantity >= item.quantity:
            share = paid - amount
        else:
            share = round_money(item.net_total * line.quantity / item.quantity, order.currency)
            if not order.taxes_included:
                share += round_money(item.tax_total * line.quantity / item.quantity, order.currency)
        earlier[item.id] = (units + line.quantity, amount + share)
        out.append((line, max(share, Decimal(0))))
    return out


def return_refund(*, return_id: uuid.UUID, note: str = "", actor: str = "",
                  expected_version: int | None = None) -> Return:
    """received → refunded: each line refunds its units' share of their order line's net price and
    tax (:func:`_line_refunds`, SPEC §4.4.2), recorded on the line; the return's ``refund_amount``
    is what the order's payments still hold (captured minus refunded) up to that sum, recorded as a
    ``refund`` payment (``orders.under_lock.order_refund``: ``payment_status`` derived again; a
    fully refunded order moves to ``refunded`` when its status allows, e.g.
    ``delivered → refunded``). With nothing captured left to refund the return is refunded with
    ``refund_amount`` 0 and no payment (it can then be closed). Publishes ``return.refunded``.

    Locks the order, then the return. Raises NotFound, InvalidTransition (409), PreconditionFailed
    (412)."""
    actor = clean_actor(actor, MAX_ACTOR)
    with transaction.atomic(durable=True):
        order, rma = locks.lock_return(return_id)
        _check_move(rma, Status.REFUNDED, expected_version, note)
        shares = _line_refunds(order, rma)
        for line, share in shares:
            line.refund_amount = share
        ReturnItem.objects.bulk_update([line for line, _ in shares], ["refund_amount"])
        payment = under_lock.order_refund(
            order=order, amount=sum((share for _, share in shares), Decimal(0)), actor=actor,
            reference=rma.rma_number, data={"return_id": str(rma.id), "rma_number": rma.rma_number})
        _save(rma, Status.REFUNDED, note,
              refund_amount=payment.amount if payment is not None else Decimal(0))
        _publish("return.refunded", rma, order)
    return rma


ACTIONS: dict[str, Callable[..., Return]] = {
    "approve": return_approve,
    "reject": return_reject,
    "receive": return_receive,
    "refund": return_refund,
    "close": return_close,
    "cancel": return_cancel,
}
