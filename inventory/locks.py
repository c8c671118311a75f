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

from django.db.models import QuerySet

from inventory.models import InventoryItem, Location, Reservation
from stateset.locking import Rank, acquired

_SELLABLE_ROWS_SQL = """
SELECT i.id, i.product_id, i.location_id, i.sku, i.on_hand, i.reserved, i.available, i.version,
       l.priority AS location_priority, l.code AS location_code
FROM inventory_inventoryitem i JOIN inventory_location l ON l.id = i.location_id
WHERE i.product_id = ANY(%s) AND l.is_active AND i.available > 0
ORDER BY i.id
FOR UPDATE OF i
"""


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


def lock_stock_rows(product_ids: Iterable[uuid.UUID]) -> list[InventoryItem]:
    """Every inventory row of ``product_ids`` at an active location with available units, locked in
    primary-key order, with the location's ``priority`` and ``code`` (``location_priority``,
    ``location_code``): what a reservation may draw from. Written out (this runs on every
    reservation and order): only the columns allocation and the answer read."""
    rows = list(InventoryItem.objects.raw(_SELLABLE_ROWS_SQL, [sorted(set(product_ids))]))
    acquired(Rank.INVENTORY_ITEM, [row.id for row in rows])
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
