"""SPEC §4.7 "every domain change is an event", end to end: a shop's day over the API, with one
endpoint subscribed to ``*`` on a real local receiver — each event type arrives, signed, exactly
once per change that publishes it (the per-app test_events files check the payloads)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
from django.utils import timezone

from customers.tests.factories import CustomerFactory
from inventory import services as inventory_services
from stateset.testing import data_of
from webhooks.models import EVENT_TYPES
from webhooks.tests.factories import Receiver
from webhooks.tests.test_webhooks import verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def test_a_day_of_changes_delivers_each_event_type_once_signed(
        api, receiver, django_capture_on_commit_callbacks):
    secret = data_of(api.post("/api/v1/webhooks", {"url": receiver.url, "events": ["*"]},
                              format="json"), 201)["secret"]
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        main = data_of(api.post("/api/v1/locations", {"code": "MAIN", "name": "Main"},
                                format="json"), 201)
        east = data_of(api.post("/api/v1/locations", {"code": "EAST", "name": "East",
                                                      "priority": 5}, format="json"), 201)
        product = data_of(api.post("/api/v1/products", {"sku": "DAY-1", "name": "Day",
                                                        "price": "10.00"}, format="json"), 201)
        data_of(api.put(f"/api/v1/products/{product['id']}", {"name": "Day one"},
                        format="json"))
        ref = {"product_id": product["id"], "location_id": main["id"]}
        data_of(api.post("/api/v1/inventory/receive", {**ref, "quantity": 20}, format="json"))
        data_of(api.post("/api/v1/inventory/adjust", {**ref, "delta": -2, "reason": "broken"},
                         format="json"))
        data_of(api.post("/api/v1/inventory/transfer", {
            "product_id": product["id"], "from_location_id": main["id"],
            "to_location_id": east["id"], "quantity": 3}, format="json"))
        data_of(api.post("/api/v1/inventory/reserve", {
            "items": [{"product_id": product["id"], "quantity": 1}],
            "reference_type": "cart", "reference_id": "C-1"}, format="json"), 201)
        data_of(api.post("/api/v1/inventory/release", {"reference_type": "cart",
                                                       "reference_id": "C-1"}, format="json"))
        data_of(api.post("/api/v1/inventory/reserve", {
            "items": [{"product_id": product["id"], "quantity": 1}],
            "reference_type": "cart", "reference_id": "C-2", "expires_in": 60}, format="json"),
                201)
        inventory_services.reservations_expire(now=timezone.now() + timedelta(minutes=2))

        order = data_of(api.post("/api/v1/orders", {
            "customer_id": str(customer.id),
            "items": [{"product_id": product["id"], "quantity": 2}]}, format="json"), 201)
        number = order["order_number"]
        data_of(api.patch(f"/api/v1/orders/{number}", {"notes": "gift"}, format="json"))
        first = data_of(api.post("/api/v1/shipments", {"order_id": order["id"], "carrier": "ups"},
                                 format="json"), 201)
        data_of(api.post(f"/api/v1/shipments/{first['id']}/cancel", {}, format="json"))
        second = data_of(api.post("/api/v1/shipments", {"order_id": order["id"],
                                                        "carrier": "ups"}, format="json"), 201)
        data_of(api.post(f"/api/v1/shipments/{second['id']}/ship"))
        data_of(api.post(f"/api/v1/shipments/{second['id']}/deliver"))
        data_of(api.post(f"/api/v1/orders/{number}/payment", {"payment_status": "paid"},
                         format="json"))
        item_id = order["items"][0]["id"]
        kept = data_of(api.post("/api/v1/returns", {"order_id": order["id"], "items": [
            {"order_item_id": item_id, "quantity": 1, "condition": "resellable"}]},
                                format="json"), 201)
        for verb in ("approve", "receive", "refund", "close"):
            data_of(api.post(f"/api/v1/returns/{kept['id']}/{verb}", {}, format="json"))
        refused = data_of(api.post("/api/v1/returns", {"order_id": order["id"], "items": [
            {"order_item_id": item_id, "quantity": 1, "condition": "damaged"}]},
                                   format="json"), 201)
        data_of(api.post(f"/api/v1/returns/{refused['id']}/reject", {}, format="json"))

        spare = data_of(api.post("/api/v1/products", {"sku": "DAY-2", "name": "Spare",
                                                      "price": Decimal("1.00")},
                                 format="json"), 201)
        assert api.delete(f"/api/v1/products/{spare['id']}").status_code == 204

    bodies = [orjson.loads(body) for _, body in receiver.requests]
    assert all(verify(secret, headers, body) for headers, body in receiver.requests)
    assert len({body["id"] for body in bodies}) == len(bodies)  # no event delivered twice
    seen = Counter(body["type"] for body in bodies)
    wanted = {
        "product.created": 2, "product.updated": 1, "product.deleted": 1,
        "inventory.received": 2,  # the receipt and the returned unit restocked
        "inventory.adjusted": 1, "inventory.transferred": 1, "inventory.released": 1,
        "inventory.expired": 1,
        "order.updated": 1, "shipment.created": 2, "shipment.cancelled": 1,
        "shipment.shipped": 1, "shipment.delivered": 1,
        "return.requested": 2, "return.approved": 1, "return.received": 1,
        "return.refunded": 1, "return.closed": 1, "return.rejected": 1,
    }
    assert {kind: seen[kind] for kind in wanted} == wanted
    assert set(wanted) <= set(EVENT_TYPES)
    assert {"order.created", "inventory.reserved", "order.status_changed",
            "payment.recorded"} <= set(seen)
