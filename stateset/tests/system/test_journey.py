"""An order's whole life over the API, across every app: taken, shipped, delivered, paid, returned,
restocked and refunded — with the stock, the ledger, the timeline and the outbox agreeing; and an
order reaching a webhook subscriber, signed."""

from decimal import Decimal

import orjson
import pytest

from customers.tests.factories import CustomerFactory
from inventory.models import InventoryItem, StockMovement
from orders import services as order_services
from orders.models import Order
from orders.tests.factories import GUIDE_CUSTOMER, GUIDE_PRODUCT, StockedProductFactory
from stateset.testing import data_of, error_of
from webhooks.models import Delivery, Event
from webhooks.tests.test_webhooks import Receiver, verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer(db):
    return CustomerFactory(id=GUIDE_CUSTOMER, email="LoadTest@Example.com", first_name="Load",
                           last_name="Test", phone="")


@pytest.fixture
def guide_product(db):
    return StockedProductFactory(id=GUIDE_PRODUCT, sku="TEST-001", name="Test product",
                                 price=Decimal("29.99"), stock=1000)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def post(api, path, body=None, status=200):
    return data_of(api.post(path, body or {}, format="json"), status)


def test_the_guide_order_from_checkout_to_refund(api, customer, guide_product):
    order = post(api, "/api/v1/orders", {
        "customer_id": str(customer.id),
        "items": [{"product_id": str(guide_product.id), "sku": "TEST-001", "quantity": 2,
                   "unit_price": 29.99}],
        "total_amount": 59.98,
    }, status=201)
    path = f"/api/v1/orders/{order['id']}"
    stock = InventoryItem.objects.get(product_id=guide_product.id)
    assert (stock.on_hand, stock.reserved) == (1000, 2)

    shipment = post(api, "/api/v1/shipments", {"order_id": order["id"], "carrier": "UPS",
                                               "tracking_number": "1Z999"}, status=201)
    post(api, f"/api/v1/shipments/{shipment['id']}/ship")
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (998, 0)
    post(api, f"/api/v1/shipments/{shipment['id']}/deliver")
    assert data_of(api.get(path))["status"] == "delivered"

    unpaid = api.post(f"/api/v1/orders/{order['id']}/payment", {"payment_status": "refunded"},
                      format="json")
    assert error_of(unpaid, 422)["code"] == "validation_error"  # refunds set that, not clients
    paid = post(api, f"{path}/payment", {"payment_status": "paid", "reference": "ch_123"})
    assert paid["payment_status"] == "paid"
    again = api.post(f"{path}/payment", {"payment_status": "authorized"}, format="json")
    assert error_of(again, 409)["code"] == "payment_exceeds"  # the whole total is captured already

    item_id = data_of(api.get(path))["items"][0]["id"]
    rma = post(api, "/api/v1/returns", {"order_id": order["id"], "reason": "too big", "items": [
        {"order_item_id": item_id, "quantity": 2, "condition": "resellable"}]}, status=201)
    for verb in ("approve", "receive", "refund"):
        post(api, f"/api/v1/returns/{rma['id']}/{verb}")
    stock.refresh_from_db()
    assert stock.on_hand == 1000  # both units back on the shelf

    final = data_of(api.get(path))
    assert (final["status"], final["payment_status"]) == ("refunded", "refunded")
    assert [s["status"] for s in final["shipments"]] == ["delivered"]
    assert [r["status"] for r in final["returns"]] == ["refunded"]
    assert Decimal(final["returns"][0]["refund_amount"]) == Decimal("59.98")
    kinds = [event["kind"] for event in final["timeline"]]
    for kind in ("created", "reserved", "shipment_created", "shipped", "delivered", "payment",
                 "return_requested", "refunded"):
        assert kind in kinds, kinds
    assert Order.objects.get(id=order["id"]).version == final["version"]
    ledger = list(StockMovement.objects.filter(inventory_item_id=stock.id).order_by("created_at",
                                                                                    "id")
                  .values_list("kind", "on_hand_delta", "reserved_delta"))
    assert ledger == [("receive", 1000, 0), ("reserve", 0, 2), ("ship", -2, -2), ("return", 2, 0)]
    stock.refresh_from_db()
    assert (sum(row[1] for row in ledger), sum(row[2] for row in ledger)) == (stock.on_hand,
                                                                              stock.reserved)
    events = set(Event.objects.values_list("type", flat=True))
    assert {"order.created", "inventory.reserved", "shipment.shipped", "shipment.delivered",
            "return.approved", "return.refunded", "order.status_changed"} <= events


def test_an_order_reaches_its_subscriber_signed(api, customer, receiver,
                                                django_capture_on_commit_callbacks):
    product = StockedProductFactory(sku="HOOK-1", name="Hooked", price=Decimal("12.50"), stock=5)
    created = data_of(api.post("/api/v1/webhooks",
                               {"url": receiver.url, "events": ["order.created"]},
                               format="json"), 201)
    secret = created["secret"]

    with django_capture_on_commit_callbacks(execute=True):
        placed = order_services.order_create(customer_id=customer.id, items=[
            order_services.OrderLineInput(product_id=product.id, quantity=2)]).order

    assert len(receiver.requests) == 1  # inventory.reserved was written too, but nobody subscribed
    headers, body = receiver.requests[0]
    assert verify(secret, headers, body)
    payload = orjson.loads(body)
    event = Event.objects.get(type="order.created")
    assert headers["StateSet-Event-Id"] == str(event.id) == payload["id"]
    assert headers["StateSet-Event-Type"] == "order.created" == payload["type"]
    assert payload["data"]["order_number"] == placed.order_number
    assert payload["data"]["total_amount"] == "25.00"
    assert payload["data"]["items"] == [{"sku": "HOOK-1", "quantity": 2, "unit_price": "12.50"}]
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("succeeded", 1, 200)
    assert set(Event.objects.values_list("type", flat=True)) == {"inventory.received",  # stocking
                                                                 "order.created",
                                                                 "inventory.reserved"}
    assert not Event.objects.filter(dispatched_at__isnull=True).exists()
