"""Reservations (SPEC §4.3): reserve all or nothing, release, fulfil (ship), expire. The contract
the orders, fulfillment and returns apps call; they join the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from inventory import locks, selectors
from inventory.models import Backorder, InventoryItem, Reservation
from inventory.services import backorders
from inventory.services.common import (
    MAX_LINES,
    MAX_REASON,
    MAX_REFERENCE_ID,
    MAX_REFERENCE_TYPE,
    Kind,
    ProductRef,
    Status,
    as_uuid,
    check_quantity,
    logger,
    product_refs,
)
from inventory.services.ledger import Change, Counters, Rejected, apply_changes
from stateset import metrics
from stateset.db import batched_inserts, insert_rows
from stateset.errors import (
    Conflict,
    InsufficientStock,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from stateset.inputs import clean_text
from webhooks import services as webhooks


@dataclass(frozen=True)
class ReserveLine:
    quantity: int
    product_id: uuid.UUID | None = None
    sku: str | None = None
    location_id: uuid.UUID | None = None
    backorder_line_id: uuid.UUID | None = None  # an order line that may wait for what is short
    # The caller's reading of the product, when it has one (an order has just priced its lines):
    # the product is then not read again.
    product: ProductRef | None = None


@dataclass(frozen=True)
class Queue:
    """Where an order's short lines wait (``stock_reserve_for_order``)."""

    order_id: uuid.UUID
    order_number: str
    queued_at: datetime


@dataclass(frozen=True)
class Reserved:
    reservations: list[Reservation]
    backordered: dict[uuid.UUID, int]  # order line id → units waiting


def stock_reserve(*, lines: list[ReserveLine], reference_type: str, reference_id: str,
                  expires_at: datetime | None = None, actor: str = "") -> list[Reservation]:
    """Reserve every line or none (all or nothing).

    A line with ``location_id`` reserves at that location; without one, active locations are used
    by ``priority`` (then code), splitting the line across locations when the first is short. Lines
    of the same product share what is available (lines with a location are served first).

    Locks: when the plan (made on the rows as last committed, unlocked) takes from one row, that
    row, by the counters' conditional UPDATE, which decides; a refusal the snapshot already makes
    locks nothing. Otherwise — several rows, or the row changed under the plan (then after a
    rollback) — every inventory row of the lines' products at active locations with stock, in one
    ``SELECT ... ORDER BY id FOR UPDATE`` (so opposite line orders cannot deadlock), before the
    UPDATE. Then one INSERT statement of movements (``reserve``, one per row), reservations and
    the outbox row.
    Joins the caller's transaction; after commit the rows' cache entries are dropped. Publishes
    ``inventory.reserved`` (and ``inventory.low_stock`` for rows crossing their reorder point).

    Returns the reservations in line order; each carries ``line_index`` (the line it serves) and
    its ``inventory_item`` (already loaded).

    Raises InsufficientStock (409) with ``details={"lines": [{"index", "sku", "product_id",
    "requested", "available"}]}`` naming every short line; NotFound (code ``product_not_found`` /
    ``location_not_found``, details ``lines``/``location_ids``); ValidationFailed (bad quantity,
    inactive product or location, missing reference, expiry in the past)."""
    return _counted(lambda: _reserve(lines=lines, reference_type=reference_type,
                                     reference_id=reference_id,
                                      expires_at=expires_at, actor=actor, queue=None).reservations)


def stock_reserve_for_order(*, lines: list[ReserveLine], queue: Queue, actor: str = "",
                            optimistic: bool = False) -> Reserved:
    """:func:`stock_reserve` for an order (``reference_type "order"``, never expiring), where a line
    with ``backorder_line_id`` whose product allows backorders (the product, or one of its active
    rows) reserves what is sellable and queues the rest (``backorders.backorders_record``) instead
    of failing. Such lines lock every active row of their product, so a receipt elsewhere waits for
    this transaction and then serves the new demand; and they hold the product's PRODUCT_STOCK lock
    (shared) from before that scan, so a row created meanwhile (its first receipt) waits for this
    transaction too, or is in the scan. Raises as :func:`stock_reserve` for the
    others; a raise leaves the caller's transaction to be rolled back (no savepoint is taken).

    With ``optimistic``, an order none of whose lines can wait plans as a plain reservation does
    (unlocked, the conditional UPDATE decides); a row that changed under the plan raises
    :class:`StockRaced`, and the caller rolls its transaction back and calls again without."""
    return _counted(lambda: _reserve(lines=lines, reference_type="order",
                                     reference_id=str(queue.order_id),
                                     expires_at=None, actor=actor, queue=queue,
                                     optimistic=optimistic))


