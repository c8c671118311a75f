"""The one primitive that changes stock counters, and the ledger row it writes with each change.

- **One ledger row per changed inventory row**, in the same transaction, bulk-inserted: summing a
  row's movements reproduces its ``on_hand`` and ``reserved``.
- **Counters change in SQL**, by one conditional ``UPDATE ... FROM (VALUES ...) WHERE <the CHECK
  constraints still hold> RETURNING`` (:func:`apply_changes`); never read-modify-write in Python. A
  row the guard rejects is not touched and the caller raises, rolling the whole change back.
- Cache invalidation after commit; through the outbox in the same transaction, in one INSERT:
  ``inventory.received`` (a ``receive`` or ``return`` movement), ``inventory.adjusted`` (an
  ``adjust``) per row changed, and ``inventory.low_stock`` for a row that fell to its reorder point.
  Reservations, releases, expiries, transfers and shipments publish their own events (one per
  change, naming its reservations), not one per row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from inventory import locks
from inventory.models import InventoryItem, StockMovement
from inventory.selectors import item_cache, item_cache_key
from inventory.services.common import (
    MAX_ACTOR,
    MAX_REASON,
    MAX_REFERENCE_ID,
    MAX_REFERENCE_TYPE,
    ProductRef,
)
from stateset.db import insert_rows
from stateset.inputs import clean_actor
from webhooks import services as webhooks


@dataclass
class Change:
    item_id: uuid.UUID
    on_hand_delta: int
    reserved_delta: int
    kind: str
    reason: str = ""
    reference_type: str = ""
    reference_id: str = ""


@dataclass(frozen=True)
class Counters:
    """An inventory row right after a change (from ``RETURNING``)."""

    id: uuid.UUID
    on_hand: int
    reserved: int
    reorder_point: int
    version: int
    sku: str
    product_id: uuid.UUID
    location_id: uuid.UUID
    safety_stock: int = 0

    @classmethod
    def of(cls, item: InventoryItem) -> Counters:
        """A row's counters as read (a row the caller holds locked)."""
        return cls(item.id, item.on_hand, item.reserved, item.reorder_point, item.version,
                   item.sku, item.product_id, item.location_id, item.safety_stock)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def sellable(self) -> int:
        return max(self.available - self.safety_stock, 0)


class Rejected(Exception):
    """Some rows were missing or their guard said no; the caller translates and rolls back."""

    def __init__(self, item_ids: set[uuid.UUID]):
        self.item_ids = item_ids
        super().__init__(f"rejected: {sorted(map(str, item_ids))}")

_TABLE = InventoryItem._meta.db_table

_UPDATE_SQL = f"""
UPDATE "{_TABLE}" AS i
SET on_hand = i.on_hand + v.dh, reserved = i.reserved + v.dr, version = i.version + 1,
    updated_at = %s
FROM (VALUES {{values}}) AS v (id, dh, dr, keep)
WHERE i.id = v.id
  AND i.on_hand + v.dh >= 0 AND i.reserved + v.dr >= 0 AND i.on_hand + v.dh >= i.reserved + v.dr
  AND (NOT v.keep OR i.on_hand + v.dh - i.reserved - v.dr >= i.safety_stock)
RETURNING i.id, i.on_hand, i.reserved, i.reorder_point, i.version, i.sku, i.product_id,
          i.location_id,
          i.safety_stock
"""


