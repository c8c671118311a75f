"""The audit trail (SPEC §5): who changed what, from the API, the admin, tasks and raw SQL; the
``GET /audit`` scopes; secrets never recorded."""

from __future__ import annotations

import uuid
from decimal import Decimal

import orjson
import pytest
from celery import shared_task
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection, transaction
from django.urls import reverse
from rest_framework.test import APIClient

from audit import context
from audit.models import ApiKeyEvent, EndpointEvent, OrderEvent, ProductEvent
from catalog.models import Product
from catalog.tests.factories import ProductFactory
from inventory.models import InventoryItem
from inventory.tests.factories import LocationFactory, stock
from orders import services as order_services
from orders.tests.factories import OrderFactory
from stateset import services as platform_services
from stateset.models import ApiKey
from stateset.testing import data_of, error_of
from webhooks.tests.factories import EndpointFactory

pytestmark = pytest.mark.django_db
AUDIT = "/api/v1/audit"


def keyed(name: str, *scopes: str) -> APIClient:
    _, raw = platform_services.api_key_create(name=name, scopes=list(scopes) or ["*"])
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    return client


def trail(client: APIClient, object_type: str, object_id: object) -> list[dict]:
    response = client.get(AUDIT, {"object_type": object_type, "object_id": str(object_id)})
    assert response.status_code == 200, response.content
    return data_of(response)["items"]


def test_a_price_change_over_the_api_is_the_keys_with_old_and_new_price():
    product = ProductFactory(price=Decimal("19.99"))
    pricing = keyed("pricing-bot", "catalog:write", "catalog:read")
    response = pricing.patch(f"/api/v1/products/{product.id}", {"price": "24.50"}, format="json")
    assert response.status_code == 200, response.content

    update, created = trail(pricing, "catalog.product", product.id)
    assert (update["action"], update["actor"]) == ("update", "api-key:pricing-bot")
    assert update["changes"]["price"] == {"old": "19.99", "new": "24.50"}
    assert update["context"]["request_id"] == response["X-Request-ID"]
    assert update["context"]["api_key"] == "pricing-bot"
    assert created["action"] == "insert" and created["actor"] == "system"


def test_a_stock_count_change_over_the_api_is_the_keys():
    location = LocationFactory(code="DC-NORTH")
    product = ProductFactory()
    row = stock(product, location, 10)
    warehouse = keyed("warehouse-bot", "inventory:write", "inventory:read")
    response = warehouse.post("/api/v1/inventory/adjust", {
        "product_id": str(product.id), "location_id": str(location.id), "delta": -3,
        "reason": "damaged"}, format="json")
    assert response.status_code == 200, response.content

    latest = trail(warehouse, "inventory.inventoryitem", row.id)[0]
    assert latest["actor"] == "api-key:warehouse-bot"
    assert latest["changes"]["on_hand"] == {"old": 10, "new": 7}


def test_a_reservation_is_no_stock_count_event():
    product = ProductFactory()
    row = stock(product, LocationFactory(), 10)
    reader = keyed("reader", "inventory:read")
    before = trail(reader, "inventory.inventoryitem", row.id)
    OrderFactory(lines=[(product, 2)])
    assert InventoryItem.objects.get(pk=row.pk).reserved == 2
    assert trail(reader, "inventory.inventoryitem", row.id) == before