class StockRaced(Exception):
    """An optimistic reservation's row changed between its plan's read and its UPDATE; the
    transaction may hold that row's lock (a refused UPDATE keeps the lock it waited for), so it
    must be rolled back before the reservation is tried again with the rows locked in order."""


def _counted[T](run: Callable[[], T]) -> T:
    try:
        result = run()
    except InsufficientStock:
        metrics.RESERVATIONS.labels("insufficient_stock").inc()
        raise
    except (ValidationFailed, NotFound):
        metrics.RESERVATIONS.labels("rejected").inc()
        raise
    metrics.RESERVATIONS.labels("reserved").inc()
    return result


@dataclass
class _Line:
    index: int
    quantity: int
    product: ProductRef
    location_id: uuid.UUID | None


def _reserve(*, lines: Sequence[ReserveLine], reference_type: str, reference_id: str,
             expires_at: datetime | None, actor: str, queue: Queue | None,
             optimistic: bool = True) -> Reserved:
    if not isinstance(lines, Sequence) or not 1 <= len(lines) <= MAX_LINES:
        raise ValidationFailed(f"Give 1 to {MAX_LINES} lines.",
                               details={"lines": [f"Give 1 to {MAX_LINES} lines."]})
    reference_type = clean_text(reference_type, "reference_type", MAX_REFERENCE_TYPE, required=True)
    reference_id = clean_text(reference_id, "reference_id", MAX_REFERENCE_ID, required=True)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("expires_at is in the past.",
                               details={"expires_at": ["Must be in the future."]})
    bad: dict[str, Any] = {}
    for index, ln in enumerate(lines):
        try:
            check_quantity(ln.quantity)
            if ln.product_id is None and not ln.sku:
                raise ValidationFailed(details={"product_id": ["Give product_id or sku."]})
            if ln.product_id is not None:
                as_uuid(ln.product_id, "product_id")
            if ln.sku is not None:
                clean_text(ln.sku, "sku", 64)
            if ln.location_id is not None:
                as_uuid(ln.location_id, "location_id")
        except ValidationFailed as exc:
            bad[str(index)] = exc.details
    if bad:
        raise ValidationFailed("Invalid reservation lines.", details={"lines": bad})
    looked_up = iter(product_refs(
        [(as_uuid(ln.product_id, "product_id") if ln.product_id is not None else None, ln.sku)
         for ln in lines if ln.product is None]))
    refs = [ln.product if ln.product is not None else next(looked_up) for ln in lines]
    unknown = [{"index": i, "product_id": str(ln.product_id) if ln.product_id else None,
                "sku": ln.sku}
               for i, (ln, ref) in enumerate(zip(lines, refs, strict=True)) if ref is None]
    if unknown:
        raise NotFound("No such product.", code="product_not_found", details={"lines": unknown})
    inactive = [{"index": i, "sku": ref.sku} for i,
                ref in enumerate(refs) if ref is not None and not ref.is_active]
    if inactive:
        raise ValidationFailed("Inactive products cannot be reserved.", code="product_inactive",
                               details={"lines": inactive})
    explicit = {as_uuid(ln.location_id, "location_id") for ln in lines
                if ln.location_id is not None}
    if explicit:
        selectors.locations_checked(explicit, active=True, in_body=False)
    parsed = [
        _Line(i, ln.quantity, ref,
              as_uuid(ln.location_id, "location_id") if ln.location_id is not None else None)
        for i, (ln, ref) in enumerate(zip(lines, refs, strict=True)) if ref is not None
    ]

    may_wait = {line.product.id for line, given in zip(parsed, lines, strict=True)
                if queue is not None and given.backorder_line_id is not None}
    # Optimistic: plan on the rows as last committed, unlocked, when the plan takes from one row
    # and no line may queue: the counters' conditional UPDATE then locks that row and decides, so
    # a hot row is held from that UPDATE to the commit only, not from a SELECT ... FOR UPDATE
    # before it, and a refusal the snapshot already makes takes no lock at all. A plan over
    # several rows, or one with a line that may wait, locks first (in id order, with the queue's
    # PRODUCT_STOCK lock); a row that changed under the plan makes the attempt start again, with
    # the locks, after a rollback: here for a plain reservation, by the caller for an order's.
    if optimistic and queue is None:  # its own savepoint (or transaction) rolls back: again here
        try:
            return _reserve_planned(parsed, lines, reference_type, reference_id, expires_at,
                                    actor, queue, may_wait, optimistic=True)
        except StockRaced:
            optimistic = False
    return _reserve_planned(parsed, lines, reference_type, reference_id, expires_at, actor,
                            queue, may_wait, optimistic=optimistic)