def apply_changes(changes: Sequence[Change], *, actor: str,
                  allocate: bool = True) -> dict[uuid.UUID, Counters]:
    """Change counters of several rows in one conditional UPDATE and write one movement per change.

    The guard repeats the table's CHECK constraints, so a change that would oversell or go negative
    leaves its row untouched; then :class:`Rejected` names the rows and the caller's transaction
    must roll back (it always runs inside ``atomic``). Changing more than one row requires the rows
    to be locked already in primary-key order (``inventory.locks.lock_items``); one row is locked by
    the UPDATE itself. Several changes of one row apply in the order given (one UPDATE per round:
    the k-th change of each row goes in round k), each with its own movement. Schedules cache
    invalidation and publishes, in one INSERT per round, the movement's event of each change
    (:data:`MOVEMENT_EVENTS`) and ``inventory.low_stock`` for rows whose ``available`` falls to or
    below the reorder point. Then (``allocate``) what became sellable goes to the backorder queue,
    once for the whole call. Returns each row's counters after its last change."""
    assert connection.in_atomic_block, "stock changes run inside a transaction"
    if not changes:
        return {}
    rounds: list[list[Change]] = []
    seen: dict[uuid.UUID, int] = {}
    for change in changes:
        k = seen.get(change.item_id, 0)
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(change)
        seen[change.item_id] = k + 1
    final: dict[uuid.UUID, Counters] = {}
    sellable_before: dict[uuid.UUID, int] = {}
    for round_changes in rounds:
        after = _apply_round(round_changes, actor)
        for change in round_changes:
            sellable_before.setdefault(change.item_id,
                                       _sellable_before(after[change.item_id], change))
        final.update(after)
    if allocate:
        grown = {item_id: growth for item_id, row in final.items()
                 if (growth := row.sellable - sellable_before[item_id]) > 0}
        if grown:
            # Waiting demand takes what became sellable, oldest order first, in this transaction.
            from inventory.services.backorders import (
                allocate_backorders,  # the queue builds on this module
            )

            allocate_backorders(rows={item_id: final[item_id] for item_id in grown}, growth=grown,
                                actor=actor)
    return final


def _apply_round(changes: Sequence[Change], actor: str) -> dict[uuid.UUID, Counters]:
    """One UPDATE of rows each changed once, their movements and events (see apply_changes)."""
    params: list[Any] = [timezone.now()]
    for change in changes:
        # A reservation stops at the safety stock; adjustments and shipments may use it (SPEC §4.3).
        params += [change.item_id, change.on_hand_delta, change.reserved_delta,
                   change.kind == StockMovement.Kind.RESERVE]
    values = ", ".join(["(%s::uuid, %s::bigint, %s::bigint, %s::boolean)"] * len(changes))
    # The rows' cache entries go before their locks are taken (a Redis round trip less while a hot
    # row is held): the tombstone keeps any reader from storing what it reads until after commit.
    item_cache.invalidate(*dict.fromkeys(item_cache_key(c.item_id) for c in changes))
    locks.item_locked_by_update(c.item_id for c in changes)
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE_SQL.format(values=values), params)
        rows = cursor.fetchall()
    after = {row[0]: Counters(*row) for row in rows}
    rejected = {c.item_id for c in changes} - set(after)
    if rejected:
        raise Rejected(rejected)
    # Taken after the row locks are held, so one row's movements sort by created_at in the order
    # they were made (UUIDv7 ids break ties within this process).
    now = timezone.now()
    actor = clean_actor(actor, MAX_ACTOR)
    insert_rows(
        [
            StockMovement(
                inventory_item_id=c.item_id, kind=c.kind, on_hand_delta=c.on_hand_delta,
                reserved_delta=c.reserved_delta, on_hand_after=after[c.item_id].on_hand,
                reserved_after=after[c.item_id].reserved, reason=c.reason[:MAX_REASON],
                reference_type=c.reference_type[:MAX_REFERENCE_TYPE],
                reference_id=c.reference_id[:MAX_REFERENCE_ID], actor=actor, created_at=now,
            )
            for c in changes
        ]
    )
    events = [(MOVEMENT_EVENTS[c.kind], stock_payload(after[c.item_id], c)) for c in changes
              if c.kind in MOVEMENT_EVENTS]
    for change in changes:
        row = after[change.item_id]
        before = row.available - (change.on_hand_delta - change.reserved_delta)
        if before > row.reorder_point >= row.available:
            events.append(("inventory.low_stock", low_stock_payload(row)))
    if events:
        webhooks.publish_many(events)
    return after


def _sellable_before(row: Counters, change: Change) -> int:
    on_hand = row.on_hand - change.on_hand_delta
    return max(on_hand - (row.reserved - change.reserved_delta) - row.safety_stock, 0)


