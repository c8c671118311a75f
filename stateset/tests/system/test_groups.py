"""SPEC §5 "Who may do what": the four groups the data migration creates, each proved to see and
change only its part — in the back office (lists 200/403, object pages editable or read-only, add
pages, the moves of a page) and over the API with its staff session (scopes from the same
permissions, SPEC §3; writes carry the CSRF token). Every refusal writes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from rest_framework.test import APIClient

from catalog.models import Product
from customers.models import Customer
from fulfillment import services as fulfillment_services
from inventory import services as inventory_services
from inventory.models import InventoryItem, StockMovement
from orders import services as orders_services
from orders.models import Order, Payment
from returns import services as returns_services
from returns.models import Return
from stateset import roles
from stateset.testing import data_of, error_of, staff_groups

pytestmark = pytest.mark.django_db
SUPPORT, WAREHOUSE, FINANCE, READ_ONLY = (roles.SUPPORT, roles.WAREHOUSE, roles.FINANCE,
                                          roles.READ_ONLY)
BUSINESS_APPS = tuple(roles.MODELS)


# --- the world ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _groups(db):
    staff_groups()  # made again by the migration's operation if a transactional test flushed them



@pytest.fixture
def world(db):
    """A customer, SKU-1 with 20 on hand at DC-NORTH (and DC-SOUTH to move stock to), a pending
    order, and a delivered, paid order of 5 with three returns of one unit: requested, approved and
    received (restocked: 16 on hand)."""
    customer = Customer.objects.create(email="rosa@example.com", first_name="Rosa", last_name="D")
    north = inventory_services.location_create(code="DC-NORTH", name="North", priority=0)
    south = inventory_services.location_create(code="DC-SOUTH", name="South", priority=10)
    product = Product.objects.create(sku="SKU-1", name="Lamp", price=Decimal("10.00"))
    inventory_services.stock_receive(product_id=product.id, location_id=north.id, quantity=20,
                                     reason="opening stock")

    def order(quantity: int) -> Order:
        return orders_services.order_create(customer_id=customer.id, items=[
            orders_services.OrderLineInput(product_id=product.id, quantity=quantity)]).order

    pending = order(1)
    delivered = order(5)
    orders_services.payment_record(order_id=delivered.id, act="capture")
    shipment = fulfillment_services.shipment_create(order_id=delivered.id, carrier="UPS").shipment
    fulfillment_services.shipment_ship(shipment_id=shipment.id)
    fulfillment_services.shipment_deliver(shipment_id=shipment.id)
    line = delivered.items.get()

    def rma(*moves: str) -> Return:
        created = returns_services.return_create(order_id=delivered.id, reason="broken", items=[
            returns_services.ReturnLineInput(order_item_id=line.id, quantity=1,
                                             condition="resellable")]).rma
        for move in moves:
            returns_services.ACTIONS[move](return_id=created.id)
        return Return.objects.get(pk=created.pk)

    requested, approved, received = rma(), rma("approve"), rma("approve", "receive")
    row = InventoryItem.objects.get(product=product, location=north)
    assert row.on_hand == 16
    return locals()


def member(group: str) -> User:
    user = User.objects.create_user(f"{group.lower()}-{User.objects.count()}", password="x",
                                    is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return User.objects.get(pk=user.pk)  # no stale permission cache


def admin_for(group: str) -> Client:
    client = Client()
    client.force_login(member(group))
    return client


def session_for(group: str) -> APIClient:
    """An API client on the member's admin session, sending the CSRF token as a browser would."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(member(group))
    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    client.credentials(HTTP_X_CSRFTOKEN=token)
    return client


def snapshot() -> dict[str, list[dict]]:
    return {model._meta.label: list(model._default_manager.order_by("pk").values())
            for label in BUSINESS_APPS for model in apps.get_app_config(label).get_models()}


# --- the groups the migration made ----------------------------------------------------------------


def held(group: str) -> set[str]:
    return {f"{app}.{codename}" for app, codename in Group.objects.get(name=group).permissions
            .values_list("content_type__app_label", "codename")}