@dataclass
class _Plan:
    allocations: list[tuple[int, InventoryItem, int]]  # (line index, row, units)
    waiting: list[tuple[int, int]]  # (line index, units short) of lines that queue
    short: list[dict[str, Any]]  # the 409's lines
    may_queue: bool  # a line may wait (its product, or one of the rows read, allows backorders)

    def per_row(self) -> dict[uuid.UUID, int]:
        units: dict[uuid.UUID, int] = defaultdict(int)
        for _, row, take in self.allocations:
            units[row.id] += take
        return units


def _plan(parsed: Sequence[_Line], lines: Sequence[ReserveLine], rows: Sequence[InventoryItem],
          may_wait: set[uuid.UUID]) -> _Plan:
    remaining = {row.id: row.sellable for row in rows}
    allowed = {line.product.id for line in parsed if line.product.allow_backorder} | {
        row.product_id for row in rows if row.allow_backorder}
    plan = _Plan(allocations=[], waiting=[], short=[], may_queue=bool(may_wait & allowed))
    candidates: dict[uuid.UUID, list[InventoryItem]] = defaultdict(list)
    # location_priority and location_code are annotated on the rows by their scan.
    for row in sorted(rows, key=lambda r: (
            r.location_priority, r.location_code, r.id)):  # type: ignore[attr-defined]  # above
        candidates[row.product_id].append(row)
    # Lines pinned to a location go first, so a line free to go anywhere does not take their stock.
    for line in sorted(parsed, key=lambda ln: (ln.location_id is None, ln.index)):
        pool = [r for r in candidates[line.product.id]
                if line.location_id is None or r.location_id == line.location_id]
        available = sum(remaining[r.id] for r in pool)
        backorder = (lines[line.index].backorder_line_id is not None
                     and line.product.id in may_wait & allowed)
        if available < line.quantity and backorder:
            plan.waiting.append((line.index, line.quantity - available))
        elif available < line.quantity:
            entry = {"index": line.index, "sku": line.product.sku,
                     "product_id": str(line.product.id),
                     "requested": line.quantity, "available": available}
            if line.location_id is not None:
                entry["location_id"] = str(line.location_id)
            plan.short.append(entry)
            continue
        need = line.quantity
        for row in pool:
            take = min(need, remaining[row.id])
            if take <= 0:
                continue
            remaining[row.id] -= take
            plan.allocations.append((line.index, row, take))
            need -= take
            if need == 0:
                break
    return plan