def ensure_items(pairs: Iterable[tuple[ProductRef, uuid.UUID]]) -> None:
    """Create missing (product, location) rows with zero stock, under the products' exclusive
    PRODUCT_STOCK lock (``locks.hold_product_stock``): an order placed meanwhile either sees the new
    row or has queued its backorders before the row's first stock arrives to serve them.
    ``ON CONFLICT DO NOTHING`` makes a concurrent creation of the same row harmless. Takes no row
    lock on existing rows; callers run it before locking any row, and only when a row is missing
    (the lock waits for the products' orders in flight)."""
    rows = {(p.id, loc): InventoryItem(product_id=p.id, location_id=loc, sku=p.sku) for p,
            loc in pairs}
    if rows:
        locks.hold_product_stock({product_id for product_id, _ in rows}, shared=False)
        # Sorted: two transactions inserting overlapping rows wait on each other's unique-index
        # entries in the same order, so they cannot deadlock.
        InventoryItem.objects.bulk_create([rows[key] for key in sorted(rows)],
                                          ignore_conflicts=True)


def item_id_for(product_id: uuid.UUID, location_id: uuid.UUID) -> uuid.UUID | None:
    return (InventoryItem.objects.filter(product_id=product_id, location_id=location_id)
            .values_list("id", flat=True).first())


Pair = tuple[uuid.UUID, uuid.UUID]


def item_ids_for(pairs: Iterable[Pair]) -> dict[Pair, uuid.UUID]:
    """Ids of the existing rows for (product, location) pairs, in one query. It reads the rows of
    those products at those locations (the unique index answers) and keeps the pairs asked for,
    which plans far faster than one OR-branch per pair."""
    wanted = set(pairs)
    if not wanted:
        return {}
    rows = InventoryItem.objects.filter(product_id__in={p for p, _ in wanted},
                                        location_id__in={loc for _, loc in wanted})
    return {(p, loc): i for i, p,
            loc in rows.values_list("id", "product_id", "location_id") if (p, loc) in wanted}


def counters_of(item_id: uuid.UUID | None) -> dict[str, int]:
    row = None
    if item_id is not None:
        row = InventoryItem.objects.filter(id=item_id).values("on_hand", "reserved").first()
    on_hand, reserved = (row["on_hand"], row["reserved"]) if row else (0, 0)
    return {"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved}


def fetch_items(item_ids: Sequence[uuid.UUID]) -> list[InventoryItem]:
    items = {i.id: i
             for i in InventoryItem.objects.select_related("location").filter(id__in=item_ids)}
    return [items[i] for i in item_ids]


# --- events (SPEC §4.7) ---------------------------------------------------------------------------

# The movements that publish one event per row changed (the others belong to a reservation, a
# transfer or a shipment, whose services publish one event for the whole change).
MOVEMENT_EVENTS: dict[str, str] = {StockMovement.Kind.RECEIVE: "inventory.received",
                   StockMovement.Kind.RETURN: "inventory.received",
                   StockMovement.Kind.ADJUST: "inventory.adjusted"}


def level(row: Counters) -> dict[str, Any]:
    """How an ``inventory.*`` event names a row and its counters after the change."""
    return {"inventory_item_id": str(row.id), "product_id": str(row.product_id), "sku": row.sku,
            "location_id": str(row.location_id), "on_hand": row.on_hand, "reserved": row.reserved,
            "available": row.available}


def stock_payload(row: Counters, change: Change) -> dict[str, Any]:
    """``inventory.received`` / ``inventory.adjusted``: the row, its counters after, the movement
    (``receive``, ``return``, ``adjust``), ``quantity`` (the signed change of on_hand) and what the
    movement says of itself."""
    return {**level(row), "movement": change.kind, "quantity": change.on_hand_delta,
            "reason": change.reason[:MAX_REASON],
            "reference_type": change.reference_type[:MAX_REFERENCE_TYPE],
            "reference_id": change.reference_id[:MAX_REFERENCE_ID]}


def low_stock_payload(row: Counters) -> dict[str, Any]:
    return {**level(row), "reorder_point": row.reorder_point}


def publish_low_stock(row: Counters) -> None:
    webhooks.publish(event_type="inventory.low_stock", payload=low_stock_payload(row))
