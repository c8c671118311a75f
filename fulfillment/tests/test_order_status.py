"""The order endpoints fulfillment serves (``POST /orders/{id}/status|cancel``, SPEC §4.4): any move
of the order's machine, and the cancel use case (pending shipments and reservations with it)."""

import uuid

import pytest

from fulfillment import services
from inventory.models import InventoryItem, Reservation, StockMovement
from orders import services as orders_services
from orders.models import Order, OrderEvent
from orders.under_lock import TRANSITIONS
from webhooks.models import Event

pytestmark = pytest.mark.django_db
STATUSES = [s.value for s in Order.Status]


def put_in(order, status, payment_status="pending"):
    Order.objects.filter(id=order.id).update(status=status, payment_status=payment_status)


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_every_transition_is_allowed_or_409(api, make_order, current, target):
    order = make_order()
    put_in(order, current, payment_status="paid")
    events_before = OrderEvent.objects.filter(order_id=order.id, kind="status_changed").count()
    response = api.post(f"/api/v1/orders/{order.id}/status", {"status": target, "reason": "test"},
                        format="json")
    order.refresh_from_db()
    if target in TRANSITIONS[current]:
        assert response.status_code == 200, response.content
        assert order.status == target
        event = OrderEvent.objects.filter(order_id=order.id,
                                          kind="status_changed").latest("created_at")
        assert (event.from_status, event.to_status, event.message) == (current, target, "test")
    else:
        assert response.status_code == 409, response.content
        assert response.json()["error"]["code"] == "invalid_transition"
        assert order.status == current
        assert OrderEvent.objects.filter(order_id=order.id,
                                         kind="status_changed").count() == events_before