def _reserve_planned(parsed: Sequence[_Line], lines: Sequence[ReserveLine], reference_type: str,
                     reference_id: str, expires_at: datetime | None, actor: str,
                     queue: Queue | None, may_wait: set[uuid.UUID], *,
                     optimistic: bool) -> Reserved:
    # An order's reservation takes no savepoint of its own (two round trips fewer): it runs inside
    # the order's transaction, which a refusal ends, so the order's rollback is the one that counts.
    # After the row locks, the movements, reservations and outbox row go as one statement.
    with transaction.atomic(savepoint=queue is None), batched_inserts():
        plan = None
        if optimistic:
            plan = _plan(parsed, lines, selectors.sellable_rows(ln.product.id for ln in parsed),
                         may_wait)
            if plan.may_queue or (not plan.short and len(plan.per_row()) > 1):
                plan = None  # a queue, or several rows: locked first, in id order
        if plan is None:
            # A line that may wait queues behind rows it must all see (a row created while this
            # scan ran would get stock nobody serves the queue from): ``every_row_of`` also takes
            # the products' shared PRODUCT_STOCK lock before the scan.
            rows = locks.lock_stock_rows((line.product.id for line in parsed),
                                         every_row_of=may_wait)
            plan = _plan(parsed, lines, rows, may_wait)
        allocations, waiting, short = plan.allocations, plan.waiting, plan.short
        if short:
            short.sort(key=lambda e: e["index"])
            raise InsufficientStock(
                f"Not enough stock for {len(short)} of {len(lines)} line(s).",
                details={"lines": short}
            )
        try:
            after = apply_changes(
                [Change(item_id, 0, qty, Kind.RESERVE, "", reference_type, reference_id)
                 for item_id, qty in plan.per_row().items()], actor=actor)
        except Rejected:
            if optimistic:  # the row changed since the plan's read: again, under the locks
                raise StockRaced() from None
            # Cannot happen under the row locks; the guard is the last line of defence.
            logger.error("reservation guard rejected locked rows",
                         extra={"reference_id": reference_id})
            raise InsufficientStock("Stock changed while reserving; retry.") from None
        for row in {r.id: r for _, r, _ in allocations}.values():
            row.on_hand, row.reserved = after[row.id].on_hand, after[row.id].reserved
            row.available, row.version = row.on_hand - row.reserved, after[row.id].version
        allocations.sort(key=lambda a: a[0])
        reservations = [
            Reservation(inventory_item=row, quantity=take, status=Status.ACTIVE,
                        reference_type=reference_type, for_order=queue is not None,
                        reference_id=reference_id, expires_at=expires_at)
            for _, row, take in allocations
        ]
        if reservations:
            insert_rows(reservations)
        for (index, _, _), reservation in zip(allocations, reservations, strict=True):
            reservation.line_index = index  # type: ignore[attr-defined]  # the line it serves, for the caller
        backordered: dict[uuid.UUID, int] = {}
        if waiting:
            assert queue is not None
            by_index = {line.index: line for line in parsed}
            demands = [backorders.Demand(product_id=by_index[i].product.id,
                                         sku=by_index[i].product.sku,
                                         line_id=lines[i].backorder_line_id, quantity=units)  # type: ignore[arg-type]  # set on waiting lines
                       for i, units in waiting]
            backorders.backorders_record(demands=demands, reference_type="order",
                                         reference_id=queue.order_id,
                                         reference_number=queue.order_number,
                                         queued_at=queue.queued_at)
            backordered = {demand.line_id: demand.quantity for demand in demands}
        if not reservations:
            return Reserved(reservations=[], backordered=backordered)
        webhooks.publish(event_type="inventory.reserved", payload={
            "reference_type": reference_type, "reference_id": reference_id,
            "reservations": [{"id": str(r.id), "inventory_item_id": str(r.inventory_item_id),
                              "sku": r.inventory_item.sku,
                              "location_id": str(r.inventory_item.location_id),
                              "quantity": r.quantity,
                              "expires_at": r.expires_at.isoformat() if r.expires_at else None}
                             for r in reservations],
        })
    return Reserved(reservations=reservations, backordered=backordered)


def _close(reservations: Sequence[Reservation], *, status: str, kind: str, actor: str,
           reason: str) -> None:
    """Mark locked, active reservations ``status`` and give their unfulfilled units back:
    ``reserved -= remainder`` per row (rows locked in primary-key order), one movement per row. A
    row whose counter drifted below what its reservations hold is clamped at zero and logged (the
    ``reconcile_inventory`` command reports and repairs it), so one bad row cannot block expiry."""
    if not reservations:
        return
    now = timezone.now()
    Reservation.objects.filter(id__in=[r.id for r in reservations]).update(status=status,
                                                                           updated_at=now)
    held: dict[uuid.UUID, int] = defaultdict(int)
    refs: dict[uuid.UUID, set[tuple[str, str]]] = defaultdict(set)
    released = [(r, r.quantity - r.quantity_fulfilled) for r in reservations]
    for r in reservations:
        held[r.inventory_item_id] += r.quantity - r.quantity_fulfilled
        refs[r.inventory_item_id].add((r.reference_type, r.reference_id))
        r.status = status
        r.updated_at = now
    counters = locks.lock_items(held)
    changes = []
    for item_id, quantity in held.items():
        reserved = counters.get(item_id, (0, 0))[1]
        give_back = min(quantity, reserved)
        if give_back < quantity:
            logger.error("reserved counter below its reservations; clamped",
                         extra={"inventory_item_id": str(item_id), "reserved": reserved,
                                "releasing": quantity})
        if give_back <= 0:
            continue
        (ref_type, ref_id), *others = refs[item_id]
        text = reason if not others else f"{reason} ({len(refs[item_id])} references)".strip()
        changes.append(Change(item_id, 0, -give_back, kind, text, "" if others else ref_type,
                               "" if others else ref_id))
    after = apply_changes(changes, actor=actor)
    _publish_closed(CLOSE_EVENTS[kind], released, after, reason=reason)


