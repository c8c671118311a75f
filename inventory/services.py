"""Every write to stock (SPEC §4.3). The only place inventory rows change.

Rules every function here keeps:

- **One ledger row per changed inventory row**, in the same transaction, bulk-inserted: summing a
  row's movements reproduces its ``on_hand`` and ``reserved``.
- **Counters change in SQL**, by one conditional ``UPDATE ... FROM (VALUES ...) WHERE <the CHECK
  constraints still hold> RETURNING`` (:func:`_apply`); never read-modify-write in Python. A row
  the guard rejects is not touched and the caller raises, rolling the whole change back.
- **Locks in one global order**: reservations (by primary key) before inventory items (by primary
  key). A change of several inventory rows locks them first with ``SELECT ... ORDER BY id FOR
  UPDATE``; a change of one row relies on the row lock its ``UPDATE`` takes. Inserting a
  reservation or a movement takes no lock another transaction could be waiting on. So concurrent
  calls never deadlock, provided a caller changes stock **once** per transaction (one
  ``stock_reserve`` with every line, one ``stock_release``, ``stock_fulfil_many`` for a shipment).
- **Side effects after commit**: cache invalidation through ``transaction.on_commit``; domain
  events through the outbox in the same transaction (``webhooks.services.publish``).

The functions the orders, fulfillment and returns apps call (``stock_reserve``, ``stock_release``,
``stock_fulfil``, ``stock_fulfil_many``, ``stock_return``, ``reservations_expire``) open a plain
``transaction.atomic()`` so they join the caller's ``atomic(durable=True)``; the ones only the API,
admin and commands call are durable themselves.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from catalog import selectors as catalog_selectors
from catalog.models import Product
from inventory.models import MAX_QUANTITY, InventoryItem, Location, Reservation, StockMovement
from stateset import metrics
from stateset.api.errors import (
    Conflict,
    InsufficientStock,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from stateset.cache import EntityCache
from stateset.db import insert_rows
from stateset.inputs import clean_actor, clean_text
from webhooks import services as webhooks

logger = logging.getLogger("inventory")
item_cache = EntityCache("inventory")

MAX_LINES = 1_000
"""Most lines one reservation, release, fulfilment or bulk adjustment may carry."""
MAX_REASON = 255
MAX_REFERENCE_TYPE = 32
MAX_REFERENCE_ID = 100
MAX_ACTOR = 100
LOCATION_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
DEMO_PRODUCT_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440002")

Kind = StockMovement.Kind
Status = Reservation.Status


def item_cache_key(item_id: uuid.UUID | str) -> str:
    return item_cache.key("item", item_id)


# ---------------------------------------------------------------------------------------------------
# Input checks shared by every service (the API validates first; services are the last word).


def _quantity(value: Any, name: str = "quantity", *, allow_zero: bool = False, signed: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{name} must be an integer.", details={name: ["A valid integer is required."]})
    low = -MAX_QUANTITY if signed else (0 if allow_zero else 1)
    if not low <= value <= MAX_QUANTITY or (signed and value == 0):
        rule = f"a non-zero integer between -{MAX_QUANTITY} and {MAX_QUANTITY}" if signed else \
            f"an integer between {low} and {MAX_QUANTITY}"
        raise ValidationFailed(f"{name} must be {rule}.", details={name: [f"Must be {rule}."]})
    return value


def _uuid(value: Any, name: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value)) if isinstance(value, str) else _bad_uuid(name)
    except ValueError:
        return _bad_uuid(name)


def _bad_uuid(name: str) -> uuid.UUID:
    raise ValidationFailed(f"{name} must be a UUID.", details={name: ["Must be a valid UUID."]})


# ---------------------------------------------------------------------------------------------------
# Products and locations


@dataclass(frozen=True)
class ProductRef:
    id: uuid.UUID
    sku: str
    is_active: bool


def _product_refs(refs: Sequence[tuple[uuid.UUID | None, str | None]]) -> list[ProductRef | None]:
    """Resolve ``(product_id, sku)`` pairs through the catalog's selectors (SKUs case-insensitively,
    on its ``UPPER(sku)`` index). ``product_id`` wins when both are given; a SKU that then does not
    match is a ValidationFailed(code="sku_mismatch"). Unknown products come back as None."""
    ids = {pid for pid, _ in refs if pid is not None}
    skus = {sku for pid, sku in refs if pid is None and sku}
    by_id: dict[uuid.UUID, ProductRef] = {}
    by_sku: dict[str, ProductRef] = {}
    products = [*catalog_selectors.products_by_ids(product_ids=ids).values(),
                *catalog_selectors.products_by_skus(skus=skus).values()]
    for product in products:
        ref = ProductRef(product.id, product.sku, product.is_active)
        by_id[product.id] = ref
        by_sku[product.sku.upper()] = ref
    out: list[ProductRef | None] = []
    for pid, sku in refs:
        ref = by_id.get(pid) if pid is not None else by_sku.get((sku or "").upper())
        if ref is not None and pid is not None and sku and sku.upper() != ref.sku.upper():
            raise ValidationFailed("sku does not match product_id.", code="sku_mismatch",
                                   details={"sku": [f"Product {pid} has SKU {ref.sku}."]})
        out.append(ref)
    return out


def _product(product_id: uuid.UUID | None, sku: str | None) -> ProductRef:
    if product_id is None and not sku:
        raise ValidationFailed("Give product_id or sku.", details={"product_id": ["Give product_id or sku."]})
    if product_id is not None:
        product_id = _uuid(product_id, "product_id")
    if sku is not None:
        sku = clean_text(sku, "sku", 64)
    ref = _product_refs([(product_id, sku)])[0]
    if ref is None:
        raise NotFound("No such product.", code="product_not_found",
                       details={"product_id": str(product_id)} if product_id else {"sku": sku})
    return ref


def _locations(ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Location]:
    wanted = set(ids)
    found = {loc.id: loc for loc in Location.objects.filter(id__in=wanted).only("id", "code", "is_active")}
    missing = sorted(str(i) for i in wanted - set(found))
    if missing:
        raise NotFound("No such location.", code="location_not_found", details={"location_ids": missing})
    return found


def _location(location_id: Any, name: str = "location_id", *, active: bool = False) -> Location:
    location_id = _uuid(location_id, name)
    location = _locations([location_id])[location_id]
    if active and not location.is_active:
        raise ValidationFailed("The location is not active.", code="location_inactive",
                               details={name: [f"Location {location.code} is not active."]})
    return location


# ---------------------------------------------------------------------------------------------------
# The one primitive that changes counters


@dataclass
class _Change:
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

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class _Rejected(Exception):
    """Some rows were missing or their guard said no; the caller translates and rolls back."""

    def __init__(self, item_ids: set[uuid.UUID]):
        self.item_ids = item_ids
        super().__init__(f"rejected: {sorted(map(str, item_ids))}")


_TABLE = InventoryItem._meta.db_table
_UPDATE_SQL = f"""
UPDATE "{_TABLE}" AS i
SET on_hand = i.on_hand + v.dh, reserved = i.reserved + v.dr, version = i.version + 1, updated_at = %s
FROM (VALUES {{values}}) AS v (id, dh, dr)
WHERE i.id = v.id
  AND i.on_hand + v.dh >= 0 AND i.reserved + v.dr >= 0 AND i.on_hand + v.dh >= i.reserved + v.dr
