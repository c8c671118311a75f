"""SPEC §5/§10: every admin action checks the user's permission (``change`` at least), not just
access to the page. This walks EVERY action of every registered ModelAdmin — the site-wide ones
(``delete_selected``), each class's own and those added later with ``OrderAdmin.extend`` — and
proves that a staff user holding every *view* permission is neither offered one nor able to run
one with a forged POST: the database is byte-for-byte what it was. Exports are reads (SPEC §4.8:
the filtered list as CSV): their permission is ``view``, and a viewer runs them without changing a
row. The same holds for every button of an object page (each ModelAdmin's own URLs)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.test import Client, RequestFactory
from django.urls import URLPattern, reverse

from catalog.models import Product
from customers.models import Customer
from customers.tests.factories import AddressFactory
from fulfillment import services as fulfillment_services
from imports.models import Import
from inventory import services as inventory_services
from orders import services as orders_services
from orders.rollups import order_days_refresh
from returns import services as returns_services
from stateset import services as platform_services
from webhooks import services as webhook_services
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db
PRODUCT_APPS = ("stateset", "catalog", "customers", "inventory", "orders", "fulfillment", "returns",
                "webhooks", "imports")


def every_action() -> list[tuple[admin.ModelAdmin, str, object]]:
    return [(model_admin, name, func) for model_admin in admin.site._registry.values()
            for func, name, _ in model_admin._get_base_actions()]  # type: ignore[attr-defined]


def is_export(func: object) -> bool:
    return (tuple(getattr(func, "allowed_permissions", ())) == ("view",)
            and getattr(func, "__name__", "").startswith("export_"))


def write_actions() -> list[tuple[admin.ModelAdmin, str, object]]:
    return [item for item in every_action() if not is_export(item[2])]


def exports() -> list[tuple[admin.ModelAdmin, str, object]]:
    return [item for item in every_action() if is_export(item[2])]


def action_id(item: tuple[admin.ModelAdmin, str, object]) -> str:
    model_admin, name, _ = item
    return f"{model_admin.model._meta.label}.{name}"


@pytest.fixture
def world(db):
    """At least one row of every model an action works on, each in a state where its actions
    would change something (pending orders, a pending shipment, a requested return, a failed
    delivery, a live key, an active reservation)."""
    customer = Customer.objects.create(email="walker@example.com", first_name="A", last_name="B")
    location = inventory_services.location_create(code="MAIN", name="Main", priority=0)
    product = Product.objects.create(sku="WALK-1", name="Walker", price=Decimal("10.00"))
    inventory_services.stock_receive(product_id=product.id, location_id=location.id, quantity=50,
                                     reason="test stock")

    def order(quantity: int = 1):
        return orders_services.order_create(customer_id=customer.id, items=[
            orders_services.OrderLineInput(product_id=product.id, quantity=quantity)]).order

    order()  # pending, with an active reservation
    coming = Product.objects.create(sku="WALK-2", name="Coming", price=Decimal("5.00"),
                                    allow_backorder=True)
    orders_services.order_create(customer_id=customer.id, channel="shopify", external_id="#walk",
                                 items=[
        # waits in the backorder queue
        orders_services.OrderLineInput(product_id=coming.id, quantity=1)])
    shipped = order(2)
    shipment = fulfillment_services.shipment_create(order_id=shipped.id, carrier="UPS").shipment
    fulfillment_services.shipment_ship(shipment_id=shipment.id)
    fulfillment_services.shipment_deliver(shipment_id=shipment.id)
    item = shipped.items.get()
    returns_services.return_create(order_id=shipped.id, reason="walker", items=[
        returns_services.ReturnLineInput(order_item_id=item.id, quantity=1,
                                         condition="resellable")])
    fulfillment_services.shipment_create(order_id=order().id, carrier="UPS")  # a pending shipment
    endpoint = webhook_services.endpoint_create(url="https://hooks.example.com/in", events=["*"])
    webhook_services.dispatch()
    Delivery.objects.filter(endpoint=endpoint).update(status=Delivery.Status.FAILED, attempts=8)
    platform_services.api_key_create(name="walker", scopes=["*"])
    Group.objects.create(name="walkers")
    Import.objects.create(kind=Import.Kind.PRODUCTS, status=Import.Status.SUCCEEDED)
    AddressFactory(customer=customer)
    platform_services.idempotency_claim(owner="user:0", key="walker", method="POST",
                                        path="/api/v1/x", request_hash="0" * 64)
    order_days_refresh(days=1)  # the dashboard's rollup of the orders above
    return locals()


def snapshot() -> dict[str, list[dict]]:
    return {model._meta.label: list(model._default_manager.order_by("pk").values())
            for label in (*PRODUCT_APPS, "auth")
            for model in apps.get_app_config(label).get_models()}


@pytest.fixture
def viewer(db):
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return User.objects.get(pk=user.pk)  # a fresh instance: no stale permission cache


def test_the_walk_covers_site_class_and_extended_actions():
    names = {action_id(item) for item in every_action()}
    assert "orders.Order.cancel_orders" in names  # added by fulfillment with OrderAdmin.extend
    assert "orders.Order.confirm_orders" in names
    assert "catalog.Product.delete_selected" in names  # the site-wide action
    assert len(names) >= 15


@pytest.mark.parametrize("item", write_actions(), ids=action_id)
def test_every_action_declares_a_permission_beyond_view(item):
    model_admin, name, func = item
    permissions = getattr(func, "allowed_permissions", ())
    assert permissions, f"{action_id(item)} declares no permission"
    assert "view" not in permissions


@pytest.mark.parametrize("item", write_actions(), ids=action_id)
def test_a_view_only_user_is_not_offered_the_action_and_a_forged_post_changes_nothing(
        item, world, viewer, admin_user):
    model_admin, name, func = item
    model = model_admin.model
    request = RequestFactory().get("/")
    request.user = viewer
    assert name not in model_admin.get_actions(request)
    request.user = admin_user
    if all(getattr(model_admin, f"has_{p}_permission")(request) for p in func.allowed_permissions):
        # It is offered to whoever holds the permission: the refusal above is the permission's.
        assert name in model_admin.get_actions(request)

    client = Client()
    client.force_login(viewer)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert client.get(url).status_code == 200  # the viewer may see the list...
    pks = [str(pk) for pk in model.objects.values_list("pk", flat=True)[:10]]
    assert pks, f"the world has no {model._meta.label} row to act on"
    before = snapshot()
    response = client.post(url, {"action": name, "_selected_action": pks, "index": "0",
                                 # what an action's own confirmation form would send
                                 "post": "yes", "apply": "1", "quantity": "5", "reason": "forged"})
    assert response.status_code in (200, 302, 403)
    assert snapshot() == before  # ...but not change it


def test_the_walk_finds_the_exports():
    assert {action_id(item) for item in exports()} >= {
        "catalog.Product.export_csv", "customers.Customer.export_csv",
        "inventory.InventoryItem.export_csv", "orders.Order.export_csv_with_items"}


@pytest.mark.parametrize("item", exports(), ids=action_id)
def test_a_viewer_may_export_and_the_export_changes_nothing(item, world, viewer):
    model_admin, name, _ = item
    model = model_admin.model
    request = RequestFactory().get("/")
    request.user = viewer
    assert name in model_admin.get_actions(request)
    client = Client()
    client.force_login(viewer)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    pks = [str(pk) for pk in model.objects.values_list("pk", flat=True)[:10]]
    assert pks, f"the world has no {model._meta.label} row to export"
    before = snapshot()
    response = client.post(url, {"action": name, "_selected_action": pks, "index": "0"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert len(b"".join(response.streaming_content).splitlines()) == len(pks) + 1 or \
        name.endswith("_with_items")
    assert snapshot() == before


# --- the buttons of object pages: each ModelAdmin's own URLs ------------------------------------

STANDARD_VIEWS = ("changelist", "add", "history", "delete", "change", "autocomplete")


def page_buttons() -> list[tuple[admin.ModelAdmin, URLPattern]]:
    """Every URL a ModelAdmin adds to Django's own (``get_urls``): the moves of object pages."""
    buttons: list[tuple[admin.ModelAdmin, URLPattern]] = []
    for model_admin in admin.site._registry.values():
        opts = model_admin.model._meta
        standard = {f"{opts.app_label}_{opts.model_name}_{view}" for view in STANDARD_VIEWS}
        buttons += [(model_admin, pattern) for pattern in model_admin.get_urls()
                    if isinstance(pattern, URLPattern) and pattern.name
                    and pattern.name not in standard]
    return buttons