# ``inventory.released`` / ``inventory.expired``: one event per reference (an order, a cart), as
# ``inventory.reserved`` is, naming the reservations and the units each gave back.
CLOSE_EVENTS: dict[str, str] = {Kind.RELEASE: "inventory.released",
                                Kind.EXPIRE: "inventory.expired"}


def _publish_closed(event_type: str, released: Sequence[tuple[Reservation, int]],
                    after: Mapping[uuid.UUID, Counters], *, reason: str) -> None:
    """One event per reference of ``released`` ((reservation, units given back) pairs), all in one
    INSERT. The rows' SKU and location come from the change's counters (a row clamped at zero,
    which the change skipped, is read)."""
    places: dict[uuid.UUID, tuple[str, uuid.UUID]] = {
        item_id: (row.sku, row.location_id) for item_id, row in after.items()}
    unknown = {r.inventory_item_id for r, _ in released} - set(places)
    if unknown:
        places.update({item_id: (sku, location_id) for item_id, sku, location_id in
                       InventoryItem.objects.filter(id__in=unknown)
                       .values_list("id", "sku", "location_id")})
    by_reference: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r, units in released:
        sku, location_id = places[r.inventory_item_id]
        by_reference[(r.reference_type, r.reference_id)].append({
            "id": str(r.id), "inventory_item_id": str(r.inventory_item_id), "sku": sku,
            "location_id": str(location_id), "quantity": units})
    webhooks.publish_many([
        (event_type, {"reference_type": reference_type, "reference_id": reference_id,
                      "reason": reason, "reservations": rows})
        for (reference_type, reference_id), rows in by_reference.items()])


def stock_release(*, reservation_ids: list[uuid.UUID] | None = None,
                  reference_type: str | None = None,
                  reference_id: str | None = None, actor: str = "",
                  reason: str = "", order_cancelled: bool = False) -> list[Reservation]:
    """Release the still-active remainder of reservations, by ids or by reference
    (``reference_id`` with an optional ``reference_type``). Already released, fulfilled or expired
    reservations are left alone (releasing twice is harmless); the answer lists what was released.

    A reservation held for an order (``for_order``) is the order's: only the orders app releases
    it, as the order is cancelled (``order_cancelled``, by reference), and the order then leaves the
    backorder queue (its waiting lines are cut). Asked by anyone else (the API, the admin) it is
    Conflict ``reserved_for_order`` (409) and nothing is released — the order would be left with
    units it can no longer ship. What becomes sellable goes to the orders still waiting
    (``backorders.allocate_backorders``).

    Locks the reservations (primary-key order), then their inventory rows — with every row of the
    products the order was waiting for — (primary-key order), then those products' queues; ledger
    ``release``, one movement per row; ``inventory.released`` per reference released. Joins the
    caller's transaction. Raises ValidationFailed
    (neither ids nor reference, too many ids), NotFound (an unknown id)."""
    reason = clean_text(reason, "reason", MAX_REASON)
    with transaction.atomic():
        if reservation_ids is not None:
            if not 1 <= len(reservation_ids) <= MAX_LINES:
                raise ValidationFailed(f"Give 1 to {MAX_LINES} reservation ids.",
                                       details={"reservation_ids": [f"Give 1 to {MAX_LINES} ids."]})
            ids = {as_uuid(i, "reservation_ids") for i in reservation_ids}
            rows = locks.lock_reservations(ids, with_items=True)
            missing = sorted(str(i) for i in ids - {r.id for r in rows})
            if missing:
                raise NotFound("No such reservation.", code="reservation_not_found",
                               details={"reservation_ids": missing})
            rows = [r for r in rows if r.status == Status.ACTIVE]
        elif reference_id:
            reference_id = clean_text(reference_id, "reference_id", MAX_REFERENCE_ID, required=True)
            reference_type = (clean_text(reference_type, "reference_type", MAX_REFERENCE_TYPE)
                              or None)
            rows = locks.lock_active_reservations_of(reference_id=reference_id,
                                                     reference_type=reference_type)
            if order_cancelled:
                _leave_queue(rows, reference_id)
        else:
            raise ValidationFailed("Give reservation_ids or reference_id.",
                                   details={
                                       "reservation_ids": [
                                           "Give reservation_ids or reference_id."]})
        held = [r for r in rows if r.for_order]
        if held and not order_cancelled:
            raise Conflict("These units are held for an order: cancel or edit the order instead.",
                           code="reserved_for_order",
                           details={"reservation_ids": [str(r.id) for r in held],
                                    "order_ids": sorted({r.reference_id for r in held})})
        _close(rows, status=Status.RELEASED, kind=Kind.RELEASE, actor=actor,
               reason=reason or "released")
    return rows


