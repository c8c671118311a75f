"""Inventory rows: one per product and location, with their reorder point and safety stock.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from inventory import locks
from inventory.models import InventoryItem
from inventory.selectors import item_cache, item_cache_key
from inventory.services.backorders import allocate_backorders
from inventory.services.common import (
    MAX_REASON,
    Kind,
    check_quantity,
    location_ref,
    product_ref,
)
from inventory.services.ledger import (
    Change,
    Counters,
    apply_changes,
    fetch_items,
    item_id_for,
    publish_low_stock,
)
from stateset.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from stateset.inputs import clean_text, writable


def inventory_item_create(*, location_id: uuid.UUID, on_hand: int = 0,
                          product_id: uuid.UUID | None = None,
                          sku: str | None = None, reorder_point: int = 0, safety_stock: int = 0,
                          reason: str = "", actor: str = "") -> InventoryItem:
    """Create the row for (product, location) with an opening count; a non-zero count writes a
    ``receive`` movement and publishes ``inventory.received``. Raises NotFound (product, location),
    ValidationFailed, Conflict(code="inventory_exists") when the row exists (its id in
    ``details``)."""
    on_hand = check_quantity(on_hand, "on_hand", allow_zero=True)
    reorder_point = check_quantity(reorder_point, "reorder_point", allow_zero=True)
    safety_stock = check_quantity(safety_stock, "safety_stock", allow_zero=True)
    reason = clean_text(reason, "reason", MAX_REASON) or "opening stock"
    product = product_ref(product_id, sku)
    location = location_ref(location_id)
    # Not durable: the admin's add view runs it inside its own transaction.
    with transaction.atomic():
        try:
            with transaction.atomic():
                item = InventoryItem.objects.create(product_id=product.id, location_id=location.id,
                                                    sku=product.sku, on_hand=0,
                                                    reorder_point=reorder_point,
                                                    safety_stock=safety_stock)
        except IntegrityError:
            existing = item_id_for(product.id, location.id)
            raise Conflict("This product already has an inventory row at this location.",
                           code="inventory_exists",
                           details={"id": str(existing) if existing else None}) from None
        if on_hand:
            # The opening count is a receive like any other: its movement, its event, and the
            # orders waiting for the product served from it (SPEC §4.4.3), in this transaction.
            apply_changes([Change(item.id, on_hand, 0, Kind.RECEIVE, reason)], actor=actor)
    return fetch_items([item.id])[0]


def inventory_item_update(*, item_id: uuid.UUID, changes: Mapping[str, Any],
                          expected_version: int | None = None, actor: str = "") -> InventoryItem:
    """``PATCH /inventory/{id}``: ``reorder_point``, ``safety_stock``, ``allow_backorder``; bumps
    ``version``. Locks the row. Publishes ``inventory.low_stock`` when the change puts the row at or
    below its reorder point; a lowered safety stock makes units sellable, which go to waiting
    backorders first (``backorders.allocate_backorders``, same transaction). Raises NotFound,
    PreconditionFailed (412), ValidationFailed."""
    fields: dict[str,
                 Any] = dict(writable(changes,
                                      {"reorder_point", "safety_stock", "allow_backorder"}))
    for name in ("reorder_point", "safety_stock"):
        if name in fields:
            fields[name] = check_quantity(fields[name], name, allow_zero=True)
    if "allow_backorder" in fields and not isinstance(fields["allow_backorder"], bool):
        raise ValidationFailed("allow_backorder must be a boolean.",
                               details={"allow_backorder": ["Must be a boolean."]})
    if not fields:
        raise ValidationFailed("Nothing to change.", details={"non_field_errors": [
            "Give reorder_point, safety_stock or allow_backorder."]})
    with transaction.atomic():
        item = locks.lock_item(item_id)
        if item is None:
            raise NotFound("No such inventory row.", code="inventory_not_found")
        if expected_version is not None and item.version != expected_version:
            raise PreconditionFailed(details={"current_version": item.version})
        was_low, was_sellable = item.available <= item.reorder_point, item.sellable
        for key, value in fields.items():
            setattr(item, key, value)
        item.version += 1
        item.save(update_fields=[*fields, "version", "updated_at"])
        after = Counters.of(item)
        if not was_low and item.available <= item.reorder_point:
            publish_low_stock(after)
        item_cache.invalidate(item_cache_key(item.id))
        if after.sellable > was_sellable:
            allocate_backorders(rows={item.id: after},
                                growth={item.id: after.sellable - was_sellable}, actor=actor)
    return fetch_items([item.id])[0]