def button_id(item: tuple[admin.ModelAdmin, URLPattern]) -> str:
    return str(item[1].name)


def test_the_walk_covers_the_object_pages_buttons():
    names = {button_id(item) for item in page_buttons()}
    assert {"inventory_inventoryitem_adjust", "inventory_inventoryitem_receive",
            "inventory_inventoryitem_transfer", "webhooks_delivery_resend",
            "imports_import_apply"} <= names


@pytest.mark.parametrize("item", page_buttons(), ids=button_id)
def test_a_view_only_user_cannot_press_an_object_pages_button(item, world, viewer):
    """A forged POST to each button, filled with what its form would send, with a real row's id
    for each of its path arguments: refused, nothing written."""
    model_admin, pattern = item
    model = model_admin.model
    pk = model.objects.values_list("pk", flat=True).first()
    assert pk is not None, f"the world has no {model._meta.label} row"
    kwargs = {name: pk for name in pattern.pattern.converters}
    url = reverse(f"admin:{pattern.name}", kwargs=kwargs)
    client = Client()
    client.force_login(viewer)
    before = snapshot()
    response = client.post(url, {"quantity": "5", "delta": "-1", "reason": "forged",
                                 "to_location": "MAIN", "note": "forged", "amount": "1.00"})
    assert response.status_code in (302, 403, 404), (url, response.status_code)
    assert snapshot() == before