def test_the_migration_made_the_four_groups_with_exactly_their_permissions():
    assert set(Group.objects.values_list("name", flat=True)) >= {SUPPORT, WAREHOUSE, FINANCE,
                                                                 READ_ONLY}
    for group, permissions in roles.ROLES.items():
        assert held(group) == permissions, group
    support, warehouse, finance, read_only = (held(g) for g in (SUPPORT, WAREHOUSE, FINANCE,
                                                                READ_ONLY))
    assert {"orders.add_order", "orders.change_order", "customers.add_customer",
            "customers.change_address", "returns.add_return", "returns.change_return",
            "catalog.view_product", "inventory.view_inventoryitem"} <= support
    assert not {"catalog.change_product", "inventory.change_inventoryitem", "orders.add_payment",
                "orders.record_payment", "returns.refund_return", "returns.receive_return",
                "fulfillment.view_shipment"} & support
    assert {"inventory.change_inventoryitem", "inventory.change_location",
            "inventory.change_reservation", "inventory.change_stockmovement",
            "fulfillment.add_shipment", "fulfillment.change_shipment", "returns.view_return",
            "returns.receive_return", "orders.view_order", "customers.view_customer",
            "catalog.view_product"} <= warehouse
    assert not {"inventory.add_location", "returns.change_return", "orders.change_order",
                "customers.change_customer", "catalog.change_product"} & warehouse
    assert finance - read_only == {"orders.add_payment", "orders.record_payment",
                                   "returns.refund_return"}
    assert all(codename.split(".")[1].startswith("view_") for codename in read_only)
    # No group deletes anything, and none may set prices (granted by name, by an operator).
    for permissions in (support, warehouse, finance, read_only):
        assert not any(".delete_" in p for p in permissions)
        assert "orders.set_prices" not in permissions


def test_read_only_views_every_model_of_the_business():
    """"View everything": a model added to a business app needs its place in roles.MODELS and a
    migration that calls roles.apply_roles again."""
    read_only = held(READ_ONLY)
    for label in BUSINESS_APPS:
        for model in apps.get_app_config(label).get_models():
            permission = f"{label}.view_{model._meta.model_name}"
            assert permission in read_only, (
                f"{permission}: add the model to stateset.roles.MODELS and a migration")


def test_applying_the_roles_again_changes_nothing_and_reversing_removes_the_groups():
    before = {group: held(group) for group in roles.ROLES}
    support = Group.objects.get(name=SUPPORT)
    support.permissions.add(Permission.objects.get(codename="delete_product"))  # drifted by hand
    with connection.schema_editor() as editor:
        roles.apply_roles(apps, editor)
        roles.apply_roles(apps, editor)
    assert {group: held(group) for group in roles.ROLES} == before
    assert Group.objects.get(name=SUPPORT).pk == support.pk  # the same group, members kept
    assert Permission.objects.filter(codename="receive_return").count() == 1
    with connection.schema_editor() as editor:
        roles.remove_roles(apps, editor)
    assert not Group.objects.filter(name__in=roles.ROLES).exists()
    with connection.schema_editor() as editor:
        roles.apply_roles(apps, editor)
    assert {group: held(group) for group in roles.ROLES} == before


# --- the back office --------------------------------------------------------------------------

LISTS = ("orders/order", "customers/customer", "returns/return", "catalog/product",
         "inventory/inventoryitem", "inventory/location", "inventory/stockmovement",
         "fulfillment/shipment", "webhooks/delivery", "webhooks/endpoint", "stateset/apikey")
SEES = {
    SUPPORT: {"orders/order", "customers/customer", "returns/return", "catalog/product",
              "inventory/inventoryitem", "inventory/location", "inventory/stockmovement"},
    WAREHOUSE: {"orders/order", "customers/customer", "returns/return", "catalog/product",
                "inventory/inventoryitem", "inventory/location", "inventory/stockmovement",
                "fulfillment/shipment"},
    FINANCE: set(LISTS),
    READ_ONLY: set(LISTS),
}
ADDS = {  # the add pages each group may open (orders and shipments are made by their moves)
    SUPPORT: {"customers/customer"},
    WAREHOUSE: set(),
    FINANCE: set(),
    READ_ONLY: set(),
}


@pytest.mark.parametrize("group", list(roles.ROLES))
def test_each_group_sees_its_lists_and_opens_only_its_add_pages(world, group):
    client = admin_for(group)
    for path in LISTS:
        status = client.get(f"/admin/{path}/").status_code
        assert status == (200 if path in SEES[group] else 403), (group, path, status)
    for path in ("customers/customer", "catalog/product", "inventory/location",
                 "webhooks/endpoint", "stateset/apikey"):
        status = client.get(f"/admin/{path}/add/").status_code
        assert status == (200 if path in ADDS[group] else 403), (group, path, status)
    index = client.get("/admin/")
    assert index.status_code == 200
    assert (b'href="/admin/webhooks/"' in index.content) == (group in (FINANCE, READ_ONLY))
    assert b'href="/admin/auth/"' not in index.content  # users and groups: superusers only