def _leave_queue(reservations: Sequence[Reservation], reference_id: str) -> None:
    """An order released by reference (cancelled) leaves the backorder queue first, so what it gives
    back goes to the next order waiting, not to itself: its products' rows are locked (with those of
    its reservations), then its waiting lines cut."""
    try:
        order_id = uuid.UUID(reference_id)
    except ValueError:
        return
    products = set(Backorder.objects.filter(reference_id=order_id, quantity_waiting__gt=0)
                   .values_list("product_id", flat=True))
    if not products:
        return
    locks.lock_items({r.inventory_item_id for r in reservations}
                     | set(InventoryItem.objects.filter(product_id__in=products).values_list("id",
                                                                                             flat=True)))
    lines = Backorder.objects.filter(reference_id=order_id,
                                     quantity_waiting__gt=0).values_list("line_id", flat=True)
    backorders.backorders_reduce(reference_type="order", reference_id=order_id,
                                 cuts=dict.fromkeys(lines))


def stock_fulfil(*, reservation_id: uuid.UUID, quantity: int, actor: str = "",
                 reference_type: str = "", reference_id: str = "") -> Reservation:
    """Ship ``quantity`` units of an active reservation: ``reserved -= q`` and ``on_hand -= q`` on
    its row, ledger ``ship``; the reservation is ``fulfilled`` once fully consumed.

    Locks the reservation, then its row. Joins the caller's transaction. Raises NotFound
    (``reservation_not_found``), InvalidTransition (409, not active), Conflict
    (``exceeds_reservation``, more than remains), ValidationFailed (bad quantity). A shipment of
    several lines should call :func:`stock_fulfil_many` once."""
    return stock_fulfil_many(fulfilments=[(reservation_id, quantity)], actor=actor,
                             reference_type=reference_type, reference_id=reference_id)[0]


def stock_fulfil_many(*, fulfilments: Sequence[tuple[uuid.UUID, int]], actor: str = "",
                      reference_type: str = "", reference_id: str = "") -> list[Reservation]:
    """:func:`stock_fulfil` for several reservations at once: reservations locked in primary-key
    order, then their rows in primary-key order; one ``ship`` movement per row. Returns the
    reservations in the order given."""
    if not 1 <= len(fulfilments) <= MAX_LINES:
        raise ValidationFailed(f"Give 1 to {MAX_LINES} fulfilments.",
                               details={"fulfilments": [f"Give 1 to {MAX_LINES}."]})
    wanted: dict[uuid.UUID, int] = {}
    for reservation_id, quantity in fulfilments:
        reservation_id = as_uuid(reservation_id, "reservation_id")
        if reservation_id in wanted:
            raise ValidationFailed("A reservation appears twice.",
                                   details={"reservation_id": [str(reservation_id)]})
        wanted[reservation_id] = check_quantity(quantity)
    reference_type = clean_text(reference_type, "reference_type", MAX_REFERENCE_TYPE)
    reference_id = clean_text(reference_id, "reference_id", MAX_REFERENCE_ID)
    with transaction.atomic():
        rows = {r.id: r for r in locks.lock_reservations(wanted)}
        missing = sorted(str(i) for i in set(wanted) - set(rows))
        if missing:
            raise NotFound("No such reservation.", code="reservation_not_found",
                           details={"reservation_ids": missing})
        now = timezone.now()
        per_row: dict[uuid.UUID, int] = defaultdict(int)
        for reservation_id, quantity in wanted.items():
            r = rows[reservation_id]
            if r.status != Status.ACTIVE:
                raise InvalidTransition(f"The reservation is {r.status}.",
                                        details={"reservation_id": str(r.id), "status": r.status})
            if quantity > r.remaining:
                raise Conflict("More than the reservation holds.", code="exceeds_reservation",
                               details={"reservation_id": str(r.id), "requested": quantity,
                                        "remaining": r.remaining})
            r.quantity_fulfilled += quantity
            if r.quantity_fulfilled == r.quantity:
                r.status = Status.FULFILLED
            r.updated_at = now
            per_row[r.inventory_item_id] += quantity
        Reservation.objects.bulk_update(list(rows.values()),
                                        ["quantity_fulfilled", "status", "updated_at"])
        if len(per_row) > 1:
            locks.lock_items(per_row)
        try:
            apply_changes(
                [Change(item_id, -q, -q, Kind.SHIP, "shipped", reference_type, reference_id)
                    for item_id, q in per_row.items()], actor=actor)
        except Rejected as exc:
            raise Conflict("The inventory row holds fewer reserved units than its reservations; "
                           "run reconcile_inventory.", code="inventory_drift",
                           details={"inventory_item_ids": sorted(map(str, exc.item_ids))}) from None
    return [rows[i] for i in wanted]


