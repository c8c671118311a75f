"""POST /orders (SPEC §4.4): catalog prices, reservation, one transaction, nothing on failure."""

import json
import uuid
from decimal import Decimal

import orjson
import pytest

from catalog.tests.factories import ProductFactory
from inventory import selectors as inventory_selectors
from inventory import services as inventory_services
from inventory.models import InventoryItem, Reservation, StockMovement
from inventory.tests.factories import LocationFactory, assert_ledger_matches_counters, stock
from orders import services
from orders.models import Order, OrderEvent, OrderItem
from orders.tests.factories import GUIDE_CUSTOMER, GUIDE_PRODUCT, guide_payload
from stateset.errors import InsufficientStock
from stateset.locking import Rank, recording
from stateset.testing import client_for, run_threads, run_threads_cleanly
from webhooks.models import Event
from webhooks.tests.factories import outbox

pytestmark = pytest.mark.django_db


def snapshot():
    return {
        "orders": Order.objects.count(),
        "items": OrderItem.objects.count(),
        "events": OrderEvent.objects.count(),
        "reservations": Reservation.objects.count(),
        "movements": StockMovement.objects.count(),
        "reserved": sum(InventoryItem.objects.values_list("reserved", flat=True)),
    }


def test_the_guides_payload_succeeds_as_written(api, customer, guide_product):
    body = orjson.dumps(guide_payload())
    response = api.post("/api/v1/orders", body, content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY="test-1700000000000-0.123")
    assert response.status_code == 201, response.content
    order = response.json()["data"]
    assert order["total_amount"] == "59.98" and order["subtotal"] == "59.98" and order[
        "currency"] == "USD"
    assert order["status"] == "pending" and order["order_number"].startswith("ORD-")
    assert order["customer"]["id"] == str(GUIDE_CUSTOMER)
    [item] = order["items"]
    assert item["product_id"] == str(GUIDE_PRODUCT) and item["quantity"] == 2
    assert item["unit_price"] == "29.99" and item["total_price"] == "59.98"
    assert [e["kind"] for e in order["timeline"]] == ["created", "reserved"]
    assert response["ETag"] == f'"{order["version"]}"'
    reservation = Reservation.objects.get(reference_id=order["id"])
    assert reservation.quantity == 2 and reservation.status == "active"
    assert reservation.expires_at is None
    assert InventoryItem.objects.get(product_id=GUIDE_PRODUCT).reserved == 2


def test_the_create_answer_is_the_detail_answer(api, customer, make_product):
    """The 201 is rendered from the rows just written (no read-back); it must equal a fresh GET."""
    a, b = make_product(sku="B-2", price="1.50"), make_product(sku="A-1", price="2.25")
    created = api.post("/api/v1/orders", {"customer_id": str(customer.id), "notes": "n", "items": [
        {"product_id": str(a.id), "quantity": 2}, {"product_id": str(b.id), "quantity": 1}],
        "shipping_address": {"line1": "1 Main", "city": "Town", "country": "de"}}, format="json")
    assert created.status_code == 201
    fetched = api.get(f"/api/v1/orders/{created.json()['data']['id']}")
    assert created.json()["data"] == fetched.json()["data"]
    assert created["ETag"] == fetched["ETag"]


def test_creating_an_order_publishes_order_created_with_its_lines(customer, make_product):
    product = make_product(sku="HOOK-1", price="12.50", stock=5)
    placed = services.order_create(customer_id=customer.id, items=[
        services.OrderLineInput(product_id=product.id, quantity=2)]).order
    payload = Event.objects.get(type="order.created").payload
    assert payload["order_id"] == str(placed.id)
    assert payload["order_number"] == placed.order_number
    assert payload["total_amount"] == "25.00"
    assert payload["items"] == [{"sku": "HOOK-1", "quantity": 2, "unit_price": "12.50"}]
    # The reservation is published with it, in the same transaction.
    assert set(Event.objects.exclude(type="inventory.received")  # the stocking, before
               .values_list("type", flat=True)) == {"order.created", "inventory.reserved"}


