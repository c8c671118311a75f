"""SPEC §4.7 "every domain change is an event": shipment.created and shipment.cancelled (with an
order's cancellation too) are written to the outbox with their change, exactly once, and a refused
change writes none."""

from __future__ import annotations

import pytest

from stateset.testing import data_of, error_of
from webhooks.tests.factories import outbox

pytestmark = pytest.mark.django_db


def test_creating_a_shipment_publishes_shipment_created_once_and_a_409_nothing(api, make_order,
                                                                              main):
    order = make_order(quantity=2)
    with outbox() as written:
        created = data_of(api.post("/api/v1/shipments", {"order_id": str(order.id),
                                                         "carrier": "UPS",
                                                         "tracking_number": "1Z-EV"},
                                   format="json"), 201)
    shipments = [p for kind, p in written if kind == "shipment.created"]
    assert shipments == [{
        "shipment_id": created["id"], "order_id": str(order.id),
        "order_number": order.order_number, "status": "pending", "carrier": "UPS", "service": "",
        "tracking_number": "1Z-EV", "location_id": str(main.id),
        "items": [{"order_item_id": created["items"][0]["order_item_id"], "quantity": 2}]}]
    # the order moved to processing with it (its own event), nothing else
    assert sorted(kind for kind, _ in written) == ["order.status_changed", "shipment.created"]

    with outbox() as refused:
        error_of(api.post("/api/v1/shipments", {"order_id": str(order.id), "carrier": "UPS"},
                          format="json"), 409)  # nothing left to ship
    assert refused == []


def test_cancelling_a_shipment_publishes_shipment_cancelled_once_and_a_409_nothing(
        api, make_order, ship_order):
    shipment = ship_order(make_order())
    with outbox() as written:
        data_of(api.post(f"/api/v1/shipments/{shipment.id}/cancel", {"reason": "lost label"},
                         format="json"))
    assert [(kind, p["shipment_id"], p["status"], p["reason"]) for kind, p in written] == [
        ("shipment.cancelled", str(shipment.id), "cancelled", "lost label")]
    with outbox() as refused:
        error_of(api.post(f"/api/v1/shipments/{shipment.id}/cancel", {}, format="json"), 409)
    assert refused == []


def test_cancelling_an_order_publishes_shipment_cancelled_for_its_pending_shipments(
        api, make_order, ship_order):
    order = make_order(quantity=1)
    shipment = ship_order(order)
    with outbox() as written:
        data_of(api.post(f"/api/v1/orders/{order.id}/cancel", {"reason": "fraud"},
                         format="json"))
    kinds = [kind for kind, _ in written]
    assert kinds.count("shipment.cancelled") == 1 and "order.cancelled" in kinds
    cancelled = next(p for kind, p in written if kind == "shipment.cancelled")
    assert (cancelled["shipment_id"], cancelled["reason"]) == (str(shipment.id), "fraud")
