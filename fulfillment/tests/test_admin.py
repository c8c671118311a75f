"""Back office: fast changelist, searches that hit indexes, actions through the services."""

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fulfillment import services
from fulfillment.models import Shipment
from inventory.models import InventoryItem, StockMovement
from orders import services as orders_services
from orders.models import Order, OrderItem
from stateset.testing import staff_client

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


# --- the order page's moves that fulfillment adds, and the shipment page's (SPEC §5) ------------


def order_move(order, name: str) -> str:
    return f"/admin/orders/order/{order.id}/move/{name}/"


def shipment_move(shipment, name: str) -> str:
    return f"/admin/fulfillment/shipment/{shipment.id}/move/{name}/"


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def order_state(order) -> tuple:
    order = Order.objects.get(id=order.id)
    return order.status, order.version, order.events.count()


@pytest.fixture
def viewer(db):
    return staff_client("orders.view_order", "fulfillment.view_shipment")


def test_the_order_page_offers_the_moves_legal_now(admin_client, make_order):
    order = make_order()
    page = admin_client.get(f"/admin/orders/order/{order.id}/change/").content.decode()
    for move in ("confirm", "hold", "edit", "shipment", "cancel"):
        assert f'id="move-{move}"' in page, move
    assert 'id="move-release"' not in page and 'id="move-return"' not in page
    orders_services.order_transition(order_id=order.id, to_status="on_hold")
    page = admin_client.get(f"/admin/orders/order/{order.id}/change/").content.decode()
    assert 'id="move-release"' in page and 'id="move-confirm"' not in page
    assert 'id="move-shipment"' not in page  # an order on hold is not shipped


def test_confirm_hold_and_release_go_through_the_status_service(admin_client, make_order):
    order = make_order()
    response = admin_client.post(order_move(order, "confirm"), follow=True)
    assert f"{order.order_number}: now confirmed." in texts(response)
    assert Order.objects.get(id=order.id).status == "confirmed"
    response = admin_client.post(order_move(order, "hold"), {"hold-reason": "fraud check"},
                                 follow=True)
    assert f"{order.order_number}: now on_hold." in texts(response)
    held = Order.objects.get(id=order.id)
    assert held.status == "on_hold"
    assert held.events.filter(kind="status_changed", to_status="on_hold",
                              actor="admin:admin").exists()
    admin_client.post(order_move(order, "release"))
    assert Order.objects.get(id=order.id).status == "processing"


def test_a_move_not_legal_now_is_an_error_message_and_writes_nothing(admin_client, make_order):
    order = make_order()
    before = order_state(order)
    response = admin_client.post(order_move(order, "release"), follow=True)
    assert response.status_code == 200
    assert "Release the hold: not possible now (it is pending)." in texts(response)
    assert order_state(order) == before


def test_status_moves_need_change_order(make_order, viewer):
    order = make_order()
    page = viewer.get(f"/admin/orders/order/{order.id}/change/").content.decode()
    assert 'id="moves"' not in page
    before = order_state(order)
    for move in ("confirm", "hold", "cancel", "edit", "shipment"):
        assert viewer.post(order_move(order, move)).status_code == 403, move
    assert order_state(order) == before


def test_cancel_releases_stock_and_cancels_pending_shipments(admin_client, make_product,
                                                             make_order, ship_order):
    widget = make_product(stock=5)
    order = make_order(quantity=2, product=widget)
    shipment = ship_order(order)
    response = admin_client.post(order_move(order, "cancel"), {"cancel-reason": "customer asked"},
                                 follow=True)
    assert (f"{order.order_number}: cancelled, its stock released and 1 pending shipment(s) "
            "cancelled.") in texts(response)
    assert Order.objects.get(id=order.id).status == "cancelled"
    assert Shipment.objects.get(id=shipment.id).status == "cancelled"
    assert InventoryItem.objects.get(product_id=widget.id).reserved == 0
    again = admin_client.post(order_move(order, "cancel"), follow=True)
    assert "Cancel the order: not possible now (it is cancelled)." in texts(again)


def edit_data(order, **quantities):
    data = {"reason": "phone call", "version": Order.objects.get(id=order.id).version}
    for item in order.items.all():
        data[f"quantity_{item.id}"] = quantities.get(item.sku, item.quantity)
    return data


