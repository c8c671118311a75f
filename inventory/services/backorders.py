"""Backorders (SPEC §4.3, §4.4.3): demand waiting for stock, served first come, first served.

An order line that may be backordered (its product, or one of its inventory rows, allows it) and
finds too little sellable stock reserves what there is; the rest waits here as a :class:`Backorder`
line, queued by the order's ``created_at`` (then the order's id). Whenever a row's sellable stock
grows — receive, transfer in, a restocked return, a positive adjustment, an import, a lowered safety
stock, a reservation released or expired — ``ledger.apply_changes`` hands the growth to
:func:`allocate_backorders` in the same transaction: the product's queue is served oldest first,
never more than became sellable, each allocation a reservation of the order (ledger ``reserve``)
and an ``order.backorder_allocated`` event. A location made active again serves the queues its
stock can fill right after its commit (``location_update``, through
``reconcile.backorders_stranded``, which ``reconcile_inventory --fix`` runs for every product).

Locks: the grown rows are already held; a product's queue is locked after them (rank BACKORDER
of ``stateset/locking.py``). Every writer of a queue — a new backordered order, a cancel, an
edit — holds the product's inventory rows first, so writers of one queue run one after the other:
no unit is allocated twice, none out of order. A row that does not exist yet cannot be locked: a
new row is created under the product's exclusive PRODUCT_STOCK lock, which an order holds shared
from before it scans the product's rows, so the first receipt at a new location either is seen by
the order or waits for it and then serves its queue.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from inventory import locks
from inventory.models import Backorder, Reservation, StockMovement
from inventory.selectors import item_cache
from inventory.services.ledger import Change, Counters, apply_changes
from stateset.db import insert_rows
from webhooks import services as webhooks

Kind = StockMovement.Kind
BATCH = 100


@dataclass
class _Room:
    row: Counters
    units: int


@dataclass(frozen=True)
class Demand:
    """A line's units that wait for stock (``backorder_record``)."""

    product_id: uuid.UUID
    sku: str
    line_id: uuid.UUID
    quantity: int


def _invalidate(reference_ids: set[uuid.UUID]) -> None:
    """The orders' cached answers show their backordered units: move their namespaces on."""
    for reference_id in reference_ids:
        item_cache.invalidate_group(f"backorders:{reference_id}")
    item_cache.invalidate_group("backorders")


def backorders_record(*, demands: Sequence[Demand], reference_type: str, reference_id: uuid.UUID,
                      reference_number: str, queued_at: datetime) -> list[Backorder]:
    """Queue (or add to) the waiting units of each line. The caller holds every inventory row of
    the products (``locks.lock_stock_rows(every_row_of=...)``), so a receipt cannot slip between
    its stock check and this queue. Joins the caller's transaction."""
    demands = [d for d in demands if d.quantity > 0]
    if not demands:
        return []
    with transaction.atomic():
        existing = {b.line_id: b for b in locks.lock_backorders_of(reference_type=reference_type,
                                                                   reference_id=reference_id)}
        fresh, changed = [], []
        for demand in demands:
            row = existing.get(demand.line_id)
            if row is None:
                fresh.append(Backorder(product_id=demand.product_id, sku=demand.sku,
                                       reference_type=reference_type,
                                       reference_id=reference_id, reference_number=reference_number,
                                       line_id=demand.line_id, queued_at=queued_at,
                                       quantity=demand.quantity, quantity_waiting=demand.quantity))
            else:
                row.quantity += demand.quantity
                row.quantity_waiting += demand.quantity
                row.status = Backorder.Status.WAITING
                row.updated_at = timezone.now()
                changed.append(row)
        if fresh:
            insert_rows(fresh)
        if changed:
            Backorder.objects.bulk_update(changed,
                                          ["quantity", "quantity_waiting", "status", "updated_at"])
        _invalidate({reference_id})
    return [*fresh, *changed]


