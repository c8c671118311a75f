"""The order endpoints fulfillment serves (``POST /orders/{id}/status|cancel``, SPEC §4.4): any move
of the order's machine, and the cancel use case (pending shipments and reservations with it)."""

import uuid

import pytest

from fulfillment import services
from inventory.models import InventoryItem, Reservation, StockMovement
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