def test_refunding_an_unpaid_cancelled_order_is_409(api, make_order):
    order = make_order()
    put_in(order, "cancelled", payment_status="pending")
    response = api.post(f"/api/v1/orders/{order.id}/status", {"status": "refunded"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_transition"


def test_cancel_releases_the_reservations(api, make_order, make_product):
    product = make_product(stock=10)
    order = make_order(quantity=4, product=product)
    assert InventoryItem.objects.get(product_id=product.id).reserved == 4
    response = api.post(f"/api/v1/orders/{order.id}/cancel", {"reason": "customer asked"},
                        format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["status"] == "cancelled"
    assert [e["kind"] for e in data["timeline"]][-2:] == ["status_changed", "released"]
    item = InventoryItem.objects.get(product_id=product.id)
    assert item.reserved == 0 and item.on_hand == 10
    assert Reservation.objects.get(reference_id=str(order.id)).status == "released"
    assert StockMovement.objects.filter(reference_id=str(order.id), kind="release").count() == 1
    again = api.post(f"/api/v1/orders/{order.id}/cancel", {}, format="json")
    assert again.status_code == 409


def test_unknown_order_cancel_is_404(api):
    assert api.post(f"/api/v1/orders/{uuid.uuid4()}/cancel", {}, format="json").status_code == 404


def test_cancel_needs_the_write_scope(client_with, make_order):
    order = make_order()
    reader = client_with("orders:read")
    assert reader.post(f"/api/v1/orders/{order.id}/cancel", {}, format="json").status_code == 403
    assert Order.objects.get(id=order.id).status == "pending"


def test_status_changes_and_cancellation_are_published(make_order,
                                                       django_capture_on_commit_callbacks):
    placed = make_order()
    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(order_id=placed.id, reason="customer asked")
    changed = Event.objects.get(type="order.status_changed").payload
    assert changed == {"order_id": str(placed.id), "order_number": placed.order_number,
                       "from_status": "pending", "to_status": "cancelled",
                       "reason": "customer asked"}
    assert Event.objects.get(type="order.cancelled").payload == changed


def put_processing(order):
    put_in(order, "processing")


def test_marking_an_order_shipped_ships_its_reserved_units(api, make_order, make_product):
    product = make_product(stock=10)
    order = make_order(quantity=4, product=product)
    put_processing(order)
    response = api.post(f"/api/v1/orders/{order.id}/status",
                        {"status": "shipped", "reason": "sent from the shop floor"}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["status"], data["fulfillment_status"]) == ("shipped", "fulfilled")
    assert [i["quantity_fulfilled"] for i in data["items"]] == [4]
    row = InventoryItem.objects.get(product_id=product.id)
    assert (row.on_hand, row.reserved) == (6, 0)  # no reservation outlives the order
    assert Reservation.objects.get(reference_id=str(order.id)).status == "fulfilled"
    ship = StockMovement.objects.get(reference_id=str(order.id), kind="ship")
    assert (ship.reference_type, ship.on_hand_delta, ship.reserved_delta) == ("order", -4, -4)
    moved = OrderEvent.objects.get(order_id=order.id, kind="status_changed")
    assert (moved.from_status, moved.to_status, moved.message) == (
        "processing", "shipped", "sent from the shop floor")
    delivered = api.post(f"/api/v1/orders/{order.id}/status", {"status": "delivered"},
                         format="json")
    assert delivered.status_code == 200 and delivered.json()["data"]["status"] == "delivered"


def test_an_order_back_from_hold_with_everything_shipped_just_moves(api, make_order, ship_order):
    order = make_order(quantity=2)
    shipment = ship_order(order)
    services.shipment_ship(shipment_id=shipment.id)
    for status in ("on_hold", "processing", "shipped"):
        response = api.post(f"/api/v1/orders/{order.id}/status", {"status": status},
                            format="json")
        assert response.status_code == 200, response.content
    assert StockMovement.objects.filter(kind="ship").count() == 1


def test_marking_shipped_is_refused_while_a_pending_shipment_holds_units(api, make_order,
                                                                         ship_order):
    order = make_order(quantity=3)
    ship_order(order)
    order.refresh_from_db()
    before = (order.version, InventoryItem.objects.get().reserved)
    response = api.post(f"/api/v1/orders/{order.id}/status", {"status": "shipped"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "pending_shipments"
    order.refresh_from_db()
    assert (order.version, InventoryItem.objects.get().reserved) == before
    assert not StockMovement.objects.filter(kind="ship").exists()


def test_marking_shipped_is_refused_while_units_wait_for_stock(api, customer, make_product):
    product = make_product(stock=1, allow_backorder=True)
    order = orders_services.order_create(customer_id=customer.id, items=[
        orders_services.OrderLineInput(product_id=product.id, quantity=3)]).order
    put_processing(order)
    response = api.post(f"/api/v1/orders/{order.id}/status", {"status": "shipped"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "backordered"
    assert Order.objects.get(id=order.id).status == "processing"
    assert InventoryItem.objects.get(product_id=product.id).reserved == 1


@pytest.mark.parametrize("by", ["reference_id", "reservation_ids"])
def test_an_orders_reservations_cannot_be_released_from_under_it(api, make_order, ship_order, by):
    order = make_order(quantity=2)
    reservation = Reservation.objects.get(reference_id=str(order.id))
    body = ({"reference_id": str(order.id), "reason": "x"} if by == "reference_id"
            else {"reservation_ids": [str(reservation.id)], "reason": "x"})
    response = api.post("/api/v1/inventory/release", body, format="json")
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert (error["code"], error["details"]["order_ids"]) == ("reserved_for_order", [str(order.id)])
    assert Reservation.objects.get(id=reservation.id).status == "active"
    assert not StockMovement.objects.filter(kind="release").exists()
    shipment = ship_order(order)  # the order can still ship what it holds
    services.shipment_ship(shipment_id=shipment.id)
    assert InventoryItem.objects.get().reserved == 0


def test_a_clients_own_reservation_named_order_is_still_released(api, make_product):
    product = make_product(stock=5)
    reserved = api.post("/api/v1/inventory/reserve", {
        "items": [{"product_id": str(product.id), "quantity": 2}], "reference_type": "order",
        "reference_id": "SHOP-ORDER-1"}, format="json")
    assert reserved.status_code == 201, reserved.content
    released = api.post("/api/v1/inventory/release", {"reference_id": "SHOP-ORDER-1",
                                                       "reason": "x"}, format="json")
    assert released.status_code == 200 and released.json()["data"]["released"] == 1
    assert InventoryItem.objects.get(product_id=product.id).reserved == 0