def test_edit_lines_changes_adds_and_removes_through_the_edit_service(admin_client, make_product,
                                                                      make_multi_order):
    widget, gadget, extra = make_product(stock=10), make_product(stock=10), make_product(stock=10)
    order = make_multi_order((widget, 2), (gadget, 1))
    form = admin_client.get(order_move(order, "edit"))
    assert form.status_code == 200 and widget.sku.encode() in form.content
    data = edit_data(order, **{widget.sku: 3, gadget.sku: 0})
    data.update({"add_0_product": str(extra.id), "add_0_quantity": "4"})
    response = admin_client.post(order_move(order, "edit"), data, follow=True)
    assert (f"{order.order_number}: edited — 1 line(s) changed, 1 line(s) removed, 1 line(s) "
            "added; totals and stock follow.") in texts(response)
    lines = dict(Order.objects.get(id=order.id).items.values_list("sku", "quantity"))
    assert lines == {widget.sku: 3, extra.sku: 4}
    reserved = dict(InventoryItem.objects.values_list("product__sku", "reserved"))
    assert reserved == {widget.sku: 3, gadget.sku: 0, extra.sku: 4}
    assert Order.objects.get(id=order.id).events.filter(kind="edited").count() == 1


def test_an_edit_the_service_refuses_is_an_error_message_and_changes_nothing(
        admin_client, make_product, make_order, ship_order):
    widget = make_product(stock=10)
    order = make_order(quantity=2, product=widget)
    ship_order(order)  # both units sit in a pending shipment
    before = order_state(order)
    response = admin_client.post(order_move(order, "edit"), edit_data(order, **{widget.sku: 1}))
    assert response.status_code == 200  # the form again, with the refusal above it
    assert any(text.startswith("Edit lines:") for text in texts(response))
    assert order_state(order) == before
    assert order.items.get().quantity == 2
    assert InventoryItem.objects.get(product_id=widget.id).reserved == 2


def test_a_stale_edit_form_is_refused(admin_client, make_order):
    order = make_order(quantity=2)
    data = edit_data(order, **{order.items.get().sku: 3})
    orders_services.order_update(order_id=order.id, changes={"notes": "moved"})
    admin_client.post(order_move(order, "edit"), data)
    assert order.items.get().quantity == 2


def test_create_a_shipment_from_the_order_page(admin_client, make_product, make_multi_order,
                                               main):
    widget, gadget = make_product(stock=10), make_product(stock=10)
    order = make_multi_order((widget, 3), (gadget, 2))
    form = admin_client.get(order_move(order, "shipment"))
    assert form.status_code == 200 and b"MAIN" in form.content
    items = {item.sku: item for item in order.items.all()}
    response = admin_client.post(order_move(order, "shipment"), {
        f"units_{items[widget.sku].id}": "2", f"units_{items[gadget.sku].id}": "1",
        "location": str(main.id), "carrier": "ups", "service": "ground",
        "tracking_number": "1Z-ADMIN"}, follow=True)
    shipment = Shipment.objects.get()
    assert (f"{order.order_number}: shipment {shipment.id} created for 3 unit(s) from MAIN."
            in texts(response))
    assert dict(shipment.items.values_list("order_item__sku", "quantity")) == {widget.sku: 2,
                                                                               gadget.sku: 1}
    assert (shipment.carrier, shipment.tracking_number) == ("ups", "1Z-ADMIN")
    assert Order.objects.get(id=order.id).status == "processing"


def test_a_shipment_the_service_refuses_is_an_error_message_and_nothing_is_written(
        admin_client, make_order, east):
    order = make_order(quantity=2)
    item = order.items.get()
    before = order_state(order)
    response = admin_client.post(order_move(order, "shipment"), {
        f"units_{item.id}": "2", "location": str(east.id), "carrier": "ups"})
    assert response.status_code == 200
    assert any(text.startswith("Create a shipment: The order's stock for these items is not "
                               "reserved at this location.") for text in texts(response))
    assert not Shipment.objects.exists()
    assert order_state(order) == before


def test_creating_a_shipment_needs_add_shipment(make_order):
    order = make_order()
    clerk = staff_client("orders.view_order", "orders.change_order")
    page = clerk.get(f"/admin/orders/order/{order.id}/change/").content.decode()
    assert 'id="move-confirm"' in page and 'id="move-shipment"' not in page
    assert clerk.get(order_move(order, "shipment")).status_code == 403
    item = order.items.get()
    response = clerk.post(order_move(order, "shipment"), {f"units_{item.id}": "1",
                                                          "carrier": "ups"})
    assert response.status_code == 403
    assert not Shipment.objects.exists()


