"""factory_boy factories and small helpers for the inventory tests (and the tests of the apps
above inventory)."""

from __future__ import annotations

from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from catalog.models import Product
from catalog.tests import factories as catalog_factories
from inventory import services
from inventory.models import InventoryItem, Location, Reservation, StockMovement


class ProductFactory(catalog_factories.ProductFactory):
    """The catalog's factory with the inventory tests' SKUs (``INV-00001``…) and price."""

    sku = factory.Sequence(lambda n: f"INV-{n:05d}")
    name = factory.Sequence(lambda n: f"Widget {n}")
    description = ""
    price = Decimal("9.99")


class LocationFactory(DjangoModelFactory):
    class Meta:
        model = Location

    code = factory.Sequence(lambda n: f"LOC{n:03d}")
    name = factory.LazyAttribute(lambda o: f"Warehouse {o.code}")
    priority = factory.Sequence(lambda n: n * 10)


def stock(product: Product, location: Location, on_hand: int, **kwargs) -> InventoryItem:
    """Put ``on_hand`` units on hand through the service (so the ledger agrees)."""
    return services.stock_receive(product_id=product.id, location_id=location.id, quantity=on_hand,
                                  reason="test stock", **kwargs)


def item(product: Product, location: Location) -> InventoryItem:
    return InventoryItem.objects.get(product=product, location=location)


def snapshot() -> dict:
    """Everything the inventory domain has written, to assert that a refused request wrote
    nothing."""
    return {
        "items": sorted(InventoryItem.objects.values_list("id", "on_hand", "reserved", "version")),
        "reservations": sorted(Reservation.objects.values_list("id", "status",
                                                               "quantity_fulfilled")),
        "movements": StockMovement.objects.count(),
        "locations": Location.objects.count(),
    }


def assert_ledger_matches_counters() -> int:
    """For every row: the sum of its movements equals its counters, each movement's ``*_after``
    is the running sum in ledger order, and ``reserved`` equals what its active reservations hold.
    Returns the number of rows checked."""
    rows = list(InventoryItem.objects.values_list("id", "on_hand", "reserved"))
    for item_id, on_hand, reserved in rows:
        running_on_hand = running_reserved = 0
        for m in StockMovement.objects.filter(inventory_item_id=item_id).order_by("created_at",
                                                                                  "id"):
            running_on_hand += m.on_hand_delta
            running_reserved += m.reserved_delta
            assert (m.on_hand_after, m.reserved_after) == (running_on_hand,
                                                           running_reserved), (item_id, m.kind)
        assert (running_on_hand, running_reserved) == (on_hand, reserved), item_id
        held = sum(r.quantity - r.quantity_fulfilled
                   for r in Reservation.objects.filter(inventory_item_id=item_id, status="active"))
        assert held == reserved, item_id
        assert 0 <= reserved <= on_hand
    return len(rows)