MAX_EXPIRES_IN = 30 * 86400


def reservation_extend(*, reservation_id: uuid.UUID, expires_in: int) -> Reservation:
    """``POST /inventory/reservations/{id}/extend``: an active, expiring reservation now expires
    ``expires_in`` seconds from now. Locks the reservation. Raises NotFound, Conflict
    (``reservation_not_active`` for another status, ``not_expiring`` for one that never expires,
    such as an order's), ValidationFailed (``expires_in`` not 1..30 days)."""
    if (isinstance(expires_in, bool) or not isinstance(expires_in, int)
        or not 1 <= expires_in <= MAX_EXPIRES_IN):
        raise ValidationFailed("expires_in is 1 to 2592000 seconds.",
                               details={"expires_in": [f"An integer from 1 to {MAX_EXPIRES_IN}."]})
    with transaction.atomic(durable=True):
        found = locks.lock_reservations([reservation_id], with_items=True)
        if not found:
            raise NotFound("No such reservation.", code="reservation_not_found")
        reservation = found[0]
        if reservation.status != Status.ACTIVE:
            raise Conflict(f"The reservation is {reservation.status}.",
                           code="reservation_not_active", details={"status": reservation.status})
        if reservation.expires_at is None:
            raise Conflict("The reservation never expires.", code="not_expiring")
        reservation.expires_at = timezone.now() + timedelta(seconds=expires_in)
        reservation.updated_at = timezone.now()
        Reservation.objects.filter(id=reservation.id).update(expires_at=reservation.expires_at,
                                                            updated_at=reservation.updated_at)
    return reservation


