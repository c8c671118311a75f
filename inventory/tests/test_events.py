"""SPEC §4.7 "every domain change is an event": each stock change writes its event to the outbox in
its own transaction, exactly once, and a refused change writes none."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory import services
from inventory.models import Reservation
from inventory.services import ReserveLine, StockLine
from inventory.tests.factories import item, stock
from stateset.testing import data_of, error_of
from webhooks.tests.factories import outbox

pytestmark = pytest.mark.django_db
BASE = "/api/v1/inventory"


def only(written: list[tuple[str, dict]], event_type: str) -> dict:
    """The payload of the one event of ``event_type`` in ``written`` (and nothing else of it)."""
    payloads = [payload for kind, payload in written if kind == event_type]
    assert len(payloads) == 1, written
    return payloads[0]


def test_receiving_publishes_inventory_received_once(api, product, main):
    with outbox() as written:
        data_of(api.post(f"{BASE}/receive", {"product_id": str(product.id),
                                             "location_id": str(main.id), "quantity": 7,
                                             "reason": "PO 12", "reference_type": "po",
                                             "reference_id": "12"}, format="json"))
    assert [kind for kind, _ in written] == ["inventory.received"]
    payload = only(written, "inventory.received")
    assert payload == {"inventory_item_id": str(item(product, main).id),
                       "product_id": str(product.id), "sku": product.sku,
                       "location_id": str(main.id), "on_hand": 7, "reserved": 0, "available": 7,
                       "movement": "receive", "quantity": 7, "reason": "PO 12",
                       "reference_type": "po", "reference_id": "12"}


def test_an_opening_count_publishes_inventory_received(api, product, main):
    with outbox() as written:
        data_of(api.post(f"{BASE}", {"product_id": str(product.id), "location_id": str(main.id),
                                     "on_hand": 4}, format="json"), 201)
    payload = only(written, "inventory.received")
    assert (payload["movement"], payload["quantity"], payload["on_hand"]) == ("receive", 4, 4)


def test_adjusting_publishes_inventory_adjusted_once_and_a_refusal_nothing(api, product, main):
    stock(product, main, 5)
    with outbox() as written:
        data_of(api.post(f"{BASE}/adjust", {"product_id": str(product.id),
                                            "location_id": str(main.id), "delta": -2,
                                            "reason": "damaged"}, format="json"))
    assert [kind for kind, _ in written] == ["inventory.adjusted"]
    payload = only(written, "inventory.adjusted")
    assert (payload["sku"], payload["quantity"], payload["on_hand"], payload["reason"],
            payload["movement"]) == (product.sku, -2, 3, "damaged", "adjust")

    with outbox() as refused:
        error_of(api.post(f"{BASE}/adjust", {"product_id": str(product.id),
                                             "location_id": str(main.id), "delta": -9,
                                             "reason": "count"}, format="json"), 409)
    assert refused == []


def test_a_bulk_adjustment_publishes_one_event_per_row_applied(api, product, main, east):
    stock(product, main, 5)
    stock(product, east, 5)
    body = {"adjustments": [
        {"product_id": str(product.id), "location_id": str(main.id), "delta": 3, "reason": "a"},
        {"product_id": str(product.id), "location_id": str(east.id), "delta": -9, "reason": "b"},
        {"sku": product.sku, "location_id": str(east.id), "delta": 1, "reason": "c"},
    ]}
    with outbox() as written:
        results = data_of(api.post(f"{BASE}/bulk-adjust", body, format="json"))
    # the second row would oversell: refused, nothing of it; the third (its row again) applies
    assert [r["ok"] for r in results["results"]] == [True, False, True]
    assert [(k, p["location_id"], p["quantity"], p["reason"]) for k, p in written] == [
        ("inventory.adjusted", str(main.id), 3, "a"), ("inventory.adjusted", str(east.id), 1, "c")]


def test_one_insert_for_the_events_of_one_change(product, main, east):
    """Several rows received in one call: one INSERT into the outbox, not one per row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        services.stock_receive_many(lines=[StockLine(location_id=main.id, quantity=2,
                                                     product_id=product.id),
                                           StockLine(location_id=east.id, quantity=3,
                                                     product_id=product.id)])
    inserts = [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "webhooks_event"')]
    assert len(inserts) == 1


def test_a_transfer_publishes_inventory_transferred_once_and_a_refusal_nothing(api, product,
                                                                              main, east):
    stock(product, main, 5)
    with outbox() as written:
        data_of(api.post(f"{BASE}/transfer", {"product_id": str(product.id),
                                              "from_location_id": str(main.id),
                                              "to_location_id": str(east.id), "quantity": 2,
                                              "reference_id": "T-1"}, format="json"))
    assert [kind for kind, _ in written] == ["inventory.transferred"]
    payload = only(written, "inventory.transferred")
    assert (payload["sku"], payload["quantity"], payload["reference_id"]) == (product.sku, 2, "T-1")
    assert (payload["from"]["location_id"], payload["from"]["on_hand"]) == (str(main.id), 3)
    assert (payload["to"]["location_id"], payload["to"]["on_hand"]) == (str(east.id), 2)

    with outbox() as refused:
        error_of(api.post(f"{BASE}/transfer", {"product_id": str(product.id),
                                               "from_location_id": str(main.id),
                                               "to_location_id": str(east.id), "quantity": 50},
                          format="json"), 409)
    assert refused == []


def test_releasing_publishes_inventory_released_once_and_a_refusal_nothing(api, product, main):
    stock(product, main, 10)
    reserved = services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=4)],
                                      reference_type="cart", reference_id="C-1")
    with outbox() as written:
        data_of(api.post(f"{BASE}/release", {"reference_id": "C-1", "reference_type": "cart",
                                             "reason": "abandoned"}, format="json"))
    assert [kind for kind, _ in written] == ["inventory.released"]
    assert only(written, "inventory.released") == {
        "reference_type": "cart", "reference_id": "C-1", "reason": "abandoned",
        "reservations": [{"id": str(reserved[0].id),
                          "inventory_item_id": str(item(product, main).id), "sku": product.sku,
                          "location_id": str(main.id), "quantity": 4}]}

    with outbox() as refused:
        error_of(api.post(f"{BASE}/release",
                          {"reservation_ids": ["00000000-0000-4000-8000-000000000000"]},
                          format="json"), 404)
    assert refused == []


