"""Demo stock for ``seed_demo`` (SPEC §6): locations and the load-test product's ample stock,
received through the ledger like any stock."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db import transaction

from catalog.seed import LOADTEST_PRODUCT_ID
from catalog.selectors import active_product_skus
from inventory.models import InventoryItem, Location, StockMovement
from inventory.services.ledger import Change, apply_changes

Kind = StockMovement.Kind


def seed_demo_stock(*, product_ids: Iterable[uuid.UUID], demo_quantity: int = 1_000_000,
                    other_quantity: int = 300) -> dict[str, int]:
    """Idempotent demo stock: locations MAIN (priority 0) and EAST (priority 10); the load-test
    product (``550e8400-…-446655440002``, SKU TEST-001) gets ``demo_quantity`` at MAIN (topped up
    when a previous run's stock was consumed below half), every other active demo product among
    ``product_ids`` without a row there gets ``other_quantity`` at MAIN and a third of it at EAST —
    the shop's own products are never touched. Every unit is received through the ledger. Joins the
    caller's transaction."""
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
        have = set(InventoryItem.objects.filter(location__in=[main, east]).values_list("product_id",
                                                                                       "location_id"))
        new_items: list[InventoryItem] = []
        for product_id, sku in active_product_skus({LOADTEST_PRODUCT_ID, *product_ids}):
            plan = [(main, demo_quantity if product_id == LOADTEST_PRODUCT_ID else other_quantity),
                    (east, other_quantity // 3)]
            for location, quantity in plan:
                if (product_id, location.id) not in have and quantity > 0:
                    new_items.append(InventoryItem(product_id=product_id, location_id=location.id,
                                                   sku=sku,
                                                   on_hand=quantity,
                                                   reorder_point=min(20, quantity // 10)))
        for start in range(0, len(new_items), 1000):
            batch = new_items[start : start + 1000]
            InventoryItem.objects.bulk_create(batch)
            StockMovement.objects.bulk_create([
                StockMovement(inventory_item_id=i.id, kind=Kind.RECEIVE, on_hand_delta=i.on_hand,
                              on_hand_after=i.on_hand, reserved_after=0, reason="demo data",
                              actor="seed_demo")
                for i in batch
            ])
        created["rows"] = len(new_items)
        demo = InventoryItem.objects.filter(product_id=LOADTEST_PRODUCT_ID,
                                            location=main).values("id", "on_hand").first()
        if demo and demo["on_hand"] < demo_quantity // 2:
            apply_changes(
                [Change(demo["id"], demo_quantity - demo["on_hand"], 0, Kind.RECEIVE,
                        "demo data top-up")],
                   actor="seed_demo")
            created["topped_up"] = 1
    return created