# (group, page, the input that shows it editable); a read-only page shows the value, no input.
EDITABLE = [
    ("customers/customer/{customer.pk}", 'name="email"', {SUPPORT}),
    ("inventory/inventoryitem/{row.pk}", 'name="reorder_point"', {WAREHOUSE}),
    ("inventory/location/{north.pk}", 'name="name"', {WAREHOUSE}),
    ("orders/order/{pending.pk}", 'name="notes"', {SUPPORT}),
    ("catalog/product/{product.pk}", 'name="price"', set()),
]


@pytest.mark.parametrize("group", list(roles.ROLES))
def test_object_pages_are_editable_only_for_the_group_that_changes_them(world, group):
    client = admin_for(group)
    for page, field, editors in EDITABLE:
        url = "/admin/" + page.format(**world) + "/change/"
        response = client.get(url)
        if response.status_code == 403:
            continue  # a list the group does not see at all (checked above)
        assert response.status_code == 200, (group, url)
        assert (field in response.content.decode()) == (group in editors), (group, url)


def test_a_page_that_is_read_only_for_the_group_refuses_its_post(world):
    before = snapshot()
    customer = world["customer"]
    for group in (WAREHOUSE, FINANCE, READ_ONLY):
        response = admin_for(group).post(f"/admin/customers/customer/{customer.pk}/change/", {
            "email": "taken@example.com", "first_name": "X", "last_name": "Y"})
        assert response.status_code == 403, group
    assert snapshot() == before
    edited = admin_for(SUPPORT).post(f"/admin/customers/customer/{customer.pk}/change/", {
        "email": "rosa.d@example.com", "first_name": "Rosa", "last_name": "D", "phone": "",
        "metadata": "{}", "addresses-TOTAL_FORMS": "0", "addresses-INITIAL_FORMS": "0"})
    assert edited.status_code == 302, edited.content[:3000]
    assert Customer.objects.get(pk=customer.pk).email == "rosa.d@example.com"


def test_only_the_warehouse_moves_stock_from_a_rows_page(world):
    row = world["row"]
    page = f"/admin/inventory/inventoryitem/{row.pk}/change/"
    before = snapshot()
    for group in (SUPPORT, FINANCE, READ_ONLY):
        client = admin_for(group)
        assert b'id="stock-moves"' not in client.get(page).content, group
        forged = client.post(f"/admin/inventory/inventoryitem/{row.pk}/adjust/",
                             {"delta": "-3", "reason": "damaged"})
        assert forged.status_code == 403, group
    assert snapshot() == before
    warehouse = admin_for(WAREHOUSE)
    assert b'id="stock-moves"' in warehouse.get(page).content
    done = warehouse.post(f"/admin/inventory/inventoryitem/{row.pk}/adjust/",
                          {"delta": "-3", "reason": "damaged"}, follow=True)
    assert ("SKU-1 @ DC-NORTH: adjusted \u22123 (damaged), on hand 13"
            in [str(m) for m in done.context["messages"]])
    assert StockMovement.objects.get(kind="adjust").actor.startswith("admin:warehouse-")


@pytest.mark.parametrize("group", list(roles.ROLES))
def test_each_group_is_offered_only_the_bulk_actions_its_permissions_allow(world, group, rf):
    from django.contrib import admin

    request = rf.get("/")
    request.user = member(group)
    offered = {f"{model_admin.model._meta.label}.{name}"
               for model_admin in admin.site._registry.values()
               if model_admin.has_view_permission(request)
               for name in model_admin.get_actions(request)}
    writes = {action for action in offered if ".export_" not in action}
    expected = {
        SUPPORT: set(),  # orders' and returns' moves: on their pages (bo-orders), see below
        WAREHOUSE: {"inventory.InventoryItem.receive_stock",
                    "inventory.Reservation.release_reservations"},
        FINANCE: set(),
        READ_ONLY: set(),
    }[group]
    assert expected <= writes, (group, writes)
    # Never: deleting, keys, webhooks, the catalog, or another group's stock moves.
    assert not any(action.endswith(".delete_selected") for action in writes), writes
    assert not {a for a in writes if a.startswith(("stateset.", "webhooks.", "catalog."))}
    if group != WAREHOUSE:
        assert not {a for a in writes if a.startswith(("inventory.", "fulfillment."))}, writes


MOVE_ACTIONS = {  # bulk actions that are moves of their own (SPEC §5), and who may run them
    "orders.Order.mark_paid": {FINANCE},
    "returns.Return.receive_returns": {WAREHOUSE},
    "returns.Return.refund_returns": {FINANCE},
}


