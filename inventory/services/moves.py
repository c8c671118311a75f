"""Stock moves that change ``on_hand``: receive, adjust, transfer, and returned units put back.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from inventory import locks
from inventory.models import InventoryItem
from inventory.selectors import locations_checked
from inventory.services.common import (
    MAX_LINES,
    MAX_REASON,
    MAX_REFERENCE_ID,
    MAX_REFERENCE_TYPE,
    Kind,
    ProductRef,
    as_uuid,
    check_quantity,
    location_ref,
    product_ref,
    product_refs,
)
from inventory.services.ledger import (
    Change,
    Rejected,
    apply_changes,
    counters_of,
    ensure_items,
    fetch_items,
    item_id_for,
    item_ids_for,
    level,
)
from stateset.errors import (
    InsufficientStock,
    NotFound,
    ValidationFailed,
)
from stateset.inputs import clean_text
from webhooks import services as webhooks


@dataclass(frozen=True)
class StockLine:
    """One (product, location, quantity) for the batch services."""

    location_id: uuid.UUID
    quantity: int
    product_id: uuid.UUID | None = None
    sku: str | None = None


def _increase(*, lines: Sequence[StockLine], kind: str, reason: str, reference_type: str,
              reference_id: str, actor: str) -> list[InventoryItem]:
    """on_hand += quantity for each line (rows created when missing), one movement per row."""
    if not lines or len(lines) > MAX_LINES:
        raise ValidationFailed(f"Give 1 to {MAX_LINES} lines.",
                               details={"lines": [f"Give 1 to {MAX_LINES} lines."]})
    reason = clean_text(reason, "reason", MAX_REASON)
    reference_type = clean_text(reference_type, "reference_type", MAX_REFERENCE_TYPE)
    reference_id = clean_text(reference_id, "reference_id", MAX_REFERENCE_ID)
    quantities = [check_quantity(line.quantity) for line in lines]
    location_ids = [as_uuid(line.location_id, "location_id") for line in lines]
    for line in lines:
        if line.product_id is None and not line.sku:
            raise ValidationFailed("Give product_id or sku.",
                                   details={"product_id": ["Give product_id or sku."]})
    refs = product_refs(
        [(as_uuid(line.product_id, "product_id") if line.product_id is not None else None,
                           clean_text(line.sku, "sku", 64) or None) for line in lines])
    if None in refs:
        missing = [{"index": i, "product_id": str(line.product_id) if line.product_id else None,
                    "sku": line.sku}
                   for i, (line, ref) in enumerate(zip(lines, refs, strict=True)) if ref is None]
        raise NotFound("No such product.", code="product_not_found", details={"lines": missing})
    products: list[ProductRef] = [ref for ref in refs if ref is not None]
    locations_checked(location_ids, in_body=False)
    keys = [(product.id, location_id) for product,
            location_id in zip(products, location_ids, strict=True)]
    totals: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
    for key, quantity in zip(keys, quantities, strict=True):
        totals[key] += quantity

    with transaction.atomic():
        ids = item_ids_for(keys)
        if len(ids) < len(totals):
            ensure_items(zip(products, location_ids, strict=True))
            ids = item_ids_for(keys)
        if len(totals) > 1:
            locks.lock_items(ids.values())
        try:
            apply_changes([Change(ids[key], total, 0, kind, reason, reference_type, reference_id)
                    for key, total in totals.items()], actor=actor)
        except Rejected:  # only an on_hand overflow past the CHECKs could get here
            raise ValidationFailed("The quantity is too large for this row.",
                                   code="quantity_too_large") from None
        return fetch_items([ids[key] for key in keys])


def stock_receive(*, location_id: uuid.UUID, quantity: int, product_id: uuid.UUID | None = None,
                  sku: str | None = None, reason: str = "", reference_type: str = "",
                  reference_id: str = "", actor: str = "") -> InventoryItem:
    """Goods in: ``on_hand += quantity`` (the row is created when missing), ledger ``receive``.

    Durable transaction; the row is locked by its UPDATE. Invalidates the row's cache after commit.
    Raises ValidationFailed (quantity not an integer in 1..1,000,000, over-long text), NotFound
    (product, location)."""
    with transaction.atomic(durable=True):
        return _increase(
            lines=[StockLine(location_id=location_id, quantity=quantity, product_id=product_id,
                             sku=sku)],
                         kind=Kind.RECEIVE, reason=reason, reference_type=reference_type,
                         reference_id=reference_id, actor=actor)[0]


def stock_receive_many(*, lines: Sequence[StockLine], reason: str = "", reference_type: str = "",
                       reference_id: str = "", actor: str = "") -> list[InventoryItem]:
    """:func:`stock_receive` for several lines in one durable transaction (a delivery, the admin's
    "receive stock" action): rows locked in primary-key order, one ``receive`` movement per row
    (lines of the same row are summed). Returns the rows in line order."""
    with transaction.atomic(durable=True):
        return _increase(lines=lines, kind=Kind.RECEIVE, reason=reason,
                         reference_type=reference_type, reference_id=reference_id, actor=actor)


def stock_return(*, product_id: uuid.UUID, location_id: uuid.UUID, quantity: int, actor: str = "",
                 reason: str = "", reference_type: str = "",
                 reference_id: str = "") -> InventoryItem:
    """Returned units back on hand: ``on_hand += quantity`` (row created when missing), ledger
    ``return``. Joins the caller's transaction. Raises ValidationFailed, NotFound. To put several
    lines back at once use :func:`stock_return_many` (one lock pass, no deadlock)."""
    return stock_return_many(
        lines=[StockLine(location_id=location_id, quantity=quantity, product_id=product_id)],
                             actor=actor, reason=reason, reference_type=reference_type,
                             reference_id=reference_id)[0]


def stock_return_many(*, lines: Sequence[StockLine], actor: str = "", reason: str = "",
                      reference_type: str = "", reference_id: str = "") -> list[InventoryItem]:
    """:func:`stock_return` for several lines: rows locked in primary-key order, one movement per
    row (lines of the same row are summed). Returns the rows in line order."""
    return _increase(lines=lines, kind=Kind.RETURN, reason=reason, reference_type=reference_type,
                     reference_id=reference_id, actor=actor)


def stock_adjust(*, location_id: uuid.UUID, delta: int, reason: str,
                 product_id: uuid.UUID | None = None,
                 sku: str | None = None, reference_type: str = "", reference_id: str = "",
                 actor: str = "") -> InventoryItem:
    """Correct a count: ``on_hand += delta`` (signed, non-zero), ledger ``adjust``; ``reason`` is
    required. A positive delta creates a missing row.

    Durable transaction; the row is locked by its conditional UPDATE. Raises
    InsufficientStock (409) when on_hand would fall below what is reserved (details: on_hand,
    reserved, available, delta), ValidationFailed, NotFound (product, location)."""
    delta = check_quantity(delta, "delta", signed=True)
    reason = clean_text(reason, "reason", MAX_REASON, required=True)
    reference_type = clean_text(reference_type, "reference_type", MAX_REFERENCE_TYPE)
    reference_id = clean_text(reference_id, "reference_id", MAX_REFERENCE_ID)
    product = product_ref(product_id, sku)
    location = location_ref(location_id)
    with transaction.atomic(durable=True):
        item_id = item_id_for(product.id, location.id)
        if item_id is None and delta > 0:
            ensure_items([(product, location.id)])
            item_id = item_id_for(product.id, location.id)
        try:
            if item_id is None:
                raise Rejected(set())
            apply_changes(
                [Change(item_id, delta, 0, Kind.ADJUST, reason, reference_type, reference_id)],
                actor=actor)
        except Rejected:
            counters = counters_of(item_id)
            raise InsufficientStock(
                f"Adjusting by {delta} would leave on_hand below what is reserved.",
                details={**counters, "delta": delta, "sku": product.sku,
                         "location_id": str(location.id)},
            ) from None
        return fetch_items([item_id])[0]


def stock_transfer(*, from_location_id: uuid.UUID, to_location_id: uuid.UUID, quantity: int,
                   product_id: uuid.UUID | None = None, sku: str | None = None, reason: str = "",
                   reference_id: str = "", actor: str = "") -> tuple[InventoryItem, InventoryItem]:
    """Move available units between locations in one transaction: ``transfer_out`` on the source,
    ``transfer_in`` on the destination (created when missing); both movements carry
    ``reference_type="transfer"`` and one ``reference_id`` (generated when not given); one
    ``inventory.transferred`` event with both rows' counters after the move.

    Durable transaction; locks both rows in primary-key order. Reserved units do not move. Raises
    InsufficientStock (409) when the source has fewer available units, ValidationFailed (same
    location, inactive destination, bad quantity), NotFound (product, location)."""
    quantity = check_quantity(quantity)
    reason = clean_text(reason, "reason", MAX_REASON)
    reference_id = clean_text(reference_id, "reference_id", MAX_REFERENCE_ID) or str(uuid.uuid4())
    product = product_ref(product_id, sku)
    source = location_ref(from_location_id, "from_location_id")
    target = location_ref(to_location_id, "to_location_id", active=True)
    if source.id == target.id:
        raise ValidationFailed("Source and destination are the same location.",
                               code="same_location",
                               details={"to_location_id": ["Must differ from from_location_id."]})
    with transaction.atomic(durable=True):
        target_id = item_id_for(product.id, target.id)
        if target_id is None:
            ensure_items([(product, target.id)])
            target_id = item_id_for(product.id, target.id)
        source_id = item_id_for(product.id, source.id)
        assert target_id is not None
        locked = locks.lock_items([i for i in (source_id, target_id) if i is not None])
        on_hand, reserved = locked.get(source_id, (0, 0)) if source_id else (0, 0)
        if source_id is None or on_hand - reserved < quantity:
            raise InsufficientStock(
                "Not enough available stock at the source location.",
                details={"lines": [{"index": 0, "sku": product.sku, "product_id": str(product.id),
                                    "location_id": str(source.id), "requested": quantity,
                                    "available": on_hand - reserved}]},
            )
        after = apply_changes([
            Change(source_id, -quantity, 0, Kind.TRANSFER_OUT, reason, "transfer", reference_id),
            Change(target_id, quantity, 0, Kind.TRANSFER_IN, reason, "transfer", reference_id),
        ], actor=actor)
        webhooks.publish(event_type="inventory.transferred", payload={
            "product_id": str(product.id), "sku": product.sku, "quantity": quantity,
            "reason": reason, "reference_type": "transfer", "reference_id": reference_id,
            "from": level(after[source_id]), "to": level(after[target_id])})
        source_item, target_item = fetch_items([source_id, target_id])
    return source_item, target_item