RETURNING i.id, i.on_hand, i.reserved, i.reorder_point, i.version, i.sku, i.product_id, i.location_id
"""


def _apply(changes: Sequence[_Change], *, actor: str) -> dict[uuid.UUID, Counters]:
    """Change counters of several rows in one conditional UPDATE and write one movement per row.

    The guard repeats the table's CHECK constraints, so a change that would oversell or go negative
    leaves its row untouched; then :class:`_Rejected` names the rows and the caller's transaction
    must roll back (it always runs inside ``atomic``). Changing more than one row requires the rows
    to be locked already in primary-key order (:func:`_lock_items`); one row is locked by the UPDATE
    itself. Schedules cache invalidation and publishes ``inventory.low_stock`` for rows whose
    ``available`` falls to or below the reorder point."""
    assert connection.in_atomic_block, "stock changes run inside a transaction"
    if not changes:
        return {}
    if len({c.item_id for c in changes}) != len(changes):
        raise AssertionError("one change per inventory row")
    params: list[Any] = [timezone.now()]
    for change in changes:
        params += [change.item_id, change.on_hand_delta, change.reserved_delta]
    values = ", ".join(["(%s::uuid, %s::bigint, %s::bigint)"] * len(changes))
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE_SQL.format(values=values), params)
        rows = cursor.fetchall()
    after = {row[0]: Counters(*row) for row in rows}
    rejected = {c.item_id for c in changes} - set(after)
    if rejected:
        raise _Rejected(rejected)
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
    for change in changes:
        row = after[change.item_id]
        before = row.available - (change.on_hand_delta - change.reserved_delta)
        if before > row.reorder_point >= row.available:
            _publish_low_stock(row)
    item_cache.invalidate(*(item_cache_key(item_id) for item_id in after))
    return after


def _lock_items(item_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """``SELECT ... ORDER BY id FOR UPDATE``: row locks in the global order. Returns the locked
    rows' ``(on_hand, reserved)``; rows that do not exist are absent."""
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    rows = (InventoryItem.objects.select_for_update().filter(id__in=ids).order_by("id")
            .values_list("id", "on_hand", "reserved"))
    return {item_id: (on_hand, reserved) for item_id, on_hand, reserved in rows}


def _ensure_items(pairs: Iterable[tuple[ProductRef, uuid.UUID]]) -> None:
    """Create missing (product, location) rows with zero stock. ``ON CONFLICT DO NOTHING`` makes a
    concurrent creation of the same row harmless. Takes no row lock on existing rows; callers run it
    before locking any row."""
    rows = {(p.id, loc): InventoryItem(product_id=p.id, location_id=loc, sku=p.sku) for p, loc in pairs}
    if rows:
        # Sorted: two transactions inserting overlapping rows wait on each other's unique-index entries
        # in the same order, so they cannot deadlock.
        InventoryItem.objects.bulk_create([rows[key] for key in sorted(rows)], ignore_conflicts=True)


def _item_id(product_id: uuid.UUID, location_id: uuid.UUID) -> uuid.UUID | None:
    return (InventoryItem.objects.filter(product_id=product_id, location_id=location_id)
            .values_list("id", flat=True).first())


