"""Every row lock of the inventory app (STYLE.md "Locks in one place per app").

Ranks and the one global order are in ``stateset/locking.py``: reservations (by primary key) before
inventory rows (by primary key); locations are locked alone. Each helper here reports what it
locked (``stateset.locking.acquired``) so the test suite checks the order on every path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from inventory.models import Backorder, InventoryItem, Location, Reservation
from stateset.locking import Rank, acquired

_LOCK_STOCK_ROWS_SQL = "SELECT * FROM inventory_lock_stock_rows(%s, %s, %s)"

_PRODUCT_STOCK_SQL = {
    shared: f"SELECT pg_advisory_xact_lock{'_shared' if shared else ''}(key) "
            "FROM unnest(%s::bigint[]) WITH ORDINALITY AS keys(key, n) ORDER BY n"
    for shared in (True, False)
}


def _stock_key(product_id: uuid.UUID) -> int:
    """A product's advisory lock key: its id's first 8 bytes as a signed bigint (two products that
    shared a key would only wait on each other, never be wrong)."""
    return int.from_bytes(product_id.bytes[:8], "big", signed=True)


def hold_product_stock(product_ids: Iterable[uuid.UUID], *, shared: bool) -> None:
    """Hold the products' row sets until the transaction ends (rank PRODUCT_STOCK of
    ``stateset/locking.py``), in id order. Exclusive: a writer about to create inventory rows.
    Shared: an order about to lock every row of its products — orders do not wait on each other,
    only on a transaction creating a row of one of their products (and it on them)."""
    ids = sorted(set(product_ids))  # by id, which orders the keys' bytes the same way
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(_PRODUCT_STOCK_SQL[shared], [[_stock_key(i) for i in ids]])
    acquired(Rank.PRODUCT_STOCK, ids)


def lock_items(item_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """``SELECT ... ORDER BY id FOR UPDATE`` of inventory rows. Returns the locked rows'
    ``(on_hand, reserved)``; rows that do not exist are absent."""
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    rows = list(InventoryItem.objects.select_for_update().filter(id__in=ids).order_by("id")
                .values_list("id", "on_hand", "reserved"))
    acquired(Rank.INVENTORY_ITEM, [row[0] for row in rows])
    return {item_id: (on_hand, reserved) for item_id, on_hand, reserved in rows}


def lock_item(item_id: uuid.UUID) -> InventoryItem | None:
    """One inventory row, locked (``PATCH /inventory/{id}``, reorder point and safety stock)."""
    item = InventoryItem.objects.select_for_update().filter(id=item_id).first()
    if item is not None:
        acquired(Rank.INVENTORY_ITEM, [item.id])
    return item


def lock_stock_rows(product_ids: Iterable[uuid.UUID], *,
                    every_row_of: Iterable[uuid.UUID] = ()) -> list[InventoryItem]:
    """Every inventory row of ``product_ids`` at an active location with sellable units — and every
    active row of ``every_row_of`` (lines that may be backordered: a receipt elsewhere must wait for
    this transaction, so it sees the demand it leaves) — locked in primary-key order, with the
    location's ``priority`` and ``code`` (``location_priority``, ``location_code``). Written out
    (this runs on every reservation and order): only the columns allocation and the answer read.

    The scan is the database function of migration ``inventory 0005``; with ``every_row_of`` it
    first takes those products' shared PRODUCT_STOCK lock (as :func:`hold_product_stock`), in the
    same round trip, and runs the scan as a second query with a snapshot taken after the lock."""
    sellable_of, every = sorted(set(product_ids)), sorted(set(every_row_of))
    acquired(Rank.PRODUCT_STOCK, every)
    rows = list(InventoryItem.objects.raw(
        _LOCK_STOCK_ROWS_SQL, [sellable_of, every, [_stock_key(i) for i in every]]))
    acquired(Rank.INVENTORY_ITEM, [row.id for row in rows])
    return rows


def lock_product_rows(product_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """Every inventory row of the products, any location, in primary-key order (a writer of a
    product's backorder queue holds them first)."""
    ids = list(InventoryItem.objects.filter(product_id__in=set(product_ids)).values_list("id",
                                                                                         flat=True))
    return lock_items(ids)


def lock_waiting(product_id: uuid.UUID, *, after: tuple[Any, ...] | None,
                 limit: int) -> list[Backorder]:
    """The next ``limit`` waiting lines of a product's queue (oldest order first) after ``after``
    (``(queued_at, reference_id, id)`` of the last one served), locked."""
    query = Backorder.objects.filter(product_id=product_id, quantity_waiting__gt=0)
    if after is not None:
        queued_at, reference_id, backorder_id = after
        query = query.filter(Q(queued_at__gt=queued_at) | Q(queued_at=queued_at,
                                                            reference_id__gt=reference_id)
                             | Q(queued_at=queued_at, reference_id=reference_id,
                                 id__gt=backorder_id))
    rows = list(query.select_for_update().order_by("queued_at", "reference_id", "id")[:limit])
    acquired(Rank.BACKORDER, [product_id])
    return rows


def lock_backorders_of(*, reference_type: str, reference_id: Any) -> list[Backorder]:
    """Every demand line of a reference (an order), waiting or not, locked in queue order."""
    rows = list(Backorder.objects.select_for_update()
                .filter(reference_type=reference_type, reference_id=reference_id)
                .order_by("queued_at", "reference_id", "id"))
    acquired(Rank.BACKORDER, sorted({row.product_id for row in rows}))
    return rows


def item_locked_by_update(item_ids: Iterable[uuid.UUID]) -> None:
    """Report the row locks a counter ``UPDATE`` takes implicitly (``ledger.apply_changes``), so a
    change of a row that was not locked first is still checked against the global order."""
    acquired(Rank.INVENTORY_ITEM, sorted(item_ids))


def _reservations(query: QuerySet[Reservation], *, with_items: bool) -> list[Reservation]:
    if with_items:
        query = query.select_related("inventory_item")
    rows = list(query.select_for_update(of=("self",)).order_by("id"))
    acquired(Rank.RESERVATION, [r.id for r in rows])
    return rows


def lock_reservations(reservation_ids: Iterable[uuid.UUID], *,
                      with_items: bool = False) -> list[Reservation]:
    """Reservations by id, locked in primary-key order (any status)."""
    return _reservations(Reservation.objects.filter(id__in=set(reservation_ids)),
                         with_items=with_items)


def lock_active_reservations_of(*, reference_id: str,
                                reference_type: str | None = None) -> list[Reservation]:
    """The active reservations of a reference (an order), locked in primary-key order."""
    query = Reservation.objects.filter(reference_id=reference_id, status=Reservation.Status.ACTIVE)
    if reference_type:
        query = query.filter(reference_type=reference_type)
    return _reservations(query, with_items=True)


def lock_expired_reservations(*, now: datetime, limit: int) -> list[Reservation]:
    """Up to ``limit`` active reservations whose expiry has passed (earliest first), locked in
    primary-key order with ``SKIP LOCKED``: a reservation another transaction holds (being released
    or fulfilled) is left for the next run, so concurrent expiry workers never wait on each
    other."""
    due = (Reservation.objects.filter(status=Reservation.Status.ACTIVE, expires_at__lte=now)
           .order_by("expires_at", "id").values("id")[:limit])
    rows = list(Reservation.objects.select_for_update(skip_locked=True)
                .filter(id__in=due, status=Reservation.Status.ACTIVE,
                        expires_at__lte=now).order_by("id"))
    acquired(Rank.RESERVATION, [r.id for r in rows])
    return rows


def lock_location(location_id: Any) -> Location | None:
    location = Location.objects.select_for_update().filter(id=location_id).first()
    if location is not None:
        acquired(Rank.LOCATION, [location.id])
    return location
