"""Every read of the inventory domain the API, the admin and other apps need.

List selectors return querysets of ``.values()`` rows (the API renders them without building model
instances) with their joins already chosen, so a page costs one query whatever its length.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Count, F, Min, Q, QuerySet, Sum
from django.db.models.functions import Upper

from catalog.selectors import sku_version_key
from inventory.models import Backorder, InventoryItem, Location, Reservation, StockMovement
from stateset.cache import EntityCache
from stateset.csvio import keyset_rows
from stateset.db import Prebuilt
from stateset.errors import NotFound, ValidationFailed
from stateset.pagination import Sort

item_cache = EntityCache("inventory")


def item_cache_key(item_id: uuid.UUID | str) -> str:
    return item_cache.key("item", item_id)


def backorder_version_key(reference_id: uuid.UUID | str | None = None) -> str:
    """A cache key whose value moves whenever the backorder queue of ``reference_id`` (an order) —
    or, without one, any queue — changes: the orders app keys its cached answers against it."""
    return item_cache.group_version_key(f"backorders:{reference_id}" if reference_id
                                        else "backorders")


def waiting_reference_ids() -> QuerySet[Any, Any]:
    """Ids of every order with a line waiting (a subquery for ``?backordered=true``)."""
    return Backorder.objects.filter(quantity_waiting__gt=0).values("reference_id")


BACKORDER_FIELDS = ("id", "reference_id", "reference_number", "line_id", "product_id", "sku",
                    "quantity_waiting", "queued_at")


def backorder_queue(*, product_id: uuid.UUID | None = None,
                    sku: str | None = None) -> QuerySet[Reservation, dict[str, Any]]:
    """``GET /inventory/backorders``: the waiting lines, oldest order first (the queue's index)."""
    rows = Backorder.objects.filter(quantity_waiting__gt=0)
    if product_id:
        rows = rows.filter(product_id=product_id)
    if sku:
        rows = rows.filter(product__sku__iexact=sku)  # the catalog's UPPER(sku) index
    answer: QuerySet[Reservation, dict[str, Any]] = rows.values(*BACKORDER_FIELDS)
    return answer


def render_backorder(row: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": row["reference_id"], "order_number": row["reference_number"],
            "order_item_id": row["line_id"], "product_id": row["product_id"], "sku": row["sku"],
            "quantity_backordered": row["quantity_waiting"], "created_at": row["queued_at"]}


def backorder_allocations(reference_id: uuid.UUID) -> list[dict[str, Any]]:
    """The reservations that served an order's waiting lines, oldest first (its timeline shows
    them)."""
    rows = (Reservation.objects.filter(reference_type="order", reference_id=str(reference_id),
                                       backorder__isnull=False)
            .order_by("created_at", "id")
            .values("id", "quantity", "created_at", "backorder__line_id", "backorder__sku",
                    "inventory_item__location_id"))
    return [dict(row) for row in rows]

ITEM_FIELDS = ("id", "product_id", "sku", "location_id", "location__code", "on_hand", "reserved",
               "available",
               "sellable", "reorder_point", "safety_stock", "allow_backorder", "version",
               "created_at", "updated_at")
LOCATION_FIELDS = ("id", "code", "name", "address", "is_active", "priority", "version",
                   "created_at", "updated_at")
RESERVATION_FIELDS = ("id", "inventory_item_id", "inventory_item__sku",
                      "inventory_item__product_id",
                      "inventory_item__location_id", "quantity", "quantity_fulfilled", "status",
                      "reference_type", "reference_id", "expires_at", "created_at", "updated_at")
MOVEMENT_FIELDS = ("id", "inventory_item_id", "inventory_item__sku", "inventory_item__location_id",
                   "kind",
                   "on_hand_delta", "reserved_delta", "on_hand_after", "reserved_after", "reason",
                   "reference_type", "reference_id", "actor", "created_at")


# --- rendering (one shape per resource, shared by list and detail answers) -----------------------


def render_item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "product_id": row["product_id"],
        "sku": row["sku"],
        "location_id": row["location_id"],
        "location_code": row["location__code"],
        "on_hand": row["on_hand"],
        "reserved": row["reserved"],
        "available": row["available"],
        "sellable": row["sellable"],
        "reorder_point": row["reorder_point"],
        "safety_stock": row["safety_stock"],
        "allow_backorder": row["allow_backorder"],
        "low_stock": row["available"] <= row["reorder_point"],
        "version": row["version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def item_row(item: InventoryItem) -> dict[str, Any]:
    """The ``.values()`` shape of a loaded item (``location`` selected), to render it the same
    way."""
    row = {name: getattr(item, name) for name in ITEM_FIELDS if name != "location__code"}
    row["available"] = item.on_hand - item.reserved
    row["sellable"] = max(row["available"] - item.safety_stock, 0)
    row["location__code"] = item.location.code
    return row


def render_location(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in LOCATION_FIELDS}


def location_row(location: Location) -> dict[str, Any]:
    return {name: getattr(location, name) for name in LOCATION_FIELDS}


def render_reservation(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "inventory_item_id": row["inventory_item_id"],
        "product_id": row["inventory_item__product_id"],
        "sku": row["inventory_item__sku"],
        "location_id": row["inventory_item__location_id"],
        "quantity": row["quantity"],
        "quantity_fulfilled": row["quantity_fulfilled"],
        "status": row["status"],
        "reference_type": row["reference_type"],
        "reference_id": row["reference_id"],
        "expires_at": row["expires_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def reservation_row(reservation: Reservation) -> dict[str, Any]:
    item = reservation.inventory_item
    return {
        "id": reservation.id, "inventory_item_id": item.id, "inventory_item__sku": item.sku,
        "inventory_item__product_id": item.product_id,
        "inventory_item__location_id": item.location_id,
        "quantity": reservation.quantity, "quantity_fulfilled": reservation.quantity_fulfilled,
        "status": reservation.status, "reference_type": reservation.reference_type,
        "reference_id": reservation.reference_id, "expires_at": reservation.expires_at,
        "created_at": reservation.created_at, "updated_at": reservation.updated_at,
    }


def render_movement(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "inventory_item_id": row["inventory_item_id"],
        "sku": row["inventory_item__sku"],
        "location_id": row["inventory_item__location_id"],
        "kind": row["kind"],
        "on_hand_delta": row["on_hand_delta"],
        "reserved_delta": row["reserved_delta"],
        "on_hand_after": row["on_hand_after"],
        "reserved_after": row["reserved_after"],
        "reason": row["reason"],
        "reference_type": row["reference_type"],
        "reference_id": row["reference_id"],
        "actor": row["actor"],
        "created_at": row["created_at"],
    }


# --- inventory rows -------------------------------------------------------------------------------


def low_stock_q() -> Q:
    """The predicate of the partial index ``idx_inventory_low_stock``, written the same way so the
    planner can use it."""
    return Q(available__lte=F("reorder_point"))


def inventory_list(*, sku: str | None = None, product_id: uuid.UUID | None = None,
                   location_id: uuid.UUID | None = None,
                   low_stock: bool | None = None) -> QuerySet[InventoryItem, dict[str, Any]]:
    query = InventoryItem.objects.all()
    if sku:
        query = query.filter(sku__iexact=sku)  # UPPER(sku) index
    if product_id:
        query = query.filter(product_id=product_id)
    if location_id:
        query = query.filter(location_id=location_id)
    if low_stock is True:
        query = query.filter(low_stock_q())
    elif low_stock is False:
        query = query.exclude(low_stock_q())
    values: QuerySet[InventoryItem, dict[str, Any]] = query.values(*ITEM_FIELDS)
    return values


def low_stock_list(*, location_id: uuid.UUID | None = None) -> QuerySet[InventoryItem,
                                                                        dict[str, Any]]:
    return inventory_list(location_id=location_id, low_stock=True)


def inventory_detail(item_id: uuid.UUID) -> dict[str, Any] | None:
    """One row's answer, cached (``[cache.entities] inventory``; dropped after every change of the
    row, and stale once any product's SKU is renamed: the row shows a copy of its SKU)."""

    def load() -> dict[str, Any] | None:
        row = InventoryItem.objects.filter(id=item_id).values(*ITEM_FIELDS).first()
        return render_item(row) if row else None

    return item_cache.get_or_load(item_cache_key(item_id), load, depends_on=sku_version_key())


# The columns of ``locks.lock_stock_rows``' scan (migration ``inventory 0005``), unlocked.
_SELLABLE_ROWS_SQL = """
SELECT i.id, i.product_id, i.location_id, i.sku, i.on_hand, i.reserved, i.available, i.sellable,
       i.version, i.allow_backorder, l.priority AS location_priority, l.code AS location_code
FROM inventory_inventoryitem i JOIN inventory_location l ON l.id = i.location_id
WHERE l.is_active AND i.product_id = ANY(%s) AND (i.sellable > 0 OR i.allow_backorder)
ORDER BY i.id
"""


def sellable_rows(product_ids: Iterable[uuid.UUID]) -> list[InventoryItem]:
    """The rows ``locks.lock_stock_rows`` would lock for ``product_ids`` (active locations, sellable
    units; ``location_priority`` and ``location_code`` annotated) and the active rows that allow
    backorders (an order's line could wait on them), as last committed, from the primary and
    without a lock: an optimistic reservation plans on them and its conditional UPDATE decides
    (``inventory.services.reservations``)."""
    return list(InventoryItem.objects.db_manager("default").raw(
        _SELLABLE_ROWS_SQL, [sorted(set(product_ids))]))


def locations_checked(location_ids: Iterable[uuid.UUID], *, active: bool = False,
                      in_body: bool = True) -> dict[uuid.UUID, Location]:
    """The one check that locations exist (and, with ``active``, are active), for every app that
    names one: the locations by id, or an error naming every bad one — ``location_not_found`` (422
    when the request named it in its body, else 404) or ``location_inactive`` (422). One query."""
    wanted = set(location_ids)
    found = {loc.id: loc
             for loc in Location.objects.filter(id__in=wanted).only("id", "code", "is_active")}
    missing = sorted(str(i) for i in wanted - set(found))
    if missing:
        error = ValidationFailed if in_body else NotFound
        raise error("No such location.", code="location_not_found",
                    details={"location_ids": missing})
    inactive = sorted((loc for loc in found.values() if not loc.is_active),
                      key=lambda loc: loc.code)
    if active and inactive:
        raise ValidationFailed("The location is not active.", code="location_inactive",
                               details={"location_ids": [str(loc.id) for loc in inactive],
                                        "codes": [loc.code for loc in inactive]})
    return found


def locations_by_codes(codes: Iterable[str]) -> dict[str, uuid.UUID]:
    """Location ids by upper-cased code, matched in any letter case (its unique index), one
    query."""
    wanted = {code.upper() for code in codes}
    if not wanted:
        return {}
    rows = Location.objects.alias(code_upper=Upper("code")).filter(
        code_upper__in=wanted).values_list("code", "id")
    return {code.upper(): pk for code, pk in rows}


def location_codes(location_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    return dict(Location.objects.filter(id__in=set(location_ids)).values_list("id", "code"))


def item_for(*, product_id: uuid.UUID, location_id: uuid.UUID) -> InventoryItem | None:
    return InventoryItem.objects.filter(product_id=product_id, location_id=location_id).first()


def available_by_product(product_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Units available to reserve per product, summed over active locations (0 when none). One
    query."""
    ids = list(set(product_ids))
    totals = dict.fromkeys(ids, 0)
    rows = (InventoryItem.objects.filter(product_id__in=ids, location__is_active=True)
            .values("product_id").annotate(total=Sum("available")).values_list("product_id",
                                                                               "total"))
    for product_id, total in rows:
        totals[product_id] = int(total or 0)
    return totals


def low_stock_items(*, limit: int = 10) -> list[dict[str, Any]]:
    """The most depleted rows below their reorder point (for the admin index)."""
    rows = InventoryItem.objects.filter(low_stock_q()).order_by("available",
                                                                "id").values(*ITEM_FIELDS)[:limit]
    return [render_item(row) for row in rows]


# --- locations ------------------------------------------------------------------------------------


def location_list(*, is_active: bool | None = None, code: str | None = None) -> QuerySet[Location,
                                                                                         dict[str,
                                                                                              Any]]:
    query = _locations()
    if is_active is not None:
        query = query.filter(is_active=is_active)
    if code:
        query = query.filter(code__iexact=code)
    return query


_locations: Prebuilt[QuerySet[Location, dict[str, Any]]] = Prebuilt(
    lambda: Location.objects.values(*LOCATION_FIELDS))


def location_detail(location_id: uuid.UUID) -> dict[str, Any] | None:
    row = Location.objects.filter(id=location_id).values(*LOCATION_FIELDS).first()
    return render_location(row) if row else None


# --- reservations and the ledger ----------------------------------------------------------------


def reservation_list(*, status: str | None = None, reference_type: str | None = None,
                     reference_id: str | None = None, sku: str | None = None,
                     inventory_item_id: uuid.UUID | None = None) -> QuerySet[Reservation,
                                                                             dict[str, Any]]:
    query = Reservation.objects.all()
    if status:
        query = query.filter(status=status)
    if reference_id:
        query = query.filter(reference_id=reference_id)
    if reference_type:
        query = query.filter(reference_type=reference_type)
    if sku:
        query = query.filter(inventory_item__sku__iexact=sku)
    if inventory_item_id:
        query = query.filter(inventory_item_id=inventory_item_id)
    values: QuerySet[Reservation, dict[str, Any]] = query.values(*RESERVATION_FIELDS)
    return values


def reservations_for(*, reference_id: str, reference_type: str | None = None,
                     status: str | None = None) -> list[Reservation]:
    """Reservations of one reference (an order), with their rows loaded."""
    query = Reservation.objects.select_related("inventory_item").filter(reference_id=reference_id)
    if reference_type:
        query = query.filter(reference_type=reference_type)
    if status:
        query = query.filter(status=status)
    return list(query.order_by("created_at", "id"))


def movement_list(*, inventory_item_id: uuid.UUID | None = None, sku: str | None = None,
                  location_id: uuid.UUID | None = None, kind: str | None = None,
                  reference_id: str | None = None,
                  created_from: Any = None, created_to: Any = None) -> QuerySet[StockMovement,
                                                                                dict[str, Any]]:
    """The ledger, newest first by default. ``created_from``/``created_to`` prune partitions."""
    query = StockMovement.objects.all()
    if inventory_item_id:
        query = query.filter(inventory_item_id=inventory_item_id)
    if sku:
        query = query.filter(inventory_item__sku__iexact=sku)
    if location_id:
        query = query.filter(inventory_item__location_id=location_id)
    if kind:
        query = query.filter(kind=kind)
    if reference_id:
        query = query.filter(reference_id=reference_id)
    if created_from:
        query = query.filter(created_at__gte=created_from)
    if created_to:
        query = query.filter(created_at__lt=created_to)
    values: QuerySet[StockMovement, dict[str, Any]] = query.values(*MOVEMENT_FIELDS)
    return values


# --- exports (SPEC §4.8) --------------------------------------------------------------------------

EXPORT_COLUMNS = ("sku", "location_code", "on_hand", "reserved", "available")
"""What an inventory import reads (``sku, location_code, on_hand``), and two read-only columns it
skips."""

MOVEMENT_EXPORT_COLUMNS = ("created_at", "id", "sku", "location_code", "kind", "on_hand_delta",
                           "reserved_delta",
                           "on_hand_after", "reserved_after", "reason", "reference_type",
                           "reference_id", "actor")


def inventory_export_rows(queryset: QuerySet[Any]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``queryset`` (a filtered ``inventory_list``) as :data:`EXPORT_COLUMNS`, in
    primary-key keyset chunks: constant memory."""
    fields = ("id", "sku", "location__code", "on_hand", "reserved", "available")
    for row in keyset_rows(queryset, fields=fields):
        yield row[1:]


def movement_export_rows(queryset: QuerySet[Any]) -> Iterator[tuple[Any, ...]]:
    """The ledger rows of ``queryset`` (a filtered ``movement_list``), newest first, as
    :data:`MOVEMENT_EXPORT_COLUMNS`, in keyset chunks on ``(created_at, id)``."""
    fields = ("created_at", "id", "inventory_item__sku", "inventory_item__location__code", "kind",
              "on_hand_delta",
              "reserved_delta", "on_hand_after", "reserved_after", "reason", "reference_type",
              "reference_id", "actor")
    return keyset_rows(queryset, fields=fields, sort=Sort(field="created_at", descending=True))


# --- the back office's dashboard (SPEC §5) --------------------------------------------------------


def low_stock_rows(*, limit: int = 10) -> list[dict[str, Any]]:
    """The most depleted rows at or below their reorder point, with their location's code: one
    query on the partial low-stock index."""
    rows = (InventoryItem.objects.filter(low_stock_q()).order_by("available", "id")
            .values("id", "sku", "location_id", "location__code", "on_hand", "reserved",
                    "available", "reorder_point")[:limit])
    return [dict(row) for row in rows]


def backorders_waiting() -> dict[str, Any]:
    """Lines and units waiting for stock, and since when: one aggregate over the partial queue
    index (``quantity_waiting > 0`` holds exactly for waiting lines)."""
    return Backorder.objects.filter(quantity_waiting__gt=0).aggregate(
        lines=Count("id"), units=Sum("quantity_waiting"), oldest=Min("queued_at"))