def _counters(item_id: uuid.UUID | None) -> dict[str, int]:
    row = None
    if item_id is not None:
        row = InventoryItem.objects.filter(id=item_id).values("on_hand", "reserved").first()
    on_hand, reserved = (row["on_hand"], row["reserved"]) if row else (0, 0)
    return {"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved}


def _fetch(item_ids: Sequence[uuid.UUID]) -> list[InventoryItem]:
    items = {i.id: i for i in InventoryItem.objects.select_related("location").filter(id__in=item_ids)}
    return [items[i] for i in item_ids]


# ---------------------------------------------------------------------------------------------------
# Events (SPEC §4.7): written to the outbox in the same transaction as the change.


def _publish_low_stock(row: Counters) -> None:
    webhooks.publish(event_type="inventory.low_stock", payload={
        "inventory_item_id": str(row.id), "product_id": str(row.product_id), "sku": row.sku,
        "location_id": str(row.location_id), "on_hand": row.on_hand, "reserved": row.reserved,
        "available": row.available, "reorder_point": row.reorder_point,
    })


# ---------------------------------------------------------------------------------------------------
# Locations


def _address(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed("address must be an object.", details={"address": ["Must be a JSON object."]})

    def check(node: Any, depth: int) -> None:
        if depth > 4:
            raise ValidationFailed("address is nested too deeply.", details={"address": ["Too deeply nested."]})
        if isinstance(node, str) and ("\x00" in node or len(node) > 500):
            raise ValidationFailed("address has an invalid string.",
                                   details={"address": ["Strings must be at most 500 characters, without null characters."]})
        if isinstance(node, dict):
            if len(node) > 50:
                raise ValidationFailed("address has too many fields.", details={"address": ["At most 50 fields."]})
            for key, item in node.items():
                check(key, depth + 1)
                check(item, depth + 1)
        elif isinstance(node, list):
            if len(node) > 50:
                raise ValidationFailed("address has too many items.", details={"address": ["At most 50 items."]})
            for item in node:
                check(item, depth + 1)

    check(value, 0)
    return value


def _priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -1_000_000 <= value <= 1_000_000:
        raise ValidationFailed("priority must be an integer between -1000000 and 1000000.",
                               details={"priority": ["Must be an integer between -1000000 and 1000000."]})
    return value


def location_create(*, code: str, name: str, priority: int = 100, address: dict[str, Any] | None = None,
                    is_active: bool = True) -> Location:
    """Create a location. Raises ValidationFailed for a malformed code/name/priority/address and
    Conflict(code="location_exists") when the code is taken (case-insensitively)."""
    code = clean_text(code, "code", 32, required=True)
    if not LOCATION_CODE_RE.match(code):
        raise ValidationFailed("Invalid location code.", details={
            "code": ["Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 32."]})
    name = clean_text(name, "name", 200, required=True)
    priority = _priority(priority)
    address = _address(address)
    try:
        with transaction.atomic():
            return Location.objects.create(code=code, name=name, priority=priority, address=address,
                                           is_active=bool(is_active))
    except IntegrityError:
        raise Conflict(f"A location with code {code} exists.", code="location_exists",
                       details={"code": code}) from None


def location_update(*, location_id: uuid.UUID, expected_version: int | None = None,
                    **changes: Any) -> Location:
    """Change ``name``, ``priority``, ``address`` or ``is_active``; bumps ``version``. Locks the
    location row. Raises NotFound, PreconditionFailed (412) on a stale ``expected_version``,
    ValidationFailed for an unknown field or bad value."""
    allowed = {"name", "priority", "address", "is_active"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationFailed("Unknown field.", details={k: ["Unknown field."] for k in unknown})
    clean: dict[str, Any] = {}
    if "name" in changes:
        clean["name"] = clean_text(changes["name"], "name", 200, required=True)
    if "priority" in changes:
        clean["priority"] = _priority(changes["priority"])
    if "address" in changes:
        clean["address"] = _address(changes["address"])
    if "is_active" in changes:
        if not isinstance(changes["is_active"], bool):
            raise ValidationFailed("is_active must be a boolean.", details={"is_active": ["Must be a boolean."]})
        clean["is_active"] = changes["is_active"]
    with transaction.atomic():
        location = Location.objects.select_for_update().filter(id=location_id).first()
        if location is None:
            raise NotFound("No such location.", code="location_not_found")
        if expected_version is not None and location.version != expected_version:
            raise PreconditionFailed(details={"current_version": location.version})
        for key, value in clean.items():
            setattr(location, key, value)
        location.version += 1
        location.save(update_fields=[*clean, "version", "updated_at"])
    return location


# ---------------------------------------------------------------------------------------------------
# Inventory rows


def inventory_item_create(*, location_id: uuid.UUID, on_hand: int = 0, product_id: uuid.UUID | None = None,
                          sku: str | None = None, reorder_point: int = 0, safety_stock: int = 0,
                          reason: str = "", actor: str = "") -> InventoryItem:
    """Create the row for (product, location) with an opening count; a non-zero count writes a
    ``receive`` movement. Raises NotFound (product, location), ValidationFailed,
    Conflict(code="inventory_exists") when the row exists (its id in ``details``)."""
    on_hand = _quantity(on_hand, "on_hand", allow_zero=True)
    reorder_point = _quantity(reorder_point, "reorder_point", allow_zero=True)
    safety_stock = _quantity(safety_stock, "safety_stock", allow_zero=True)
    reason = clean_text(reason, "reason", MAX_REASON) or "opening stock"
    product = _product(product_id, sku)
    location = _location(location_id)
    # Not durable: the admin's add view runs it inside its own transaction.
    with transaction.atomic():
        try:
            with transaction.atomic():
                item = InventoryItem.objects.create(product_id=product.id, location_id=location.id, sku=product.sku,
                                                    on_hand=on_hand, reorder_point=reorder_point,
                                                    safety_stock=safety_stock)
        except IntegrityError:
            existing = _item_id(product.id, location.id)
            raise Conflict("This product already has an inventory row at this location.",
                           code="inventory_exists", details={"id": str(existing) if existing else None}) from None
        if on_hand:
            StockMovement.objects.create(inventory_item_id=item.id, kind=Kind.RECEIVE, on_hand_delta=on_hand,
                                         on_hand_after=on_hand, reserved_after=0, reason=reason,
                                         actor=clean_actor(actor, MAX_ACTOR))
    return _fetch([item.id])[0]


def inventory_item_update(*, item_id: uuid.UUID, expected_version: int | None = None,
                          reorder_point: int | None = None, safety_stock: int | None = None) -> InventoryItem:
    """Set the reorder point and/or safety stock; bumps ``version``. Locks the row. Publishes
    ``inventory.low_stock`` when the new reorder point puts the row at or below it. Raises NotFound,
    PreconditionFailed (412), ValidationFailed."""
    fields: dict[str, int] = {}
    if reorder_point is not None:
        fields["reorder_point"] = _quantity(reorder_point, "reorder_point", allow_zero=True)
    if safety_stock is not None:
        fields["safety_stock"] = _quantity(safety_stock, "safety_stock", allow_zero=True)
    if not fields:
        raise ValidationFailed("Nothing to change.", details={"non_field_errors": ["Give reorder_point or safety_stock."]})
    with transaction.atomic():
        item = InventoryItem.objects.select_for_update().filter(id=item_id).first()
        if item is None:
            raise NotFound("No such inventory row.", code="inventory_not_found")
        if expected_version is not None and item.version != expected_version:
            raise PreconditionFailed(details={"current_version": item.version})
        was_low = item.available <= item.reorder_point
        for key, value in fields.items():
            setattr(item, key, value)
        item.version += 1
        item.save(update_fields=[*fields, "version", "updated_at"])
        if not was_low and item.available <= item.reorder_point:
            _publish_low_stock(Counters(item.id, item.on_hand, item.reserved, item.reorder_point, item.version,
                                        item.sku, item.product_id, item.location_id))
        item_cache.invalidate(item_cache_key(item.id))
    return _fetch([item.id])[0]


def inventory_sync_sku(*, product_id: uuid.UUID, sku: str) -> int:
    """Keep the denormalised ``sku`` in step when the catalog changes a product's SKU (call it in
    the same transaction). Returns the number of rows changed."""
    with transaction.atomic():
        ids = list(InventoryItem.objects.filter(product_id=product_id).exclude(sku=sku).values_list("id", flat=True))
        changed = InventoryItem.objects.filter(id__in=ids).update(sku=sku, updated_at=timezone.now())
        if ids:
            item_cache.invalidate(*(item_cache_key(i) for i in ids))
    return changed


# ---------------------------------------------------------------------------------------------------
# Receive, adjust, transfer, return


@dataclass(frozen=True)
class StockLine:
    """One (product, location, quantity) for the batch services."""

    location_id: uuid.UUID
    quantity: int
    product_id: uuid.UUID | None = None
    sku: str | None = None


def _increase(*, lines: Sequence[StockLine], kind: str, reason: str, reference_type: str, reference_id: str,
              actor: str) -> list[InventoryItem]:
    """on_hand += quantity for each line (rows created when missing), one movement per row."""
    if not lines or len(lines) > MAX_LINES:
        raise ValidationFailed(f"Give 1 to {MAX_LINES} lines.", details={"lines": [f"Give 1 to {MAX_LINES} lines."]})
    reason = clean_text(reason, "reason", MAX_REASON)
    reference_type = clean_text(reference_type, "reference_type", MAX_REFERENCE_TYPE)
    reference_id = clean_text(reference_id, "reference_id", MAX_REFERENCE_ID)
    quantities = [_quantity(line.quantity) for line in lines]
    location_ids = [_uuid(line.location_id, "location_id") for line in lines]
    for line in lines:
        if line.product_id is None and not line.sku:
            raise ValidationFailed("Give product_id or sku.", details={"product_id": ["Give product_id or sku."]})
    refs = _product_refs([(_uuid(line.product_id, "product_id") if line.product_id is not None else None,
                           clean_text(line.sku, "sku", 64) or None) for line in lines])
    if None in refs:
        missing = [{"index": i, "product_id": str(line.product_id) if line.product_id else None, "sku": line.sku}
                   for i, (line, ref) in enumerate(zip(lines, refs, strict=True)) if ref is None]
        raise NotFound("No such product.", code="product_not_found", details={"lines": missing})
    products: list[ProductRef] = [ref for ref in refs if ref is not None]
    _locations(location_ids)
    keys = [(product.id, location_id) for product, location_id in zip(products, location_ids, strict=True)]
    totals: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
    for key, quantity in zip(keys, quantities, strict=True):
        totals[key] += quantity

    with transaction.atomic():
        ids = _item_ids(keys)
        if len(ids) < len(totals):
            _ensure_items(zip(products, location_ids, strict=True))
            ids = _item_ids(keys)
        if len(totals) > 1:
            _lock_items(ids.values())
        try:
            _apply([_Change(ids[key], total, 0, kind, reason, reference_type, reference_id)
                    for key, total in totals.items()], actor=actor)
        except _Rejected:  # only an on_hand overflow past the CHECKs could get here
            raise ValidationFailed("The quantity is too large for this row.", code="quantity_too_large") from None
        return _fetch([ids[key] for key in keys])


def _item_ids(pairs: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID]:
    """Ids of the existing rows for (product, location) pairs, in one query. It reads the rows of
    those products at those locations (the unique index answers) and keeps the pairs asked for,
    which plans far faster than one OR-branch per pair."""
    wanted = set(pairs)
    if not wanted:
        return {}
    rows = InventoryItem.objects.filter(product_id__in={p for p, _ in wanted},
                                        location_id__in={loc for _, loc in wanted})
    return {(p, loc): i for i, p, loc in rows.values_list("id", "product_id", "location_id") if (p, loc) in wanted}


def stock_receive(*, location_id: uuid.UUID, quantity: int, product_id: uuid.UUID | None = None,
                  sku: str | None = None, reason: str = "", reference_type: str = "", reference_id: str = "",
                  actor: str = "") -> InventoryItem:
    """Goods in: ``on_hand += quantity`` (the row is created when missing), ledger ``receive``.

    Durable transaction; the row is locked by its UPDATE. Invalidates the row's cache after commit.
    Raises ValidationFailed (quantity not an integer in 1..1,000,000, over-long text), NotFound
    (product, location)."""
    with transaction.atomic(durable=True):
        return _increase(lines=[StockLine(location_id=location_id, quantity=quantity, product_id=product_id, sku=sku)],
                         kind=Kind.RECEIVE, reason=reason, reference_type=reference_type,
                         reference_id=reference_id, actor=actor)[0]


def stock_receive_many(*, lines: Sequence[StockLine], reason: str = "", reference_type: str = "",
                       reference_id: str = "", actor: str = "") -> list[InventoryItem]:
    """:func:`stock_receive` for several lines in one durable transaction (a delivery, the admin's
    "receive stock" action): rows locked in primary-key order, one ``receive`` movement per row
    (lines of the same row are summed). Returns the rows in line order."""
    with transaction.atomic(durable=True):
        return _increase(lines=lines, kind=Kind.RECEIVE, reason=reason, reference_type=reference_type,
                         reference_id=reference_id, actor=actor)


def stock_return(*, product_id: uuid.UUID, location_id: uuid.UUID, quantity: int, actor: str = "",
                 reason: str = "", reference_type: str = "", reference_id: str = "") -> InventoryItem:
    """Returned units back on hand: ``on_hand += quantity`` (row created when missing), ledger
    ``return``. Joins the caller's transaction. Raises ValidationFailed, NotFound. To put several
    lines back at once use :func:`stock_return_many` (one lock pass, no deadlock)."""
    return stock_return_many(lines=[StockLine(location_id=location_id, quantity=quantity, product_id=product_id)],
                             actor=actor, reason=reason, reference_type=reference_type,
                             reference_id=reference_id)[0]


def stock_return_many(*, lines: Sequence[StockLine], actor: str = "", reason: str = "", reference_type: str = "",
                      reference_id: str = "") -> list[InventoryItem]:
    """:func:`stock_return` for several lines: rows locked in primary-key order, one movement per
    row (lines of the same row are summed). Returns the rows in line order."""
    return _increase(lines=lines, kind=Kind.RETURN, reason=reason, reference_type=reference_type,
                     reference_id=reference_id, actor=actor)


def stock_adjust(*, location_id: uuid.UUID, delta: int, reason: str, product_id: uuid.UUID | None = None,
                 sku: str | None = None, reference_type: str = "", reference_id: str = "",
                 actor: str = "") -> InventoryItem:
    """Correct a count: ``on_hand += delta`` (signed, non-zero), ledger ``adjust``; ``reason`` is
    required. A positive delta creates a missing row.

    Durable transaction; the row is locked by its conditional UPDATE. Raises
    InsufficientStock (409) when on_hand would fall below what is reserved (details: on_hand,
    reserved, available, delta), ValidationFailed, NotFound (product, location)."""
    delta = _quantity(delta, "delta", signed=True)
    reason = clean_text(reason, "reason", MAX_REASON, required=True)
    reference_type = clean_text(reference_type, "reference_type", MAX_REFERENCE_TYPE)
    reference_id = clean_text(reference_id, "reference_id", MAX_REFERENCE_ID)
    product = _product(product_id, sku)
    location = _location(location_id)
    with transaction.atomic(durable=True):
        if delta > 0:
            _ensure_items([(product, location.id)])
        item_id = _item_id(product.id, location.id)
        try:
            if item_id is None:
                raise _Rejected(set())
            _apply([_Change(item_id, delta, 0, Kind.ADJUST, reason, reference_type, reference_id)], actor=actor)
        except _Rejected:
            counters = _counters(item_id)
            raise InsufficientStock(
                f"Adjusting by {delta} would leave on_hand below what is reserved.",
                details={**counters, "delta": delta, "sku": product.sku, "location_id": str(location.id)},
            ) from None
        return _fetch([item_id])[0]


def stock_transfer(*, from_location_id: uuid.UUID, to_location_id: uuid.UUID, quantity: int,
                   product_id: uuid.UUID | None = None, sku: str | None = None, reason: str = "",
                   reference_id: str = "", actor: str = "") -> tuple[InventoryItem, InventoryItem]:
    """Move available units between locations in one transaction: ``transfer_out`` on the source,
    ``transfer_in`` on the destination (created when missing); both movements carry
    ``reference_type="transfer"`` and one ``reference_id`` (generated when not given).

    Durable transaction; locks both rows in primary-key order. Reserved units do not move. Raises
    InsufficientStock (409) when the source has fewer available units, ValidationFailed (same
    location, inactive destination, bad quantity), NotFound (product, location)."""
    quantity = _quantity(quantity)
    reason = clean_text(reason, "reason", MAX_REASON)
    reference_id = clean_text(reference_id, "reference_id", MAX_REFERENCE_ID) or str(uuid.uuid4())
    product = _product(product_id, sku)
    source = _location(from_location_id, "from_location_id")
    target = _location(to_location_id, "to_location_id", active=True)
    if source.id == target.id:
        raise ValidationFailed("Source and destination are the same location.", code="same_location",
                               details={"to_location_id": ["Must differ from from_location_id."]})
    with transaction.atomic(durable=True):
        _ensure_items([(product, target.id)])
        source_id = _item_id(product.id, source.id)
        target_id = _item_id(product.id, target.id)
        assert target_id is not None
        locked = _lock_items([i for i in (source_id, target_id) if i is not None])
        on_hand, reserved = locked.get(source_id, (0, 0)) if source_id else (0, 0)
        if source_id is None or on_hand - reserved < quantity:
            raise InsufficientStock(
                "Not enough available stock at the source location.",
                details={"lines": [{"index": 0, "sku": product.sku, "product_id": str(product.id),
                                    "location_id": str(source.id), "requested": quantity,
                                    "available": on_hand - reserved}]},
            )
        _apply([
            _Change(source_id, -quantity, 0, Kind.TRANSFER_OUT, reason, "transfer", reference_id),
            _Change(target_id, quantity, 0, Kind.TRANSFER_IN, reason, "transfer", reference_id),
        ], actor=actor)
        source_item, target_item = _fetch([source_id, target_id])
    return source_item, target_item


# ---------------------------------------------------------------------------------------------------
# Bulk adjust


@dataclass
class BulkAdjustResult:
    results: list[dict[str, Any]]
    applied: int
    dry_run: bool

    @property
    def valid(self) -> int:
        return sum(1 for r in self.results if r["ok"])

    def as_dict(self) -> dict[str, Any]:
        return {"results": self.results, "applied": self.applied, "valid": self.valid, "dry_run": self.dry_run}


@dataclass
class _BulkRow:
    index: int
    product_id: uuid.UUID | None
    sku: str | None
    location_id: uuid.UUID
    delta: int
    reason: str
    product: ProductRef | None = None
    error: dict[str, Any] | None = field(default=None)


_BULK_FIELDS = {"product_id", "sku", "location_id", "delta", "reason"}


def _bulk_row(index: int, raw: Any) -> _BulkRow | dict[str, Any]:
    """Validate one row's shape; an error dict when it is malformed."""
    if not isinstance(raw, Mapping):
        return _row_error("validation_error", "Each adjustment must be an object.")
    unknown = sorted(set(raw) - _BULK_FIELDS)
    if unknown:
        return _row_error("validation_error", "Unknown field.", {k: ["Unknown field."] for k in unknown})
    try:
        product_id = _uuid(raw["product_id"], "product_id") if raw.get("product_id") is not None else None
        sku = clean_text(raw.get("sku"), "sku", 64) or None
        if product_id is None and sku is None:
            raise ValidationFailed("Give product_id or sku.", details={"product_id": ["Give product_id or sku."]})
        if raw.get("location_id") is None:
            raise ValidationFailed("location_id is required.", details={"location_id": ["This field is required."]})
        location_id = _uuid(raw["location_id"], "location_id")
        if raw.get("delta") is None:
            raise ValidationFailed("delta is required.", details={"delta": ["This field is required."]})
        delta = _quantity(raw["delta"], "delta", signed=True)
        reason = clean_text(raw.get("reason"), "reason", MAX_REASON, required=True)
    except ValidationFailed as exc:
        return _row_error(exc.code, exc.message, exc.details)
    return _BulkRow(index, product_id, sku, location_id, delta, reason)


def _row_error(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return error


def stock_bulk_adjust(*, adjustments: Sequence[Any], dry_run: bool = False, actor: str = "") -> BulkAdjustResult:
    """Apply up to 1,000 adjustments ``{"product_id" | "sku", "location_id", "delta", "reason"}``.

    Each row is checked on its own (shape, product, location, a second row for the same product and
    location, on_hand falling below reserved) and answered ``{"index", "ok", "error"?}``; every valid
    row is applied in one durable transaction with one ``adjust`` movement per row. Rows are locked
    in primary-key order. ``dry_run`` checks against current numbers and writes nothing. Raises
    ValidationFailed only when the list itself is empty or too long."""
    if not isinstance(adjustments, Sequence) or isinstance(adjustments, (str, bytes)) \
            or not 1 <= len(adjustments) <= MAX_LINES:
        raise ValidationFailed(f"Give 1 to {MAX_LINES} adjustments.",
                               details={"adjustments": [f"Give 1 to {MAX_LINES} adjustments."]})
    errors: dict[int, dict[str, Any]] = {}
    rows: list[_BulkRow] = []
    for index, raw in enumerate(adjustments):
        parsed = _bulk_row(index, raw)
        if isinstance(parsed, dict):
            errors[index] = parsed
        else:
            rows.append(parsed)

    refs: list[ProductRef | None] = []
    if rows:
        try:
            refs = _product_refs([(r.product_id, r.sku) for r in rows])
        except ValidationFailed:  # a sku/product_id mismatch: resolve row by row to blame the right one
            refs = []
            for r in rows:
                try:
                    refs.append(_product_refs([(r.product_id, r.sku)])[0])
                except ValidationFailed as exc:
                    errors[r.index] = _row_error(exc.code, exc.message, exc.details)
                    refs.append(None)
    known_locations = set(Location.objects.filter(id__in={r.location_id for r in rows}).values_list("id", flat=True))
    seen: set[tuple[uuid.UUID, uuid.UUID]] = set()
    candidates: list[_BulkRow] = []
    for row, ref in zip(rows, refs, strict=True):
        if row.index in errors:
            continue
        if ref is None:
            errors[row.index] = _row_error("product_not_found", "No such product.")
        elif row.location_id not in known_locations:
            errors[row.index] = _row_error("location_not_found", "No such location.")
        elif (ref.id, row.location_id) in seen:
            errors[row.index] = _row_error("duplicate_row", "Another adjustment in this request has the same "
                                                            "product and location; combine them.")
        else:
            row.product = ref
            seen.add((ref.id, row.location_id))
            candidates.append(row)

    applied = 0
    with transaction.atomic(durable=not dry_run):
        pairs = [(r.product.id, r.location_id) for r in candidates]  # type: ignore[union-attr]
        items = _item_ids(pairs)
        missing = [(r.product, r.location_id) for r in candidates
                   if r.delta > 0 and (r.product.id, r.location_id) not in items]  # type: ignore[union-attr]
        if missing and not dry_run:  # a positive adjustment creates its row
            _ensure_items(missing)  # type: ignore[arg-type]
            items = _item_ids(pairs)
        counters = _lock_items(items.values()) if not dry_run else dict(
            (i, (h, r)) for i, h, r in InventoryItem.objects.filter(id__in=items.values())
            .values_list("id", "on_hand", "reserved"))
        changes: list[_Change] = []
        for row in candidates:
            item_id = items.get((row.product.id, row.location_id))  # type: ignore[union-attr]
            on_hand, reserved = counters.get(item_id, (0, 0)) if item_id else (0, 0)
            if on_hand + row.delta < reserved:
                errors[row.index] = _row_error(
                    "insufficient_stock", "on_hand would fall below what is reserved.",
                    {"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved, "delta": row.delta})
                continue
            if item_id is not None:
                changes.append(_Change(item_id, row.delta, 0, Kind.ADJUST, row.reason))
            else:  # a positive delta in a dry run on a row that does not exist yet
                assert dry_run
        if not dry_run and changes:
            _apply(changes, actor=actor)
            applied = len(changes)
    results = [
        {"index": i, "ok": False, "error": errors[i]} if i in errors else {"index": i, "ok": True}
        for i in range(len(adjustments))
    ]
    return BulkAdjustResult(results=results, applied=applied, dry_run=dry_run)


# ---------------------------------------------------------------------------------------------------
# Reservations: the contract the orders app calls


@dataclass(frozen=True)
class ReserveLine:
    quantity: int
    product_id: uuid.UUID | None = None
    sku: str | None = None
    location_id: uuid.UUID | None = None


def stock_reserve(*, lines: list[ReserveLine], reference_type: str, reference_id: str,
                  expires_at: datetime | None = None, actor: str = "") -> list[Reservation]:
    """Reserve every line or none (all or nothing).

    A line with ``location_id`` reserves at that location; without one, active locations are used
    by ``priority`` (then code), splitting the line across locations when the first is short. Lines
    of the same product share what is available (lines with a location are served first).

    Locks: every inventory row of the lines' products at active locations with stock, in one
    ``SELECT ... ORDER BY id FOR UPDATE`` (so opposite line orders cannot deadlock), then one
    conditional UPDATE, one INSERT of reservations and one of movements (``reserve``, one per row).
    Joins the caller's transaction; after commit the rows' cache entries are dropped. Publishes
    ``inventory.reserved`` (and ``inventory.low_stock`` for rows crossing their reorder point).

    Returns the reservations in line order; each carries ``line_index`` (the line it serves) and
    its ``inventory_item`` (already loaded).

    Raises InsufficientStock (409) with ``details={"lines": [{"index", "sku", "product_id",
    "requested", "available"}]}`` naming every short line; NotFound (code ``product_not_found`` /
    ``location_not_found``, details ``lines``/``location_ids``); ValidationFailed (bad quantity,
    inactive product or location, missing reference, expiry in the past)."""
    try:
        reservations = _reserve(lines=lines, reference_type=reference_type, reference_id=reference_id,
                                expires_at=expires_at, actor=actor)
    except InsufficientStock:
        metrics.RESERVATIONS.labels("insufficient_stock").inc()
        raise
    except (ValidationFailed, NotFound):
        metrics.RESERVATIONS.labels("rejected").inc()
        raise
    metrics.RESERVATIONS.labels("reserved").inc()
    return reservations


@dataclass
class _Line:
    index: int
    quantity: int
    product: ProductRef
    location_id: uuid.UUID | None


def _reserve(*, lines: Sequence[ReserveLine], reference_type: str, reference_id: str,
             expires_at: datetime | None, actor: str) -> list[Reservation]:
    if not isinstance(lines, Sequence) or not 1 <= len(lines) <= MAX_LINES:
        raise ValidationFailed(f"Give 1 to {MAX_LINES} lines.", details={"lines": [f"Give 1 to {MAX_LINES} lines."]})
    reference_type = clean_text(reference_type, "reference_type", MAX_REFERENCE_TYPE, required=True)
    reference_id = clean_text(reference_id, "reference_id", MAX_REFERENCE_ID, required=True)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("expires_at is in the past.", details={"expires_at": ["Must be in the future."]})
    bad: dict[str, Any] = {}
    for index, line in enumerate(lines):
        try:
            _quantity(line.quantity)
            if line.product_id is None and not line.sku:
                raise ValidationFailed(details={"product_id": ["Give product_id or sku."]})
            if line.product_id is not None:
                _uuid(line.product_id, "product_id")
            if line.sku is not None:
                clean_text(line.sku, "sku", 64)
            if line.location_id is not None:
                _uuid(line.location_id, "location_id")
        except ValidationFailed as exc:
            bad[str(index)] = exc.details
    if bad:
        raise ValidationFailed("Invalid reservation lines.", details={"lines": bad})
    refs = _product_refs([(_uuid(ln.product_id, "product_id") if ln.product_id is not None else None, ln.sku)
                          for ln in lines])
    unknown = [{"index": i, "product_id": str(ln.product_id) if ln.product_id else None, "sku": ln.sku}
               for i, (ln, ref) in enumerate(zip(lines, refs, strict=True)) if ref is None]
    if unknown:
        raise NotFound("No such product.", code="product_not_found", details={"lines": unknown})
    inactive = [{"index": i, "sku": ref.sku} for i, ref in enumerate(refs) if ref is not None and not ref.is_active]
    if inactive:
        raise ValidationFailed("Inactive products cannot be reserved.", code="product_inactive",
                               details={"lines": inactive})
    explicit = {_uuid(ln.location_id, "location_id") for ln in lines if ln.location_id is not None}
    if explicit:
        locations = _locations(explicit)
        closed = sorted(loc.code for loc in locations.values() if not loc.is_active)
        if closed:
            raise ValidationFailed("Inactive locations cannot be reserved from.", code="location_inactive",
                                   details={"locations": closed})
    parsed = [
        _Line(i, ln.quantity, ref, _uuid(ln.location_id, "location_id") if ln.location_id is not None else None)
        for i, (ln, ref) in enumerate(zip(lines, refs, strict=True)) if ref is not None
    ]

    with transaction.atomic():
        # Written out (this runs on every reservation and order): only the columns allocation and
        # the answer read, the location's priority and code alongside.
        rows = list(InventoryItem.objects.raw(
            """
            SELECT i.id, i.product_id, i.location_id, i.sku, i.on_hand, i.reserved, i.available, i.version,
                   l.priority AS location_priority, l.code AS location_code
            FROM inventory_inventoryitem i JOIN inventory_location l ON l.id = i.location_id
            WHERE i.product_id = ANY(%s) AND l.is_active AND i.available > 0
            ORDER BY i.id
            FOR UPDATE OF i
            """,
            [list({line.product.id for line in parsed})],
        ))
        remaining = {row.id: row.available for row in rows}
        candidates: dict[uuid.UUID, list[InventoryItem]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: (r.location_priority, r.location_code, r.id)):
            candidates[row.product_id].append(row)
        allocations: list[tuple[int, InventoryItem, int]] = []
        short: list[dict[str, Any]] = []
        # Lines pinned to a location go first, so a line free to go anywhere does not take their stock.
        for line in sorted(parsed, key=lambda ln: (ln.location_id is None, ln.index)):
            pool = [r for r in candidates[line.product.id]
                    if line.location_id is None or r.location_id == line.location_id]
            available = sum(remaining[r.id] for r in pool)
            if available < line.quantity:
                entry = {"index": line.index, "sku": line.product.sku, "product_id": str(line.product.id),
                         "requested": line.quantity, "available": available}
                if line.location_id is not None:
                    entry["location_id"] = str(line.location_id)
                short.append(entry)
                continue
            need = line.quantity
            for row in pool:
                take = min(need, remaining[row.id])
                if take <= 0:
                    continue
                remaining[row.id] -= take
                allocations.append((line.index, row, take))
                need -= take
                if need == 0:
                    break
        if short:
            short.sort(key=lambda e: e["index"])
            raise InsufficientStock(
                f"Not enough stock for {len(short)} of {len(lines)} line(s).", details={"lines": short}
            )
        per_row: dict[uuid.UUID, int] = defaultdict(int)
        for _, row, take in allocations:
            per_row[row.id] += take
        try:
            after = _apply([_Change(item_id, 0, qty, Kind.RESERVE, "", reference_type, reference_id)
                            for item_id, qty in per_row.items()], actor=actor)
        except _Rejected:  # cannot happen under the row locks; the guard is the last line of defence
            logger.error("reservation guard rejected locked rows", extra={"reference_id": reference_id})
            raise InsufficientStock("Stock changed while reserving; retry.") from None
        for row in {r.id: r for _, r, _ in allocations}.values():
            row.on_hand, row.reserved = after[row.id].on_hand, after[row.id].reserved
            row.available, row.version = row.on_hand - row.reserved, after[row.id].version
        allocations.sort(key=lambda a: a[0])
        reservations = [
            Reservation(inventory_item=row, quantity=take, status=Status.ACTIVE, reference_type=reference_type,
                        reference_id=reference_id, expires_at=expires_at)
            for _, row, take in allocations
        ]
        insert_rows(reservations)
        for (index, _, _), reservation in zip(allocations, reservations, strict=True):
            reservation.line_index = index  # type: ignore[attr-defined]
        webhooks.publish(event_type="inventory.reserved", payload={
            "reference_type": reference_type, "reference_id": reference_id,
            "reservations": [{"id": str(r.id), "inventory_item_id": str(r.inventory_item_id),
                              "sku": r.inventory_item.sku, "location_id": str(r.inventory_item.location_id),
                              "quantity": r.quantity,
                              "expires_at": r.expires_at.isoformat() if r.expires_at else None}
                             for r in reservations],
        })
    return reservations


def _close(reservations: Sequence[Reservation], *, status: str, kind: str, actor: str, reason: str) -> None:
    """Mark locked, active reservations ``status`` and give their unfulfilled units back:
    ``reserved -= remainder`` per row (rows locked in primary-key order), one movement per row. A row
    whose counter drifted below what its reservations hold is clamped at zero and logged (the
    ``reconcile_inventory`` command reports and repairs it), so one bad row cannot block expiry."""
    if not reservations:
        return
    now = timezone.now()
    Reservation.objects.filter(id__in=[r.id for r in reservations]).update(status=status, updated_at=now)
    held: dict[uuid.UUID, int] = defaultdict(int)
    refs: dict[uuid.UUID, set[tuple[str, str]]] = defaultdict(set)
    for r in reservations:
        held[r.inventory_item_id] += r.quantity - r.quantity_fulfilled
        refs[r.inventory_item_id].add((r.reference_type, r.reference_id))
        r.status = status
        r.updated_at = now
    counters = _lock_items(held)
    changes = []
    for item_id, quantity in held.items():
        reserved = counters.get(item_id, (0, 0))[1]
        give_back = min(quantity, reserved)
        if give_back < quantity:
            logger.error("reserved counter below its reservations; clamped",
                         extra={"inventory_item_id": str(item_id), "reserved": reserved, "releasing": quantity})
        if give_back <= 0:
            continue
        (ref_type, ref_id), *others = refs[item_id]
        text = reason if not others else f"{reason} ({len(refs[item_id])} references)".strip()
        changes.append(_Change(item_id, 0, -give_back, kind, text, "" if others else ref_type,
                               "" if others else ref_id))
    _apply(changes, actor=actor)


def stock_release(*, reservation_ids: list[uuid.UUID] | None = None, reference_type: str | None = None,
                  reference_id: str | None = None, actor: str = "", reason: str = "") -> list[Reservation]:
    """Release the still-active remainder of reservations, by ids or by reference
    (``reference_id`` with an optional ``reference_type``). Already released, fulfilled or expired
    reservations are left alone (releasing twice is harmless); the answer lists what was released.

    Locks the reservations (primary-key order), then their inventory rows (primary-key order);
    ledger ``release``, one movement per row. Joins the caller's transaction. Raises
    ValidationFailed (neither ids nor reference, too many ids), NotFound (an unknown id)."""
    reason = clean_text(reason, "reason", MAX_REASON)
    with transaction.atomic():
        if reservation_ids is not None:
            if not 1 <= len(reservation_ids) <= MAX_LINES:
                raise ValidationFailed(f"Give 1 to {MAX_LINES} reservation ids.",
                                       details={"reservation_ids": [f"Give 1 to {MAX_LINES} ids."]})
            ids = {_uuid(i, "reservation_ids") for i in reservation_ids}
            rows = list(Reservation.objects.select_for_update(of=("self",)).select_related("inventory_item")
                        .filter(id__in=ids).order_by("id"))
            missing = sorted(str(i) for i in ids - {r.id for r in rows})
            if missing:
                raise NotFound("No such reservation.", code="reservation_not_found",
                               details={"reservation_ids": missing})
            rows = [r for r in rows if r.status == Status.ACTIVE]
        elif reference_id:
            reference_id = clean_text(reference_id, "reference_id", MAX_REFERENCE_ID, required=True)
            query = (Reservation.objects.select_for_update(of=("self",)).select_related("inventory_item")
                     .filter(reference_id=reference_id, status=Status.ACTIVE))
            if reference_type:
                query = query.filter(reference_type=clean_text(reference_type, "reference_type", MAX_REFERENCE_TYPE))
            rows = list(query.order_by("id"))
        else:
            raise ValidationFailed("Give reservation_ids or reference_id.",
                                   details={"reservation_ids": ["Give reservation_ids or reference_id."]})
        _close(rows, status=Status.RELEASED, kind=Kind.RELEASE, actor=actor, reason=reason or "released")
    return rows


def stock_fulfil(*, reservation_id: uuid.UUID, quantity: int, actor: str = "", reference_type: str = "",
                 reference_id: str = "") -> Reservation:
    """Ship ``quantity`` units of an active reservation: ``reserved -= q`` and ``on_hand -= q`` on its
    row, ledger ``ship``; the reservation is ``fulfilled`` once fully consumed.

    Locks the reservation, then its row. Joins the caller's transaction. Raises NotFound
    (``reservation_not_found``), InvalidTransition (409, not active), Conflict
    (``exceeds_reservation``, more than remains), ValidationFailed (bad quantity). A shipment of
    several lines should call :func:`stock_fulfil_many` once."""
    return stock_fulfil_many(fulfilments=[(reservation_id, quantity)], actor=actor,
                             reference_type=reference_type, reference_id=reference_id)[0]


def stock_fulfil_many(*, fulfilments: Sequence[tuple[uuid.UUID, int]], actor: str = "", reference_type: str = "",
                      reference_id: str = "") -> list[Reservation]:
    """:func:`stock_fulfil` for several reservations at once: reservations locked in primary-key
    order, then their rows in primary-key order; one ``ship`` movement per row. Returns the
    reservations in the order given."""
    if not 1 <= len(fulfilments) <= MAX_LINES:
        raise ValidationFailed(f"Give 1 to {MAX_LINES} fulfilments.",
                               details={"fulfilments": [f"Give 1 to {MAX_LINES}."]})
    wanted: dict[uuid.UUID, int] = {}
    for reservation_id, quantity in fulfilments:
        reservation_id = _uuid(reservation_id, "reservation_id")
        if reservation_id in wanted:
            raise ValidationFailed("A reservation appears twice.", details={"reservation_id": [str(reservation_id)]})
        wanted[reservation_id] = _quantity(quantity)
    reference_type = clean_text(reference_type, "reference_type", MAX_REFERENCE_TYPE)
    reference_id = clean_text(reference_id, "reference_id", MAX_REFERENCE_ID)
    with transaction.atomic():
        rows = {r.id: r for r in Reservation.objects.select_for_update().filter(id__in=wanted).order_by("id")}
        missing = sorted(str(i) for i in set(wanted) - set(rows))
        if missing:
            raise NotFound("No such reservation.", code="reservation_not_found", details={"reservation_ids": missing})
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
        Reservation.objects.bulk_update(list(rows.values()), ["quantity_fulfilled", "status", "updated_at"])
        if len(per_row) > 1:
            _lock_items(per_row)
        try:
            _apply([_Change(item_id, -q, -q, Kind.SHIP, "shipped", reference_type, reference_id)
                    for item_id, q in per_row.items()], actor=actor)
        except _Rejected as exc:
            raise Conflict("The inventory row holds fewer reserved units than its reservations; "
                           "run reconcile_inventory.", code="inventory_drift",
                           details={"inventory_item_ids": sorted(map(str, exc.item_ids))}) from None
    return [rows[i] for i in wanted]


def reservations_expire(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Expire active reservations whose ``expires_at`` has passed, in batches of ``batch_size``,
    one transaction per batch: status ``expired``, ``reserved`` given back, ledger ``expire``.

    Reservations locked by someone else (``FOR UPDATE SKIP LOCKED``) are left for the next run, so
    concurrent workers never wait on each other; rows are locked in primary-key order. Returns how
    many reservations expired."""
    now = now or timezone.now()
    if not 1 <= batch_size <= 10_000:
        raise ValidationFailed("batch_size must be 1..10000.", details={"batch_size": ["Must be 1..10000."]})
    total = 0
    while True:
        with transaction.atomic():
            batch = list(
                Reservation.objects.select_for_update(skip_locked=True)
                .filter(status=Status.ACTIVE, expires_at__lte=now)
                .order_by("expires_at", "id")[:batch_size]
            )
            _close(batch, status=Status.EXPIRED, kind=Kind.EXPIRE, actor="system:expiry", reason="expired")
        total += len(batch)
        if len(batch) < batch_size:
            return total


# ---------------------------------------------------------------------------------------------------
# Reconciliation (nightly report; ``reconcile_inventory --fix`` repairs)


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
                "location_id": str(self.location_id), "on_hand": self.on_hand, "reserved": self.reserved,
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


def inventory_reconcile(*, fix: bool = False, actor: str = "system:reconcile", batch_size: int = 500,
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
            _lock_items(chunk)
            changes = []
            for current in _drift(chunk):
                if current.expected_reserved > current.on_hand:
                    continue
                changes.append(_Change(current.inventory_item_id, 0, current.expected_reserved - current.reserved,
                                       Kind.ADJUST, "reconcile"))
            _apply(changes, actor=actor)
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
    for item_id, sku, on_hand, reserved in InventoryItem.objects.values_list("id", "sku", "on_hand", "reserved").iterator():
        ledger = sums.get(item_id, {"on_hand": 0, "reserved": 0})
        if (ledger["on_hand"], ledger["reserved"]) != (on_hand, reserved):
            out.append({"inventory_item_id": str(item_id), "sku": sku, "on_hand": on_hand, "reserved": reserved,
                        "ledger_on_hand": ledger["on_hand"], "ledger_reserved": ledger["reserved"]})
    return out


# ---------------------------------------------------------------------------------------------------
# Demo data (called by catalog's seed_demo)


def seed_demo_stock(*, demo_quantity: int = 1_000_000, other_quantity: int = 300) -> dict[str, int]:
    """Idempotent demo stock: locations MAIN (priority 0) and EAST (priority 10); the load-test
    product (``550e8400-…-446655440002``, SKU TEST-001) gets ``demo_quantity`` at MAIN (topped up
    when a previous run's stock was consumed below half), every other active product without stock
    gets ``other_quantity`` at MAIN and a third of it at EAST. Every unit is received through the
    ledger. Joins the caller's transaction."""
    created = {"locations": 0, "rows": 0, "topped_up": 0}
    with transaction.atomic():
        locations = {}
        for code, name, priority in (("MAIN", "Main warehouse", 0), ("EAST", "East warehouse", 10)):
            location = Location.objects.filter(code__iexact=code).first()
            if location is None:
                location = Location.objects.create(code=code, name=name, priority=priority)
                created["locations"] += 1
            locations[code] = location
        main, east = locations["MAIN"], locations["EAST"]
        have = set(InventoryItem.objects.filter(location__in=[main, east]).values_list("product_id", "location_id"))
        new_items: list[InventoryItem] = []
        for product_id, sku in Product.objects.filter(is_active=True).values_list("id", "sku").iterator():
            plan = [(main, demo_quantity if product_id == DEMO_PRODUCT_ID else other_quantity),
                    (east, other_quantity // 3)]
            for location, quantity in plan:
                if (product_id, location.id) not in have and quantity > 0:
                    new_items.append(InventoryItem(product_id=product_id, location_id=location.id, sku=sku,
                                                   on_hand=quantity, reorder_point=min(20, quantity // 10)))
        for start in range(0, len(new_items), 1000):
            batch = new_items[start : start + 1000]
            InventoryItem.objects.bulk_create(batch)
            StockMovement.objects.bulk_create([
                StockMovement(inventory_item_id=i.id, kind=Kind.RECEIVE, on_hand_delta=i.on_hand,
                              on_hand_after=i.on_hand, reserved_after=0, reason="demo data", actor="seed_demo")
                for i in batch
            ])
        created["rows"] = len(new_items)
        demo = InventoryItem.objects.filter(product_id=DEMO_PRODUCT_ID, location=main).values("id", "on_hand").first()
        if demo and demo["on_hand"] < demo_quantity // 2:
            _apply([_Change(demo["id"], demo_quantity - demo["on_hand"], 0, Kind.RECEIVE, "demo data top-up")],
                   actor="seed_demo")
            created["topped_up"] = 1
    return created