def reservations_expire(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Expire active reservations whose ``expires_at`` has passed, in batches of ``batch_size``,
    one transaction per batch: status ``expired``, ``reserved`` given back, ledger ``expire``,
    ``inventory.expired`` per reference (one INSERT per batch).

    Reservations locked by someone else (``FOR UPDATE SKIP LOCKED``) are left for the next run, so
    concurrent workers never wait on each other; rows are locked in primary-key order. Returns how
    many reservations expired."""
    now = now or timezone.now()
    if not 1 <= batch_size <= 10_000:
        raise ValidationFailed("batch_size must be 1..10000.",
                               details={"batch_size": ["Must be 1..10000."]})
    total = 0
    while True:
        with transaction.atomic():
            batch = locks.lock_expired_reservations(now=now, limit=batch_size)
            _close(batch, status=Status.EXPIRED, kind=Kind.EXPIRE, actor="system:expiry",
                   reason="expired")
        total += len(batch)
        if len(batch) < batch_size:
            return total


@dataclass(frozen=True)
class LineChange:
    """One order line's change of held units (reserved or waiting) in an edit: ``units`` > 0 holds
    more (reserve, or wait when it may), < 0 holds fewer (waiting units are cut first)."""

    line_id: uuid.UUID
    product_id: uuid.UUID
    units: int
    location_id: uuid.UUID | None = None


def stock_rebalance(*, queue: Queue, changes: Sequence[LineChange],
                    claimed: Mapping[tuple[uuid.UUID, uuid.UUID], int] | None = None,
                    actor: str = "") -> Reserved:
    """Move an order's stock by the difference only (an order edit, SPEC §4.4.3): lines holding more
    reserve it (or wait for it, when they may be backordered) — all or nothing, InsufficientStock
    otherwise —; lines holding fewer give back their waiting units first, then reserved units
    (``release``, from the order's reservations of that product, never those ``claimed`` by pending
    shipments: (product, location) → units). What is given back goes to the orders waiting for it.

    Locks, in the global order: the order's reservations, the growing lines' products (shared
    PRODUCT_STOCK), every inventory row of the products involved, those products' queues. Joins
    the caller's transaction."""
    claimed = claimed or {}
    increases = [c for c in changes if c.units > 0]
    decreases = [c for c in changes if c.units < 0]
    with transaction.atomic():
        held = locks.lock_active_reservations_of(reference_id=str(queue.order_id),
                                                 reference_type="order")
        # Before any row: a line that grows may wait, and must see every row of its product.
        locks.hold_product_stock({c.product_id for c in increases}, shared=True)
        locks.lock_product_rows({c.product_id for c in changes})
        reserved = Reserved(reservations=[], backordered={})
        if increases:
            reserved = _reserve(
                lines=[ReserveLine(quantity=c.units, product_id=c.product_id,
                                   location_id=c.location_id,
                                                   backorder_line_id=c.line_id) for c in increases],
                                reference_type="order", reference_id=str(queue.order_id),
                expires_at=None,
                                actor=actor, queue=queue)
        if decreases:
            cut = backorders.backorders_reduce(reference_type="order", reference_id=queue.order_id,
                                               cuts={c.line_id: -c.units for c in decreases})
            give_back: dict[uuid.UUID, int] = defaultdict(int)
            for change in decreases:
                give_back[change.product_id] += -change.units - cut.get(change.line_id, 0)
            _release_units(held, give_back, claimed, actor=actor)
    return reserved


def _release_units(held: Sequence[Reservation], units: Mapping[uuid.UUID, int],
                   claimed: Mapping[tuple[uuid.UUID, uuid.UUID], int], *, actor: str) -> None:
    """Give back ``units`` per product from locked, active reservations (newest first), leaving what
    pending shipments claim at each location; one ``release`` movement per row."""
    room: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
    for r in held:
        room[(r.inventory_item.product_id, r.inventory_item.location_id)] += r.remaining
    for place, units_claimed in claimed.items():
        room[place] -= units_claimed
    per_row: dict[uuid.UUID, int] = defaultdict(int)
    now = timezone.now()
    touched: list[Reservation] = []
    released: list[tuple[Reservation, int]] = []
    for r in sorted(held, key=lambda r: (r.created_at, r.id), reverse=True):
        product = r.inventory_item.product_id
        place = (product, r.inventory_item.location_id)
        take = min(units.get(product, 0), r.remaining, max(room[place], 0))
        if take <= 0:
            continue
        units = {**units, product: units[product] - take}
        room[place] -= take
        per_row[r.inventory_item_id] += take
        r.quantity -= take
        if r.quantity == r.quantity_fulfilled:
            r.status = Status.FULFILLED if r.quantity_fulfilled else Status.RELEASED
            if not r.quantity:
                # a row keeps its size; nothing is left of it
                r.quantity, r.status = take, Status.RELEASED
        r.updated_at = now
        touched.append(r)
        released.append((r, take))
    short = {p: n for p, n in units.items() if n > 0}
    if short:  # the order holds fewer free units than its lines say: the lines were checked first
        raise Conflict(
            "The order's reservations do not cover this change; run reconcile_inventory.",
                       code="inventory_drift", details={"product_ids": sorted(map(str, short))})
    Reservation.objects.bulk_update(touched, ["quantity", "status", "updated_at"])
    after = apply_changes([Change(item_id, 0, -quantity, Kind.RELEASE, "order edited", "order",
                                  touched[0].reference_id) for item_id,
                           quantity in sorted(per_row.items())], actor=actor)
    _publish_closed("inventory.released", released, after, reason="order edited")