def test_the_bulk_moves_are_offered_to_the_group_whose_move_they_are(world, rf):
    from django.contrib import admin

    for group in roles.ROLES:
        request = rf.get("/")
        request.user = member(group)
        for label, groups in MOVE_ACTIONS.items():
            model_admin = admin.site._registry[apps.get_model(label.rsplit(".", 1)[0])]
            offered = label.rsplit(".", 1)[1] in model_admin.get_actions(request)
            assert offered == (group in groups), (group, label)


# --- the API, with the staff session --------------------------------------------------------------


def order_body(world) -> dict:
    return {"customer_id": str(world["customer"].id),
            "items": [{"product_id": str(world["product"].id), "quantity": 1}]}


def adjust_body(world) -> dict:
    return {"sku": "SKU-1", "location_id": str(world["north"].id), "delta": -1,
            "reason": "damaged"}


def return_body(world) -> dict:
    return {"order_id": str(world["delivered"].id), "reason": "too big", "items": [
        {"order_item_id": str(world["line"].id), "quantity": 1, "condition": "resellable"}]}


def refused(client: APIClient, method: str, path: str, body: dict | None = None) -> None:
    before = snapshot()
    response = getattr(client, method)(f"/api/v1{path}", body or {}, format="json")
    assert error_of(response, 403)["code"] == "insufficient_scope", (method, path)
    assert snapshot() == before, (method, path)


def test_the_groups_scopes_follow_from_their_permissions():
    """SPEC §3's rule, with payments a move (their write permission gives no orders:write)."""
    from stateset.api.auth import scopes_for_permissions

    assert scopes_for_permissions({"orders.add_payment", "orders.view_payment"}) == (
        "orders:read",)
    assert scopes_for_permissions(roles.ROLES[SUPPORT]) == (
        "catalog:read", "customers:read", "customers:write", "inventory:read", "orders:read",
        "orders:write", "returns:read", "returns:write")
    assert scopes_for_permissions(roles.ROLES[WAREHOUSE]) == (
        "catalog:read", "customers:read", "fulfillment:read", "fulfillment:write",
        "inventory:read", "inventory:write", "orders:read", "returns:read")
    assert scopes_for_permissions(roles.ROLES[FINANCE]) == scopes_for_permissions(
        roles.ROLES[READ_ONLY]) == (
        "catalog:read", "customers:read", "fulfillment:read", "inventory:read", "keys:read",
        "orders:read", "returns:read", "webhooks:read")


READS = ("/orders", "/customers", "/products", "/inventory", "/shipments", "/returns",
         "/locations")
READABLE = {
    SUPPORT: {"/orders", "/customers", "/products", "/inventory", "/returns", "/locations"},
    WAREHOUSE: set(READS),
    FINANCE: set(READS),
    READ_ONLY: set(READS),
}


@pytest.mark.parametrize("group", list(roles.ROLES))
def test_each_groups_session_reads_only_its_resources(world, group):
    client = session_for(group)
    for path in READS:
        response = client.get(f"/api/v1{path}")
        if path in READABLE[group]:
            assert data_of(response)["total"] >= 1, (group, path)
        else:
            assert error_of(response, 403)["code"] == "insufficient_scope", (group, path)
    # Endpoints and keys are managed, never merely read, over the API.
    for path in ("/webhooks", "/api-keys"):
        assert client.get(f"/api/v1{path}").status_code == 403, (group, path)


def test_a_warehouse_session_moves_stock_ships_and_receives_but_takes_no_order(world):
    client = session_for(WAREHOUSE)
    assert data_of(client.get(f"/api/v1/orders/{world['pending'].id}"))["id"]
    refused(client, "post", "/orders", order_body(world))
    refused(client, "post", "/customers", {"email": "new@example.com"})
    refused(client, "post", "/returns", return_body(world))
    refused(client, "post", f"/returns/{world['requested'].id}/approve")
    refused(client, "post", f"/returns/{world['received'].id}/refund")
    refused(client, "post", f"/orders/{world['pending'].id}/payments", {"kind": "capture"})
    assert data_of(client.post("/api/v1/inventory/adjust", adjust_body(world),
                               format="json"))["on_hand"] == 15
    shipment = data_of(client.post("/api/v1/shipments", {"order_id": str(world["pending"].id),
                                                         "carrier": "UPS"}, format="json"), 201)
    shipped = data_of(client.post(f"/api/v1/shipments/{shipment['id']}/ship", {}, format="json"))
    assert shipped["status"] == "shipped"
    received = data_of(client.post(f"/api/v1/returns/{world['approved'].id}/receive", {},
                                   format="json"))
    assert received["status"] == "received"


