"""SPEC §3: ``PUT`` is accepted wherever ``PATCH`` is, with the same fields and rules — only the
fields sent change, ``If-Match`` is honoured, unknown fields are 422 — for every resource with an
update (orders, with notes, addresses and metadata: orders/tests/test_order_numbers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from catalog.tests.factories import ProductFactory
from fulfillment.tests.factories import ShipmentFactory
from inventory.models import InventoryItem
from inventory.tests.factories import LocationFactory
from orders.tests.factories import StockedProductFactory
from stateset.testing import data_of, error_of
from webhooks import services as webhooks

pytestmark = pytest.mark.django_db


def product() -> tuple[str, dict[str, Any], str]:
    row: Any = ProductFactory(name="Before", description="kept")
    return f"/api/v1/products/{row.id}", {"name": "After"}, "description"


def location() -> tuple[str, dict[str, Any], str]:
    row: Any = LocationFactory(name="Before")
    return f"/api/v1/locations/{row.id}", {"priority": 7}, "name"


def inventory_item() -> tuple[str, dict[str, Any], str]:
    product: Any = StockedProductFactory(stock=5)
    row = InventoryItem.objects.get(product=product)
    return f"/api/v1/inventory/{row.id}", {"reorder_point": 3}, "safety_stock"


def shipment() -> tuple[str, dict[str, Any], str]:
    row: Any = ShipmentFactory(carrier="ups", service="ground")
    return f"/api/v1/shipments/{row.id}", {"carrier": "dhl"}, "service"


def endpoint() -> tuple[str, dict[str, Any], str]:
    row = webhooks.endpoint_create(url="https://example.com/in", events=["*"],
                                   description="kept")
    return f"/api/v1/webhooks/{row.id}", {"events": ["order.created"]}, "description"


@pytest.mark.parametrize("make", [product, location, inventory_item, shipment, endpoint],
                         ids=lambda f: f.__name__)
def test_put_changes_only_the_fields_sent_and_follows_patch_rules(
        api, make: Callable[[], tuple[str, dict[str, Any], str]]):
    path, change, untouched = make()
    before = data_of(api.get(path))
    stale = api.put(path, change, format="json", HTTP_IF_MATCH=f'"{before["version"] + 5}"')
    assert error_of(stale, 412)["code"] == "precondition_failed"
    assert error_of(api.put(path, {**change, "colour": "red"}, format="json"), 422)

    response = api.put(path, change, format="json", HTTP_IF_MATCH=f'"{before["version"]}"')
    after = data_of(response)
    for name, value in change.items():
        assert after[name] == value, name
    assert after[untouched] == before[untouched]  # not sent: kept, as with PATCH
    assert after["version"] == before["version"] + 1
    assert response["ETag"] == f'"{after["version"]}"'