def test_a_price_change_in_the_admin_is_the_staff_users_and_shows_on_its_history_page(
        admin_client):
    product = ProductFactory(price=Decimal("5.00"))
    response = admin_client.post(reverse("admin:catalog_product_change", args=[product.id]), {
        "sku": product.sku, "name": product.name, "description": product.description,
        "price": "7.25", "currency": "USD", "is_active": "on", "attributes": "{}"})
    assert response.status_code == 302

    update = trail(keyed("reader", "catalog:read"), "catalog.product", product.id)[0]
    assert update["actor"] == "admin:admin"
    assert update["changes"]["price"] == {"old": "5.00", "new": "7.25"}
    assert update["context"]["user"] == "admin"

    page = admin_client.get(reverse("admin:catalog_product_history", args=[product.id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="audit-trail"' in html and "admin:admin" in html
    assert "5.00 → 7.25" in html and "5.000" not in html


def test_a_stock_count_received_in_the_admin_is_the_staff_users(admin_client):
    location = LocationFactory(code="DC-EAST")
    row = stock(ProductFactory(), location, 1)
    response = admin_client.post(reverse("admin:inventory_inventoryitem_changelist"), {
        "action": "receive_stock", ACTION_CHECKBOX_NAME: [str(row.id)], "apply": "1",
        "quantity": "25", "reason": "delivery", "reference_id": "PO-42"})
    assert response.status_code == 302

    update = trail(keyed("reader", "inventory:read"), "inventory.inventoryitem", row.id)[0]
    assert update["actor"] == "admin:admin"
    assert update["changes"]["on_hand"] == {"old": 1, "new": 26}
    page = admin_client.get(reverse("admin:inventory_inventoryitem_history", args=[row.id]))
    assert "admin:admin" in page.content.decode() and "1 → 26" in page.content.decode()


def test_bulk_updates_and_raw_sql_are_audited_with_the_scope_they_ran_in():
    products = ProductFactory.create_batch(3, price=Decimal("1.00"))
    with context.scope(actor="command:reprice"):
        Product.objects.filter(pk__in=[p.pk for p in products]).update(price=Decimal("2.00"))
        with connection.cursor() as cursor:
            cursor.execute("UPDATE catalog_product SET name = 'Renamed' WHERE id = %s",
                           [products[0].pk])
    events = list(ProductEvent.objects.filter(pgh_label="update").order_by("pgh_id"))
    assert len(events) == 4
    assert {e.pgh_context["actor"] for e in events} == {"command:reprice"}
    assert events[-1].pgh_diff == {"name": [products[0].name, "Renamed"]}


@shared_task(name="audit.tests.reprice")
def reprice(product_id: str) -> None:
    Product.objects.filter(pk=product_id).update(price=Decimal("3.00"))


def test_a_tasks_writes_are_the_tasks():
    product = ProductFactory()
    reprice.apply(args=[str(product.id)])
    event = ProductEvent.objects.filter(pgh_label="update").get()
    assert event.pgh_context["actor"] == "task:audit.tests.reprice"
    assert event.pgh_context["task_id"]


def test_writes_outside_any_scope_carry_no_stale_actor():
    product = ProductFactory()
    with context.scope(actor="task:first"):
        Product.objects.filter(pk=product.pk).update(name="one")
    Product.objects.filter(pk=product.pk).update(name="two")  # same (test) transaction
    first, second = ProductEvent.objects.filter(pgh_label="update").order_by("pgh_id")
    assert first.pgh_context == {"actor": "task:first"}
    assert second.pgh_context is None


def test_a_rolled_back_savepoint_does_not_take_the_actor_with_it():
    product = ProductFactory()
    with context.scope(actor="task:outer"), transaction.atomic():
        try:
            with transaction.atomic():
                Product.objects.filter(pk=product.pk).update(name="gone")
                raise RuntimeError
        except RuntimeError:
            pass
        Product.objects.filter(pk=product.pk).update(name="kept")
    [event] = ProductEvent.objects.filter(pgh_label="update")
    assert event.pgh_context == {"actor": "task:outer"} and event.name == "kept"


def test_an_order_status_change_on_the_partitioned_table_is_audited():
    order = OrderFactory()
    with context.scope(actor="admin:support"):
        order_services.order_transition(order_id=order.id, to_status="on_hold",
                                        reason="address check")
    events = trail(keyed("reader", "orders:read"), "orders.order", order.id)
    assert events[0]["actor"] == "admin:support"
    assert events[0]["changes"]["status"]["new"] == "on_hold"
    assert OrderEvent.objects.filter(pgh_obj_id=order.id).count() == len(events)


def test_creating_an_order_writes_no_order_event_and_sets_the_context_once(monkeypatch):
    product = ProductFactory()
    stock(product, LocationFactory(), 10)
    calls = []
    real = context.set_context
    monkeypatch.setattr(context, "set_context",
                        lambda cursor, marker: (calls.append(marker), real(cursor, marker)))
    client = keyed("shop", "orders:write")
    response = client.post("/api/v1/orders", {
        "customer_id": str(OrderFactory().customer_id),
        "items": [{"product_id": str(product.id), "quantity": 1}]}, format="json")
    assert response.status_code == 201, response.content
    order_id = data_of(response, 201)["id"]
    assert not OrderEvent.objects.filter(pgh_obj_id=order_id).exists()
    # One set_config for the create transaction (it reserves stock: an audited table); the
    # key's last_used_at touch is a task of its own (eager here), attributed to the task.
    assert len([c for c in calls if '"api-key:shop"' in c[1]]) == 1


# --- GET /audit: who may read it --------------------------------------------------------------


def test_audit_needs_the_read_scope_of_the_objects_resource(anon_client):
    product = ProductFactory()
    key, _ = platform_services.api_key_create(name="ops", scopes=["keys:manage"])
    endpoint = EndpointFactory()
    catalog_reader = keyed("catalog-reader", "catalog:read")
    assert anon_client.get(AUDIT, {"object_type": "catalog.product",
                                   "object_id": str(product.id)}).status_code == 401
    assert len(trail(catalog_reader, "catalog.product", product.id)) == 1
    for object_type, object_id in (("stateset.apikey", key.id), ("webhooks.endpoint", endpoint.id),
                                   ("inventory.inventoryitem", uuid.uuid4())):
        denied = catalog_reader.get(AUDIT, {"object_type": object_type,
                                            "object_id": str(object_id)})
        assert error_of(denied, 403)["code"] == "insufficient_scope"
    assert trail(keyed("keys", "keys:manage"), "stateset.apikey", key.id)
    assert trail(keyed("hooks", "webhooks:manage"), "webhooks.endpoint", endpoint.id)
    # keys:manage is not implied by catalog:* nor read access to the catalog by keys:manage
    assert keyed("k2", "keys:manage").get(AUDIT, {"object_type": "catalog.product",
                                                  "object_id": str(product.id)}).status_code == 403


def test_unknown_object_type_and_bad_ids_are_422s_with_their_codes():
    client = keyed("all")
    for params in ({"object_type": "catalog.nothing", "object_id": str(uuid.uuid4())},
                   {"object_id": str(uuid.uuid4())}):
        response = client.get(AUDIT, params)
        assert error_of(response, 422)["code"] == "unknown_object_type"
    bad = client.get(AUDIT, {"object_type": "catalog.product", "object_id": "nope"})
    assert error_of(bad, 422)["code"] == "invalid_parameter"
    extra = client.get(AUDIT, {"object_type": "catalog.product", "object_id": str(uuid.uuid4()),
                               "actor": "x"})
    assert extra.status_code == 422


def test_audit_pages_with_the_projects_pagination_and_a_fixed_query_count(
        django_assert_max_num_queries):
    product = ProductFactory()
    with context.scope(actor="command:reprice"):
        for cents in range(25):
            Product.objects.filter(pk=product.pk).update(price=Decimal(cents))
    client = keyed("reader", "catalog:read")
    client.get(AUDIT, {"object_type": "catalog.product", "object_id": str(product.id)})
    with django_assert_max_num_queries(3):
        first = data_of(client.get(AUDIT, {"object_type": "catalog.product",
                                           "object_id": str(product.id), "limit": 10}))
    assert len(first["items"]) == 10 and first["total"] == 26 and first["next_cursor"]
    rest = data_of(client.get(AUDIT, {"object_type": "catalog.product",
                                      "object_id": str(product.id), "limit": 100,
                                      "cursor": first["next_cursor"]}))
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert len(ids) == 26 == len(set(ids)) and ids == sorted(ids, reverse=True)


# --- secrets ------------------------------------------------------------------------------------


def test_key_hashes_and_endpoint_secrets_never_reach_the_trail(admin_client):
    client = keyed("ops", "keys:manage", "webhooks:manage", "orders:read")
    created = data_of(client.post("/api/v1/api-keys", {"name": "svc", "scopes": ["orders:read"]},
                                  format="json"), 201)
    rotated = data_of(client.post(f"/api/v1/api-keys/{created['id']}/rotate", {},
                                  format="json"))
    hook = data_of(client.post("/api/v1/webhooks", {
        "url": "https://hooks.example.com/in", "events": ["*"],
        "secret": "s3cr3t-s3cr3t-s3cr3t"}, format="json"), 201)
    client.patch(f"/api/v1/webhooks/{hook['id']}", {"description": "main"}, format="json")
    rotated_hook = data_of(client.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", {},
                                       format="json"))

    key = ApiKey.objects.get(pk=created["id"])
    secrets = [created["key"], rotated["key"], key.key_hash, key.previous_key_hash,
               "s3cr3t-s3cr3t-s3cr3t", rotated_hook["secret"]]
    answers = [client.get(AUDIT, {"object_type": "stateset.apikey", "object_id": created["id"]}),
               client.get(AUDIT, {"object_type": "webhooks.endpoint", "object_id": hook["id"]}),
               admin_client.get(reverse("admin:stateset_apikey_history", args=[created["id"]])),
               admin_client.get(reverse("admin:webhooks_endpoint_history", args=[hook["id"]]))]
    stored = orjson.dumps([list(ApiKeyEvent.objects.values()),
                           list(EndpointEvent.objects.values())], default=str).decode()
    for text in [a.content.decode() for a in answers] + [stored]:
        for secret in filter(None, secrets):
            assert secret not in text
    key_events = data_of(answers[0])["items"]
    assert [e["actor"] for e in key_events] == ["api-key:ops", "api-key:ops"]
    assert "rotated_at" in key_events[0]["changes"]
    assert {f.name for f in ApiKeyEvent._meta.fields}.isdisjoint(
        {"key_hash", "previous_key_hash", "last_used_at"})
    assert {f.name for f in EndpointEvent._meta.fields}.isdisjoint(
        {"secret", "previous_secret", "consecutive_failures"})


@pytest.mark.django_db(transaction=True)
def test_a_management_commands_writes_are_the_commands():
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.conf import settings

    product = ProductFactory(price=Decimal("1.00"))
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    code = ("from decimal import Decimal; from catalog.models import Product; "
            f"Product.objects.filter(pk='{product.pk}').update(price=Decimal('2.00'))")
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], check=True,
                   cwd=Path(settings.BASE_DIR), env={**os.environ, "DATABASE_URL": url},
                   capture_output=True, timeout=120)
    event = ProductEvent.objects.get(pgh_obj_id=product.pk, pgh_label="update")
    assert event.pgh_context == {"actor": "command:shell"}
    assert event.pgh_diff == {"price": ["1.000", "2.000"]}