def test_an_order_that_rolls_back_publishes_nothing(api, customer, make_product):
    product = make_product(stock=5)
    with outbox() as written:
        response = api.post("/api/v1/orders", {"customer_id": str(customer.id),
                                               "items": [{"product_id": str(product.id),
                                                          "quantity": 6}]},
                            format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "insufficient_stock"
    assert written == []


@pytest.mark.parametrize(("allow_backorder", "ranks"), [
    # No line can wait: the one row is locked by its conditional UPDATE (the optimistic plan).
    (False, [Rank.INVENTORY_ITEM]),
    # A line that may wait holds its product's queue (PRODUCT_STOCK) before every row is locked.
    (True, [Rank.PRODUCT_STOCK, Rank.INVENTORY_ITEM]),
])
def test_creating_an_order_locks_only_stock_rows(make_product, customer, allow_backorder, ranks):
    product = make_product(stock=5, allow_backorder=allow_backorder)
    with recording() as recorder:
        services.order_create(customer_id=customer.id, items=[
            services.OrderLineInput(product_id=product.id, quantity=1)])
    assert recorder.ranks == [ranks]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("east_units", [0, 4])
def test_an_order_whose_row_changed_under_its_plan_is_made_again_under_locks(
        monkeypatch, customer, east_units):
    """The order's unlocked plan reads MAIN's 2 units; before its UPDATE a cart reserves them. The
    order's transaction is rolled back whole and the order made again with the rows locked: from
    EAST when it has stock, else a 409 — one order or none, one reservation per unit sold."""
    product = ProductFactory(sku="RACED-2", price=Decimal("5.00"))
    main, east = LocationFactory(code="MAIN", priority=0), LocationFactory(code="EAST", priority=9)
    stock(product, main, 2)
    if east_units:
        stock(product, east, east_units)
    original, reads = inventory_selectors.sellable_rows, []

    def read_then_lose_the_race(product_ids):
        rows = original(product_ids)
        reads.append(len(rows))
        if len(reads) == 1:
            run_threads_cleanly(1, lambda _: inventory_services.stock_reserve(
                lines=[inventory_services.ReserveLine(sku="RACED-2", quantity=2)],
                reference_type="cart", reference_id="thief"))
        return rows

    monkeypatch.setattr(inventory_selectors, "sellable_rows", read_then_lose_the_race)
    line = services.OrderLineInput(product_id=product.id, quantity=2)
    if east_units:
        order = services.order_create(customer_id=customer.id, items=[line]).order
        (held,) = Reservation.objects.filter(reference_id=str(order.id))
        assert held.inventory_item.location_id == east.id and held.quantity == 2
        assert Order.objects.count() == 1
    else:
        with pytest.raises(InsufficientStock):
            services.order_create(customer_id=customer.id, items=[line])
        assert not Order.objects.exists() and not OrderItem.objects.exists()
    assert len(reads) == 2  # the order's plan, the cart's; the order's second try locks instead
    assert Reservation.objects.filter(status="active").count() == 1 + (east_units > 0)
    assert_ledger_matches_counters()


def test_order_numbers_come_from_a_sequence(make_order):
    first, second = make_order(), make_order()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.order_number != second.order_number
    assert int(second.order_number.removeprefix("ORD-")) == int(
        first.order_number.removeprefix("ORD-")) + 1
    assert len(first.order_number) >= len("ORD-000001")


def test_items_can_name_products_by_sku_in_any_case(api, customer, make_product):
    product = make_product(sku="Mixed-Case-9", price="10.00")
    response = api.post("/api/v1/orders", {"customer_id": str(customer.id),
                                           "items": [{"sku": "mixed-CASE-9", "quantity": 3}]},
                        format="json")
    assert response.status_code == 201, response.content
    assert response.json()["data"]["total_amount"] == "30.00"
    assert OrderItem.objects.get().product_id == product.id


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        (lambda p: p["items"][0].update(unit_price=30.00), 422, "price_mismatch"),
        (lambda p: p.update(total_amount=59.99), 422, "total_mismatch"),
        (lambda p: p["items"][0].update(quantity=5000) or p.pop("total_amount"), 409,
         "insufficient_stock"),
        (lambda p: p.update(customer_id=str(uuid.uuid4())), 422, "customer_not_found"),
        (lambda p: p["items"][0].update(product_id=str(uuid.uuid4())), 422, "product_not_found"),
        (lambda p: p["items"][0].update(sku="OTHER-SKU"), 422, "product_not_found"),
        (lambda p: p["items"][0].update(quantity=0), 422, "validation_error"),
        (lambda p: p["items"][0].update(quantity=-2), 422, "validation_error"),
        (lambda p: p["items"][0].update(quantity=10**30), 422, "validation_error"),
        (lambda p: p["items"][0].update(quantity="two"), 422, "validation_error"),
        (lambda p: p["items"][0].update(quantity=1.5), 422, "validation_error"),
        (lambda p: p.update(items=[]), 422, "validation_error"),
        (lambda p: p.pop("customer_id"), 422, "validation_error"),
        (lambda p: p.update(customer_id="not-a-uuid"), 422, "validation_error"),
        (lambda p: p.update(notes="x" * 5001), 422, "validation_error"),
        (lambda p: p.update(shipping_address={"line1": "1 Road", "city": "Town", "country": "USA"}),
         422, "validation_error"),
        (lambda p: p["items"][0].update(unit_price=-1), 422, "validation_error"),
        (lambda p: p["items"][0].pop("product_id") and p["items"][0].pop("sku"), 422,
         "validation_error"),
    ],
)
def test_a_rejected_order_writes_nothing(api, customer, guide_product, change, status, code):
    payload = guide_payload()
    change(payload)
    before = snapshot()
    response = api.post("/api/v1/orders", json.dumps(payload), content_type="application/json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert snapshot() == before


def test_an_inactive_product_is_rejected_and_nothing_written(api, customer, make_product):
    product = make_product(active=False)
    before = snapshot()
    response = api.post("/api/v1/orders", {"customer_id": str(customer.id),
                                           "items": [{"product_id": str(product.id),
                                                      "quantity": 1}]}, format="json")
    assert response.status_code == 422 and response.json()["error"]["code"] == "product_inactive"
    assert snapshot() == before


def test_insufficient_stock_names_every_short_line_and_writes_nothing(api, customer, make_product):
    plenty, short_a, short_b = make_product(stock=50), make_product(stock=1), make_product(stock=0)
    before = snapshot()
    response = api.post("/api/v1/orders", {"customer_id": str(customer.id), "items": [
        {"product_id": str(plenty.id), "quantity": 5},
        {"product_id": str(short_a.id), "quantity": 2},
        {"product_id": str(short_b.id), "quantity": 1},
    ]}, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "insufficient_stock"
    short = {line["sku"]: (line["requested"], line["available"])
             for line in error["details"]["lines"]}
    assert short == {short_a.sku: (2, 1), short_b.sku: (1, 0)}
    assert snapshot() == before


def test_a_multi_line_order_totals_in_decimal(api, customer, make_product):
    a, b = make_product(price="0.10"), make_product(price="0.20")
    response = api.post("/api/v1/orders", {"customer_id": str(customer.id), "items": [
        {"product_id": str(a.id), "quantity": 3}, {"product_id": str(b.id), "quantity": 1}]},
                        format="json")
    assert response.status_code == 201
    # 0.1*3 + 0.2 is 0.5000000000000001 in float
    assert response.json()["data"]["total_amount"] == "0.50"


def test_replaying_an_idempotency_key_creates_nothing_new(api, customer, guide_product):
    body = orjson.dumps(guide_payload())
    first = api.post("/api/v1/orders", body, content_type="application/json",
                     HTTP_IDEMPOTENCY_KEY="order-k")
    second = api.post("/api/v1/orders", body, content_type="application/json",
                      HTTP_IDEMPOTENCY_KEY="order-k")
    assert first.status_code == second.status_code == 201
    assert first.json()["data"] == second.json()["data"]
    assert second["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1 and Reservation.objects.count() == 1


def _fire(raw_key: str, count: int, body: bytes, key_for=lambda i: None) -> list[int]:
    def post(i: int) -> int:
        headers = {"HTTP_IDEMPOTENCY_KEY": key_for(i)} if key_for(i) else {}
        return client_for(raw_key).post("/api/v1/orders", body, content_type="application/json",
                                        **headers).status_code

    return run_threads(count, post)


@pytest.mark.django_db(transaction=True)
def test_concurrent_orders_for_15_units_yield_exactly_15_orders(make_key, customer, make_product):
    product = make_product(sku="SCARCE-15", stock=15)
    body = orjson.dumps({"customer_id": str(customer.id),
                         "items": [{"sku": "SCARCE-15", "quantity": 1}]})
    statuses = _fire(make_key("orders:write"), 40, body)
    assert sorted(statuses) == [201] * 15 + [409] * 25
    assert Order.objects.count() == 15
    item = InventoryItem.objects.get(product_id=product.id)
    assert item.reserved == 15 and item.on_hand == 15
    assert Reservation.objects.filter(status="active").count() == 15


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_of_one_key_yield_one_order(make_key, customer, guide_product):
    statuses = _fire(make_key("*"), 10, orjson.dumps(guide_payload()), key_for=lambda i: "same-key")
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    assert Order.objects.count() == 1
    assert Reservation.objects.count() == 1