def backorders_reduce(*, reference_type: str, reference_id: uuid.UUID,
                      cuts: Mapping[uuid.UUID, int | None]) -> dict[uuid.UUID, int]:
    """Take units off waiting lines (line id → units, None: all): an edit lowering a line cuts its
    backordered units first; a cancel or a removed line takes them all. Returns line id → units
    cut. The caller holds the products' inventory rows. Joins the caller's transaction."""
    cut: dict[uuid.UUID, int] = {}
    with transaction.atomic():
        rows = [row
                for row in locks.lock_backorders_of(reference_type=reference_type,
                                                    reference_id=reference_id)
                if row.line_id in cuts and row.quantity_waiting > 0]
        for row in rows:
            wanted = cuts[row.line_id]
            take = row.quantity_waiting if wanted is None else min(wanted, row.quantity_waiting)
            row.quantity_waiting -= take
            if row.quantity_waiting == 0:
                row.status = (Backorder.Status.CANCELLED if row.quantity == take or wanted is None
                              else Backorder.Status.ALLOCATED)
            row.updated_at = timezone.now()
            cut[row.line_id] = take
        if rows:
            Backorder.objects.bulk_update(rows, ["quantity_waiting", "status", "updated_at"])
            _invalidate({reference_id})
    return cut


def allocate_backorders(*, rows: Mapping[uuid.UUID, Counters], growth: Mapping[uuid.UUID, int],
                        actor: str) -> int:
    """Serve waiting demand from rows whose sellable stock just grew (``growth``: row → units it
    grew by), oldest order first, at most ``min(growth, sellable)`` per row. Called by
    ``ledger.apply_changes`` with those rows locked. Returns the units allocated."""
    capacity: dict[uuid.UUID, list[_Room]] = defaultdict(list)
    for item_id, row in sorted(rows.items()):
        units = min(growth[item_id], row.sellable)
        if units > 0:
            capacity[row.product_id].append(_Room(row, units))
    changes: dict[uuid.UUID, int] = defaultdict(int)
    refs: dict[uuid.UUID, set[str]] = defaultdict(set)
    reservations: list[Reservation] = []
    served: list[tuple[Backorder, int, list[Reservation]]] = []
    for product_id in sorted(capacity):
        pool = capacity[product_id]
        after = None
        while any(room.units for room in pool):
            queue = locks.lock_waiting(product_id, after=after, limit=BATCH)
            if not queue:
                break
            for backorder in queue:
                after = (backorder.queued_at, backorder.reference_id, backorder.id)
                made: list[Reservation] = []
                need = backorder.quantity_waiting
                for room in pool:
                    take = min(need, room.units)
                    if take <= 0:
                        continue
                    room.units -= take
                    need -= take
                    item_id = room.row.id
                    changes[item_id] += take
                    refs[item_id].add(str(backorder.reference_id))
                    made.append(Reservation(inventory_item_id=item_id, quantity=take,
                                            status=Reservation.Status.ACTIVE,
                                            reference_type=backorder.reference_type,
                                            reference_id=str(backorder.reference_id),
                                            for_order=True, backorder_id=backorder.id))
                    if need == 0:
                        break
                if made:
                    taken = backorder.quantity_waiting - need
                    backorder.quantity_waiting = need
                    backorder.updated_at = timezone.now()
                    if need == 0:
                        backorder.status = Backorder.Status.ALLOCATED
                    reservations += made
                    served.append((backorder, taken, made))
                if not any(room.units for room in pool):
                    break
    if not served:
        return 0
    apply_changes([Change(item_id, 0, units, Kind.RESERVE, "backorder allocated",
                          "order" if len(refs[item_id]) == 1 else "",
                          next(iter(refs[item_id])) if len(refs[item_id]) == 1 else "")
                   for item_id, units in sorted(changes.items())], actor=actor, allocate=False)
    insert_rows(reservations)
    Backorder.objects.bulk_update([b for b, _, _ in served],
                                  ["quantity_waiting", "status", "updated_at"])
    for backorder, taken, made in served:
        webhooks.publish(event_type="order.backorder_allocated", payload={
            "order_id": str(backorder.reference_id), "order_number": backorder.reference_number,
            "order_item_id": str(backorder.line_id), "product_id": str(backorder.product_id),
            "sku": backorder.sku,
            "quantity": taken, "quantity_backordered": backorder.quantity_waiting,
            "reservations": [{"id": str(r.id), "inventory_item_id": str(r.inventory_item_id),
                              "quantity": r.quantity}
                             for r in made],
        })
    _invalidate({b.reference_id for b, _, _ in served})
    return sum(taken for _, taken, _ in served)
