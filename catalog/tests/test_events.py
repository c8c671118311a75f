"""SPEC §4.7 "every domain change is an event": product.created, product.updated and product.deleted
are written to the outbox with their change, exactly once, and a refused change writes none."""

from __future__ import annotations

import pytest
from django.db import connection

from catalog import services
from catalog.tests.factories import ProductFactory
from stateset.testing import data_of, error_of
from webhooks.tests.factories import outbox

pytestmark = pytest.mark.django_db
URL = "/api/v1/products"


def test_creating_a_product_publishes_product_created_once_and_a_409_nothing(api):
    with outbox() as written:
        created = data_of(api.post(URL, {"sku": "EV-1", "name": "Evented", "price": "12.50",
                                         "currency": "EUR"}, format="json"), 201)
    assert written == [("product.created", {
        "product_id": created["id"], "sku": "EV-1", "name": "Evented", "price": "12.50",
        "currency": "EUR", "is_active": True, "allow_backorder": False, "version": 1})]

    with outbox() as refused:
        error_of(api.post(URL, {"sku": "ev-1", "name": "Copy", "price": "1.00"}, format="json"),
                 409)
    assert refused == []


def test_updating_a_product_publishes_product_updated_once_and_a_412_nothing(api):
    product = ProductFactory(sku="EV-2", price="3.00")
    with outbox() as written:
        data_of(api.patch(f"{URL}/{product.id}", {"name": "Renamed", "price": "4.00"},
                          format="json", HTTP_IF_MATCH='"1"'))
    assert [kind for kind, _ in written] == ["product.updated"]
    payload = written[0][1]
    assert (payload["product_id"], payload["name"], payload["price"], payload["version"],
            payload["changed"]) == (str(product.id), "Renamed", "4.00", 2, ["name", "price"])

    with outbox() as refused:
        error_of(api.patch(f"{URL}/{product.id}", {"name": "Stale"}, format="json",
                           HTTP_IF_MATCH='"1"'), 412)
    assert refused == []


def test_deleting_a_product_publishes_product_deleted_once_and_a_404_nothing(api):
    product = ProductFactory(sku="EV-3")
    with outbox() as written:
        assert api.delete(f"{URL}/{product.id}").status_code == 204
    assert written == [("product.deleted", {"product_id": str(product.id), "sku": "EV-3"})]
    with outbox() as refused:
        error_of(api.delete(f"{URL}/{product.id}"), 404)
    assert refused == []


def test_a_product_deactivated_instead_of_deleted_publishes_product_updated(api):
    product = ProductFactory(sku="EV-4")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE test_event_line (id serial PRIMARY KEY, product_id uuid NOT NULL "
            "REFERENCES catalog_product(id) DEFERRABLE INITIALLY DEFERRED)")
        cursor.execute("INSERT INTO test_event_line (product_id) VALUES (%s)", [product.id])
    with outbox() as written:
        assert data_of(api.delete(f"{URL}/{product.id}"))["deactivated"] is True
    assert [(kind, p["is_active"], p["changed"]) for kind, p in written] == [
        ("product.updated", False, ["is_active"])]


def test_the_admin_flip_publishes_one_product_updated_per_product_changed():
    on, off = ProductFactory(is_active=True), ProductFactory(is_active=False)
    with outbox() as written:
        assert services.products_set_active(product_ids=[on.id, off.id], is_active=False) == 1
    assert [(kind, p["product_id"], p["is_active"], p["version"]) for kind, p in written] == [
        ("product.updated", str(on.id), False, 2)]


def test_an_import_batch_publishes_its_rows_events_in_one_insert(django_assert_num_queries):
    ProductFactory(sku="IMP-OLD", name="Old", price="1.00")
    from django.test.utils import CaptureQueriesContext

    with outbox() as written, CaptureQueriesContext(connection) as queries:
        results = services.products_import(rows=[
            {"sku": "IMP-NEW", "name": "New", "price": "2.00"},
            {"sku": "IMP-OLD", "name": "Old renamed"},
            {"sku": "IMP-BAD", "name": "No price"},
        ])
    assert [r.outcome for r in results][:2] == ["created", "updated"]
    assert [(kind, p["sku"], p.get("changed")) for kind, p in written] == [
        ("product.created", "IMP-NEW", None), ("product.updated", "IMP-OLD", ["name"])]
    assert written[1][1]["version"] == 2
    assert len([q for q in queries if q["sql"].startswith('INSERT INTO "webhooks_event"')]) == 1
