"""Back office: fast changelist, searches that hit indexes, actions through the services."""

import pytest

from fulfillment import services
from fulfillment.models import Shipment
from inventory.models import InventoryItem, StockMovement
from orders.models import Order, OrderItem

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("count", [1, 20])
def test_changelist_query_count_is_fixed(admin_client, make_product, make_order, ship_order,
                                         django_assert_max_num_queries, count):
    product = make_product(stock=count)
    for _ in range(count):
        ship_order(make_order(product=product))
    admin_client.get("/admin/fulfillment/shipment/")  # session and permission caches
    with django_assert_max_num_queries(9) as captured:
        response = admin_client.get("/admin/fulfillment/shipment/")
    assert response.status_code == 200
    assert response.content.count(b'class="field-order_number"') == count
    with django_assert_max_num_queries(len(captured)):
        admin_client.get("/admin/fulfillment/shipment/?status__exact=pending")


def test_search_by_tracking_number_and_order_number(admin_client, make_order, ship_order):
    order = make_order()
    tracked = ship_order(order, tracking_number="1ZTRACK")
    other = ship_order(make_order())
    order.refresh_from_db()
    by_tracking = admin_client.get("/admin/fulfillment/shipment/", {"q": "1ZTRACK"}).content
    assert str(tracked.id).encode() in by_tracking and str(other.id).encode() not in by_tracking
    by_number = admin_client.get("/admin/fulfillment/shipment/", {"q": order.order_number}).content
    assert str(tracked.id).encode() in by_number and str(other.id).encode() not in by_number


def test_mark_shipped_action_goes_through_the_service(admin_client, make_product, make_order,
                                                      ship_order):
    widget = make_product(stock=5)
    order = make_order(quantity=2, product=widget)
    shipment = ship_order(order)
    response = admin_client.post("/admin/fulfillment/shipment/", {
        "action": "mark_shipped", "_selected_action": [str(shipment.id)]}, follow=True)
    assert response.status_code == 200 and b"1 shipment(s) shipped" in response.content
    assert Shipment.objects.get(id=shipment.id).status == "shipped"
    assert OrderItem.objects.get(order_id=order.id).quantity_fulfilled == 2
    row = InventoryItem.objects.get(product_id=widget.id)
    assert (row.on_hand, row.reserved) == (3, 0)
    assert StockMovement.objects.filter(kind="ship", reference_id=str(shipment.id)).count() == 1
    assert Order.objects.get(id=order.id).status == "shipped"
    # A second time the state machine refuses, and the admin says so instead of applying it.
    response = admin_client.post("/admin/fulfillment/shipment/", {
        "action": "cancel_shipments", "_selected_action": [str(shipment.id)]}, follow=True)
    assert b"cannot go from shipped to cancelled" in response.content
    assert Shipment.objects.get(id=shipment.id).status == "shipped"
    admin_client.post("/admin/fulfillment/shipment/", {
        "action": "mark_delivered", "_selected_action": [str(shipment.id)]}, follow=True)
    assert Order.objects.get(id=order.id).status == "delivered"


def test_change_page_saves_tracking_through_the_service_and_order_page_lists_shipments(
        admin_client, make_order, ship_order):
    order = make_order()
    shipment = ship_order(order)
    page = admin_client.get(f"/admin/fulfillment/shipment/{shipment.id}/change/")
    assert page.status_code == 200 and b"Widget" in page.content
    response = admin_client.post(f"/admin/fulfillment/shipment/{shipment.id}/change/", {
        "carrier": "fedex", "service": "", "tracking_number": "FX-1",
        "items-TOTAL_FORMS": "1", "items-INITIAL_FORMS": "1", "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000", "items-0-id": str(shipment.items.get().id),
        "items-0-shipment": str(shipment.id),
    })
    assert response.status_code == 302, response.content[:2000]
    shipment.refresh_from_db()
    assert (shipment.carrier, shipment.tracking_number, shipment.version) == ("fedex", "FX-1", 2)
    order_page = admin_client.get(f"/admin/orders/order/{order.id}/change/")
    assert b"FX-1" in order_page.content and b"fedex" in order_page.content


def test_admin_cannot_add_or_delete_shipments(admin_client, make_order, ship_order):
    shipment = ship_order(make_order())
    assert admin_client.get("/admin/fulfillment/shipment/add/").status_code == 403
    assert admin_client.post(
        f"/admin/fulfillment/shipment/{shipment.id}/delete/").status_code == 403
    assert services.TRANSITIONS["pending"] == {"shipped", "cancelled"}


def test_change_page_shows_a_refusal_and_saves_nothing(admin_client, make_order, ship_order):
    ship_order(make_order(), tracking_number="FX-TAKEN")
    shipment = ship_order(make_order())
    response = admin_client.post(f"/admin/fulfillment/shipment/{shipment.id}/change/", {
        "carrier": "fedex", "service": "", "tracking_number": "FX-TAKEN",
        "items-TOTAL_FORMS": "1", "items-INITIAL_FORMS": "1", "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000", "items-0-id": str(shipment.items.get().id),
        "items-0-shipment": str(shipment.id),
    }, follow=True)
    errors = response.context["adminform"].form.errors
    assert errors == {"__all__": ["Another shipment already has this tracking number."]}
    shipment.refresh_from_db()
    assert (shipment.tracking_number, shipment.version) == (None, 1)


def test_admin_cancel_action_goes_through_the_service(admin_client, make_order, make_product):
    product = make_product(stock=5)
    order = make_order(quantity=2, product=product)
    response = admin_client.post("/admin/orders/order/",
                                 {"action": "cancel_orders", "_selected_action": [str(order.id)]},
                                 follow=True)
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert InventoryItem.objects.get(product_id=product.id).reserved == 0
    # A second cancel is refused by the state machine and reported, not applied.
    response = admin_client.post("/admin/orders/order/",
                                 {"action": "cancel_orders", "_selected_action": [str(order.id)]},
                                 follow=True)
    assert b"cannot go from cancelled to cancelled" in response.content