def test_expiry_publishes_inventory_expired_once_per_reference(product, main):
    stock(product, main, 10)
    soon = timezone.now() + timedelta(minutes=5)
    for cart in ("C-1", "C-2"):
        services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=2)],
                               reference_type="cart", reference_id=cart, expires_at=soon)
    with outbox() as written:
        assert services.reservations_expire(now=soon + timedelta(seconds=1)) == 2
    assert sorted(p["reference_id"] for k, p in written if k == "inventory.expired") == ["C-1",
                                                                                        "C-2"]
    assert [k for k, _ in written] == ["inventory.expired"] * 2
    assert all(p["reservations"][0]["quantity"] == 2 for _, p in written)
    assert not Reservation.objects.filter(status="active").exists()
    with outbox() as again:  # nothing left to expire: nothing published
        assert services.reservations_expire(now=soon + timedelta(seconds=1)) == 0
    assert again == []


def test_reserving_publishes_only_inventory_reserved(product, main):
    """The reservation hot path publishes what it did before: one inventory.reserved."""
    stock(product, main, 10)
    with outbox() as written:
        services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                               reference_type="cart", reference_id="C-9")
    assert [kind for kind, _ in written] == ["inventory.reserved"]


def test_a_counts_import_batch_publishes_each_row_once_in_one_insert(product, main, east):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    stock(product, main, 5)
    with outbox() as written, CaptureQueriesContext(connection) as queries:
        services.stock_import(rows=[{"sku": product.sku, "location_code": main.code, "on_hand": 2},
                                    {"sku": product.sku, "location_code": east.code,
                                     "quantity": 4}], reference_id="IMP-1")
    assert [(k, p["location_id"], p["movement"], p["quantity"], p["reference_id"])
            for k, p in written] == [
        ("inventory.adjusted", str(main.id), "adjust", -3, "IMP-1"),
        ("inventory.received", str(east.id), "receive", 4, "IMP-1")]
    assert len([q for q in queries if q["sql"].startswith('INSERT INTO "webhooks_event"')]) == 1