# --- locations, addresses, payments and order lines -------------------------------------------


def test_a_location_change_over_the_api_is_on_its_trail():
    ops = keyed("ops-bot", "inventory:write", "inventory:read")
    created = data_of(ops.post("/api/v1/locations", {"code": "DC-EAST", "name": "East"},
                               format="json"), 201)
    response = ops.patch(f"/api/v1/locations/{created['id']}", {"priority": 5}, format="json",
                         HTTP_IF_MATCH=f'"{created["version"]}"')
    assert response.status_code == 200, response.content
    update, insert = trail(ops, "inventory.location", created["id"])
    assert (update["action"], update["actor"]) == ("update", "api-key:ops-bot")
    assert update["changes"]["priority"] == {"old": 100, "new": 5}
    assert (insert["action"], insert["actor"]) == ("insert", "api-key:ops-bot")


def test_a_locations_history_page_shows_its_trail(admin_client):
    location = LocationFactory(code="DC-WEST", priority=100)
    with context.scope(actor="admin:ops"):
        type(location).objects.filter(id=location.id).update(priority=7)
    page = admin_client.get(reverse("admin:inventory_location_history", args=[location.id]))
    html = page.content.decode()
    assert page.status_code == 200 and 'id="audit-trail"' in html
    assert "admin:ops" in html and "100 → 7" in html


