"""Reconciliation: counters against reservations (nightly report; ``reconcile_inventory --fix``),
against the ledger, and waiting backorders against sellable stock.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Sum

from inventory import locks
from inventory.models import InventoryItem, Reservation, StockMovement
from inventory.services.backorders import allocate_backorders
from inventory.services.common import Kind
from inventory.services.ledger import _TABLE, Change, Counters, apply_changes


@dataclass
class Drift:
    inventory_item_id: uuid.UUID
    sku: str
    location_id: uuid.UUID
    on_hand: int
    reserved: int
    expected_reserved: int
    fixed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"inventory_item_id": str(self.inventory_item_id), "sku": self.sku,
                "location_id": str(self.location_id), "on_hand": self.on_hand,
                "reserved": self.reserved,
                "expected_reserved": self.expected_reserved, "fixed": self.fixed}

_DRIFT_SQL = f"""
SELECT i.id, i.sku, i.location_id, i.on_hand, i.reserved, COALESCE(r.held, 0)
FROM "{_TABLE}" i
LEFT JOIN (
    SELECT inventory_item_id, SUM(quantity - quantity_fulfilled) AS held
    FROM "{Reservation._meta.db_table}" WHERE status = 'active' GROUP BY inventory_item_id
) r ON r.inventory_item_id = i.id
WHERE i.reserved <> COALESCE(r.held, 0) {{extra}}
ORDER BY i.id
"""


def _drift(ids: Sequence[uuid.UUID] | None = None) -> list[Drift]:
    extra, params = ("AND i.id = ANY(%s)", [list(ids)]) if ids is not None else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(_DRIFT_SQL.format(extra=extra), params)
        return [Drift(*row) for row in cursor.fetchall()]


def inventory_reconcile(*, fix: bool = False, actor: str = "system:reconcile",
                        batch_size: int = 500,
                        progress: Callable[[int, int], None] | None = None) -> list[Drift]:
    """Compare each row's ``reserved`` with the sum of its active reservations and report every
    drift. With ``fix``, repair them in batches: rows locked in primary-key order, the drift
    re-measured under the lock, ``reserved`` set to the reservations' sum with an ``adjust``
    movement (reason ``reconcile``). A row whose reservations exceed its on_hand cannot be repaired
    this way (CHECK) and stays ``fixed=False``."""
    drifts = _drift()
    if not fix or not drifts:
        return drifts
    by_id = {d.inventory_item_id: d for d in drifts}
    ids = sorted(by_id)
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        with transaction.atomic():
            locks.lock_items(chunk)
            changes = []
            for current in _drift(chunk):
                if current.expected_reserved > current.on_hand:
                    continue
                changes.append(Change(current.inventory_item_id, 0,
                                      current.expected_reserved - current.reserved,
                                       Kind.ADJUST, "reconcile"))
            apply_changes(changes, actor=actor)
            for change in changes:
                by_id[change.item_id].fixed = True
        if progress:
            progress(min(start + batch_size, len(ids)), len(ids))
    return drifts


def inventory_ledger_drift() -> list[dict[str, Any]]:
    """Rows whose counters differ from the sum of their movements (a full pass over the ledger:
    for the nightly report and the ``reconcile_inventory --ledger`` command)."""
    sums = {
        row["inventory_item_id"]: row
        for row in StockMovement.objects.values("inventory_item_id").annotate(
            on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta"))
    }
    out = []
    for item_id, sku, on_hand, reserved in InventoryItem.objects.values_list("id", "sku", "on_hand",
                                                                             "reserved").iterator():
        ledger = sums.get(item_id, {"on_hand": 0, "reserved": 0})
        if (ledger["on_hand"], ledger["reserved"]) != (on_hand, reserved):
            out.append({"inventory_item_id": str(item_id), "sku": sku, "on_hand": on_hand,
                        "reserved": reserved,
                        "ledger_on_hand": ledger["on_hand"], "ledger_reserved": ledger["reserved"]})
    return out


_STRANDED_SQL = """
SELECT b.product_id, MIN(b.sku), SUM(b.quantity_waiting),
       (SELECT COALESCE(SUM(i.sellable), 0)::bigint FROM inventory_inventoryitem i
        JOIN inventory_location l ON l.id = i.location_id
        WHERE i.product_id = b.product_id AND l.is_active)
FROM inventory_backorder b
WHERE b.quantity_waiting > 0 AND EXISTS (
    SELECT 1 FROM inventory_inventoryitem i JOIN inventory_location l ON l.id = i.location_id
    WHERE i.product_id = b.product_id AND l.is_active AND i.sellable > 0 {at})
GROUP BY b.product_id
ORDER BY b.product_id
"""


@dataclass
class Stranded:
    """A product whose queue waits while its active rows hold sellable units (allocation missed
    them: stock that grew before this release's PRODUCT_STOCK lock, or a location re-activated)."""

    product_id: uuid.UUID
    sku: str
    waiting: int
    sellable: int
    allocated: int = 0


def backorders_stranded(*, fix: bool = False, actor: str = "system:reconcile",
                        location_id: uuid.UUID | None = None) -> list[Stranded]:
    """Every product with waiting backorders and sellable stock at an active location (with
    ``location_id``: at that one). With ``fix``, serve each one's queue from that stock as a
    receipt would (oldest order first, never more than is sellable: ``allocate_backorders``), one
    transaction per product: its rows locked in primary-key order, the numbers read again under the
    lock."""
    at, params = ("AND i.location_id = %s", [location_id]) if location_id else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(_STRANDED_SQL.format(at=at), params)
        found = [Stranded(*row) for row in cursor.fetchall()]
    if not fix:
        return found
    for stranded in found:
        with transaction.atomic():
            locks.lock_product_rows([stranded.product_id])
            rows = {item.id: Counters.of(item)
                    for item in InventoryItem.objects.filter(product_id=stranded.product_id,
                                                             location__is_active=True)}
            stranded.allocated = allocate_backorders(
                rows=rows, growth={item_id: row.sellable for item_id, row in rows.items()},
                actor=actor)
    return found