def test_ship_and_deliver_from_the_shipment_page(admin_client, make_product, make_order,
                                                 ship_order):
    widget = make_product(stock=5)
    order = make_order(quantity=2, product=widget)
    shipment = ship_order(order)
    page = admin_client.get(f"/admin/fulfillment/shipment/{shipment.id}/change/").content.decode()
    assert 'id="move-ship"' in page and 'id="move-cancel"' in page
    assert 'id="move-deliver"' not in page
    response = admin_client.post(shipment_move(shipment, "ship"), follow=True)
    assert f"{order.order_number}: shipment {shipment.id} from MAIN shipped." in texts(response)
    assert Shipment.objects.get(id=shipment.id).status == "shipped"
    row = InventoryItem.objects.get(product_id=widget.id)
    assert (row.on_hand, row.reserved) == (3, 0)
    page = admin_client.get(f"/admin/fulfillment/shipment/{shipment.id}/change/").content.decode()
    assert 'id="move-deliver"' in page and 'id="move-ship"' not in page
    admin_client.post(shipment_move(shipment, "deliver"))
    assert Order.objects.get(id=order.id).status == "delivered"
    again = admin_client.post(shipment_move(shipment, "ship"), follow=True)
    assert "Ship: not possible now (it is delivered)." in texts(again)


def test_shipping_an_order_on_hold_is_refused_by_the_service(admin_client, make_order,
                                                            ship_order):
    order = make_order()
    shipment = ship_order(order)
    orders_services.order_transition(order_id=order.id, to_status="on_hold")
    response = admin_client.post(shipment_move(shipment, "ship"), follow=True)
    assert any(text.startswith("Ship:") and "hold" in text for text in texts(response))
    shipment.refresh_from_db()
    assert (shipment.status, shipment.version) == ("pending", 1)
    assert not StockMovement.objects.filter(kind="ship").exists()


def test_cancel_a_pending_shipment_from_its_page(admin_client, make_order, ship_order):
    order = make_order()
    shipment = ship_order(order)
    response = admin_client.post(shipment_move(shipment, "cancel"),
                                 {"cancel-reason": "wrong box"}, follow=True)
    assert "cancelled; its units are open again" in texts(response)[0]
    assert Shipment.objects.get(id=shipment.id).status == "cancelled"


def test_shipment_moves_need_change_shipment(make_order, ship_order, viewer):
    shipment = ship_order(make_order())
    page = viewer.get(f"/admin/fulfillment/shipment/{shipment.id}/change/").content.decode()
    assert 'id="moves"' not in page
    for move in ("ship", "deliver", "cancel"):
        assert viewer.post(shipment_move(shipment, move)).status_code == 403
    shipment.refresh_from_db()
    assert (shipment.status, shipment.version) == ("pending", 1)
    assert viewer.post("/admin/fulfillment/shipment/", {
        "action": "mark_shipped", "_selected_action": [str(shipment.id)]}).status_code in (200,
                                                                                           302)
    assert Shipment.objects.get(id=shipment.id).status == "pending"


def test_shipment_page_has_a_fixed_number_of_queries(admin_client, make_product,
                                                     make_multi_order, ship_order):
    one = ship_order(make_multi_order((make_product(stock=5), 1)))
    many = ship_order(make_multi_order(*[(make_product(stock=5), 1) for _ in range(20)]))
    counts = []
    for shipment in (one, many):
        url = f"/admin/fulfillment/shipment/{shipment.id}/change/"
        admin_client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1]


def test_order_page_with_shipments_has_the_same_queries_at_1_and_50_lines(
        admin_client, make_product, make_multi_order, ship_order):
    counts = []
    for size in (1, 50):
        order = make_multi_order(*[(make_product(stock=5), 2) for _ in range(size)])
        shipped = ship_order(order, items=[services.ShipmentLineInput(order_item_id=item.id,
                                                                      quantity=1)
                                           for item in order.items.all()])
        services.shipment_ship(shipment_id=shipped.id)
        ship_order(order)  # the other unit of every line, pending
        url = f"/admin/orders/order/{order.id}/change/"
        admin_client.get(url)
        with CaptureQueriesContext(connection) as captured:
            page = admin_client.get(url)
        assert page.content.decode().count('class="order-line"') == size
        assert page.content.count(b"MAIN") >= 2
        counts.append(len(captured))
    assert counts[0] == counts[1]


def test_a_move_needs_the_right_to_see_the_object_too(make_order):
    order = make_order()
    blind = staff_client("fulfillment.add_shipment")  # may create shipments, may not see orders
    assert blind.get(order_move(order, "shipment")).status_code == 403
    item = order.items.get()
    assert blind.post(order_move(order, "shipment"), {f"units_{item.id}": "1",
                                                      "carrier": "ups"}).status_code == 403
    assert not Shipment.objects.exists()