def test_a_support_session_takes_orders_and_returns_but_moves_no_stock_and_refunds_nothing(world):
    client = session_for(SUPPORT)
    data_of(client.post("/api/v1/orders", order_body(world), format="json"), 201)
    data_of(client.post("/api/v1/customers", {"email": "new@example.com", "first_name": "N",
                                               "last_name": "C"}, format="json"), 201)
    created = data_of(client.post("/api/v1/returns", return_body(world), format="json"), 201)
    approved = data_of(client.post(f"/api/v1/returns/{created['id']}/approve", {},
                                   format="json"))
    assert approved["status"] == "approved"
    refused(client, "post", "/inventory/adjust", adjust_body(world))
    refused(client, "post", "/shipments", {"order_id": str(world["pending"].id), "carrier": "UPS"})
    refused(client, "post", f"/returns/{world['approved'].id}/receive")
    refused(client, "post", f"/returns/{world['received'].id}/refund")
    refused(client, "post", f"/orders/{world['pending'].id}/payments", {"kind": "capture"})
    refused(client, "post", "/products", {"sku": "NEW-1", "name": "New", "price": "1.00"})


def test_a_finance_session_records_payments_and_refunds_and_changes_nothing_else(world):
    client = session_for(FINANCE)
    pending = world["pending"]
    paid = data_of(client.post(f"/api/v1/orders/{pending.id}/payments",
                               {"kind": "capture", "provider": "stripe", "reference": "ch_1"},
                               format="json"), 201)
    assert paid["payment_status"] == "paid"
    assert Payment.objects.get(order_id=pending.id, reference="ch_1").actor.startswith("finance-")
    refunded = data_of(client.post(f"/api/v1/returns/{world['received'].id}/refund", {},
                                   format="json"))
    assert refunded["status"] == "refunded"
    refused(client, "post", "/orders", order_body(world))
    refused(client, "patch", f"/orders/{pending.id}", {"notes": "changed"})
    refused(client, "post", f"/orders/{pending.id}/cancel", {"reason": "x"})
    refused(client, "post", "/returns", return_body(world))
    refused(client, "post", f"/returns/{world['requested'].id}/approve")
    refused(client, "post", "/inventory/adjust", adjust_body(world))
    refused(client, "post", "/customers", {"email": "new@example.com"})


def test_a_read_only_session_writes_nothing_anywhere(world):
    client = session_for(READ_ONLY)
    pending = world["pending"]
    for method, path, body in (
        ("post", "/orders", order_body(world)),
        ("patch", f"/orders/{pending.id}", {"notes": "changed"}),
        ("post", f"/orders/{pending.id}/payments", {"kind": "capture"}),
        ("post", f"/orders/{pending.id}/cancel", {"reason": "x"}),
        ("post", "/customers", {"email": "new@example.com"}),
        ("post", "/products", {"sku": "NEW-1", "name": "New", "price": "1.00"}),
        ("post", "/inventory/adjust", adjust_body(world)),
        ("post", "/shipments", {"order_id": str(pending.id), "carrier": "UPS"}),
        ("post", "/returns", return_body(world)),
        ("post", f"/returns/{world['requested'].id}/approve", {}),
        ("post", f"/returns/{world['approved'].id}/receive", {}),
        ("post", f"/returns/{world['received'].id}/refund", {}),
    ):
        refused(client, method, path, body)


def test_session_writes_need_the_csrf_token_whatever_the_group(world):
    for group, path, body in ((SUPPORT, "/orders", order_body(world)),
                              (WAREHOUSE, "/inventory/adjust", adjust_body(world)),
                              (FINANCE, f"/orders/{world['pending'].id}/payments",
                               {"kind": "capture"})):
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(member(group))
        before = snapshot()
        response = client.post(f"/api/v1{path}", body, format="json")
        assert error_of(response, 403)["code"] == "forbidden"
        assert "CSRF" in response.content.decode()
        assert snapshot() == before


def test_api_keys_are_judged_by_scopes_alone(world, client_with):
    """The moves' staff permissions do not narrow a key: returns:write receives and refunds."""
    client = client_with("returns:write", "returns:read")
    assert data_of(client.post(f"/api/v1/returns/{world['approved'].id}/receive", {},
                               format="json"))["status"] == "received"
    assert data_of(client.post(f"/api/v1/returns/{world['received'].id}/refund", {},
                               format="json"))["status"] == "refunded"
