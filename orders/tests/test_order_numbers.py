"""SPEC §3: every ``{id}`` of an order route accepts the order number as well as the UUID, and
``PUT /orders/{id}`` takes the same fields and rules as ``PATCH``."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import selectors
from orders.models import Order
from stateset.testing import data_of, error_of
from webhooks.tests.factories import outbox

pytestmark = pytest.mark.django_db


def test_get_by_order_number_answers_the_order(api, make_order):
    order = make_order()
    # The sequence is not rolled back between tests: give this order the first number.
    Order.objects.filter(id=order.id).update(order_number="ORD-000001")
    order.refresh_from_db()
    by_number = api.get("/api/v1/orders/ORD-000001")
    body = data_of(by_number)
    assert body["id"] == str(order.id) and body["order_number"] == "ORD-000001"
    assert by_number["ETag"] == f'"{order.version}"'
    assert data_of(api.get("/api/v1/orders/ord-000001"))["id"] == str(order.id)  # any case
    assert data_of(api.get(f"/api/v1/orders/{order.id}"))["id"] == str(order.id)


def test_order_sub_routes_accept_the_number(api, make_order):
    order = make_order()
    order.refresh_from_db()
    number = order.order_number
    assert data_of(api.get(f"/api/v1/orders/{number}/events"))["items"]
    assert data_of(api.get(f"/api/v1/orders/{number}/payments"))["items"] == []
    paid = data_of(api.post(f"/api/v1/orders/{number}/payments",
                            {"kind": "authorize", "provider": "test"}, format="json"), 201)
    assert paid["payment_status"] == "authorized"
    moved = data_of(api.post(f"/api/v1/orders/{number}/status", {"status": "confirmed"},
                             format="json"))
    assert moved["status"] == "confirmed"
    cancelled = data_of(api.post(f"/api/v1/orders/{number}/cancel", {"reason": "changed mind"},
                                 format="json"))
    assert cancelled["id"] == str(order.id) and cancelled["status"] == "cancelled"


def test_an_unknown_number_or_a_malformed_id_is_order_not_found(api, make_order):
    make_order()
    for path in ("ORD-999999", "ORD_000001", "ORD-" + "0" * 40):
        response = api.get(f"/api/v1/orders/{path}")
        assert error_of(response, 404)["code"] == "order_not_found", path
    assert error_of(api.post("/api/v1/orders/ORD-999999/cancel", {}, format="json"),
                    404)["code"] == "order_not_found"


def test_the_number_lookup_uses_the_order_number_index(make_order):
    """Orders are partitioned by month: the lookup probes each partition's index on
    ``order_number`` (a unique index would have to include the partition key; the sequence makes
    numbers unique), never a sequential scan."""
    order = make_order()
    order.refresh_from_db()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        with CaptureQueriesContext(connection) as queries:
            assert selectors.order_id_by_number(order.order_number) == order.id
        cursor.execute("EXPLAIN " + queries[-1]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "order_number" in plan and "Seq Scan" not in plan, plan
    assert any(index.name == "order_number_idx" for index in Order._meta.indexes)


def test_put_updates_notes_addresses_and_metadata_like_patch(api, make_order):
    order = make_order()
    order.refresh_from_db()
    etag = api.get(f"/api/v1/orders/{order.id}")["ETag"]
    body = {"notes": "leave at the door",
            "shipping_address": {"line1": "1 Main St", "city": "Springfield", "country": "us"},
            "billing_address": {"line1": "2 Side St", "city": "Shelbyville", "country": "US"},
            "metadata": {"crm_id": 42}}
    with outbox() as written:
        response = api.put(f"/api/v1/orders/{order.order_number}", body, format="json",
                           HTTP_IF_MATCH=etag)
    data = data_of(response)
    assert data["notes"] == "leave at the door" and data["metadata"] == {"crm_id": 42}
    assert data["shipping_address"]["country"] == "US"
    assert data["billing_address"]["city"] == "Shelbyville"
    assert response["ETag"] == f'"{order.version + 1}"'
    stored = Order.objects.get(id=order.id)
    assert (stored.notes, stored.metadata, stored.shipping_address["line1"]) == (
        "leave at the door", {"crm_id": 42}, "1 Main St")
    assert [(kind, p["changed"]) for kind, p in written if kind == "order.updated"] == [
        ("order.updated", ["billing_address", "metadata", "notes", "shipping_address"])]

    # partial, as PATCH: a field not sent is kept
    kept = data_of(api.put(f"/api/v1/orders/{order.id}", {"notes": "ring twice"}, format="json"))
    assert kept["notes"] == "ring twice" and kept["metadata"] == {"crm_id": 42}


def test_put_follows_patch_rules_if_match_and_unknown_fields(api, make_order):
    order = make_order()
    stale = api.put(f"/api/v1/orders/{order.id}", {"notes": "late"}, format="json",
                    HTTP_IF_MATCH='"999"')
    assert error_of(stale, 412)["code"] == "precondition_failed"
    refused = api.put(f"/api/v1/orders/{order.id}", {"status": "shipped"}, format="json")
    assert set(error_of(refused, 422)["details"]) == {"status"}
    order.refresh_from_db()
    assert (order.notes, order.version) == ("", 1)