def test_an_address_change_and_removal_are_on_its_trail():
    support = keyed("support-bot", "customers:write", "customers:read")
    customer = data_of(support.post("/api/v1/customers", {"email": "ada@example.com"},
                                    format="json"), 201)
    address = data_of(support.post(f"/api/v1/customers/{customer['id']}/addresses", {
        "kind": "shipping", "line1": "1 Main St", "city": "Springfield", "country": "US"},
        format="json"), 201)
    url = f"/api/v1/customers/{customer['id']}/addresses/{address['id']}"
    assert support.patch(url, {"city": "Shelbyville"}, format="json").status_code == 200
    assert support.delete(url).status_code == 204
    deleted, update, insert = trail(support, "customers.address", address["id"])
    assert [deleted["action"], update["action"], insert["action"]] == ["delete", "update",
                                                                        "insert"]
    assert update["changes"]["city"] == {"old": "Springfield", "new": "Shelbyville"}
    assert {deleted["actor"], update["actor"], insert["actor"]} == {"api-key:support-bot"}


def test_a_recorded_payment_and_an_edited_line_are_on_their_trails():
    product = ProductFactory(price=Decimal("10.00"))
    stock(product, LocationFactory(), 10)
    order = OrderFactory(lines=[(product, 2)])
    item = order.items.get()
    from audit.models import OrderItemEvent, PaymentEvent

    assert not OrderItemEvent.objects.filter(pgh_obj_id=item.id).exists()  # created: no event
    finance = keyed("finance-bot", "orders:write", "orders:read")
    paid = finance.post(f"/api/v1/orders/{order.id}/payments",
                        {"kind": "capture", "amount": "5.00"}, format="json")
    assert paid.status_code == 201, paid.content
    payment_id = data_of(paid, 201)["payment"]["id"]
    [recorded] = trail(finance, "orders.payment", payment_id)
    assert (recorded["action"], recorded["actor"]) == ("insert", "api-key:finance-bot")
    assert PaymentEvent.objects.filter(pgh_obj_id=payment_id).count() == 1

    version = data_of(finance.get(f"/api/v1/orders/{order.id}"))["version"]
    edited = finance.post(f"/api/v1/orders/{order.id}/edit",
                          {"change": [{"order_item_id": str(item.id), "quantity": 3}]},
                          format="json", HTTP_IF_MATCH=f'"{version}"')
    assert edited.status_code == 200, edited.content
    [line] = trail(finance, "orders.orderitem", item.id)
    assert (line["action"], line["actor"]) == ("update", "api-key:finance-bot")
    assert line["changes"]["quantity"] == {"old": 2, "new": 3}
    assert line["changes"]["net_total"] == {"old": "20.00", "new": "30.00"}  # the order's USD
    assert recorded["snapshot"]["amount"] == data_of(paid, 201)["payment"]["amount"]


def test_an_amount_before_a_change_of_currency_shows_in_the_currency_it_was_in():
    product = ProductFactory(price=Decimal("19.99"))
    pricing = keyed("pricing-bot", "catalog:write", "catalog:read")
    response = pricing.patch(f"/api/v1/products/{product.id}",
                             {"price": "2000", "currency": "JPY"}, format="json")
    assert response.status_code == 200, response.content
    update = trail(pricing, "catalog.product", product.id)[0]
    assert update["changes"]["price"] == {"old": "19.99", "new": "2000"}
    assert update["snapshot"]["price"] == "2000"
