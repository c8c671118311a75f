"""POST /returns (SPEC §4.6): quantities bounded by what shipped and is not in another return; bad
input is a 4xx that writes nothing; RMA numbers from a sequence; the database rejects orphans."""

import datetime as dt
import re
import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from inventory import services as inventory_services
from inventory.models import InventoryItem, StockMovement
from orders.models import Order, OrderEvent, OrderItem
from returns import services
from returns.models import Return, ReturnItem
from returns.tests.factories import act, request_return
from stateset.testing import data_of, error_of

pytestmark = pytest.mark.django_db


def snapshot(order_id):
    order = Order.objects.get(id=order_id)
    return {
        "returns": Return.objects.count(),
        "items": ReturnItem.objects.count(),
        "events": OrderEvent.objects.filter(order_id=order_id).count(),
        "order_version": order.version,
        "movements": StockMovement.objects.count(),
    }


def test_over_returning_is_422_per_line_and_writes_nothing(api, make_product, shipped_order):
    a, b = make_product(sku="A"), make_product(sku="B")
    shipped = shipped_order((a, 2), (b, 1))
    before = snapshot(shipped.order.id)
    error = request_return(api, shipped, ("A", 3, "resellable"), ("B", 1, "damaged"), status=422)
    assert error["code"] == "exceeds_returnable"
    assert error["details"]["items"] == {"0": {
        "quantity": ["At most 2 unit(s) of A can be returned."],
        "requested": 3, "returnable": 2, "shipped": 2, "in_other_returns": 0}}
    assert snapshot(shipped.order.id) == before


@pytest.mark.parametrize("quantity, restock", [("1", True), (1.0, True), (True, True),
                                               (1, "yes"), (1, 1), (1, "true")])
def test_a_quantity_or_restock_that_is_not_its_json_type_is_422(api, make_product, shipped_order,
                                                                quantity, restock):
    shipped = shipped_order((make_product(sku="A"), 2))
    before = snapshot(shipped.order.id)
    error = request_return(api, shipped, ("A", quantity, "resellable", restock), status=422)
    assert error["code"] == "validation_error"
    assert set(error["details"]["items"]["0"]) == (
        {"quantity"} if restock is True else {"restock"})
    assert snapshot(shipped.order.id) == before


def test_units_in_other_returns_count_until_rejected_or_cancelled(api, make_product, shipped_order):
    product = make_product(sku="A")
    shipped = shipped_order((product, 3))
    first = request_return(api, shipped, ("A", 2, "resellable"))
    before = snapshot(shipped.order.id)
    error = request_return(api, shipped, ("A", 2, "resellable"), status=422)
    assert error["details"]["items"]["0"]["returnable"] == 1
    assert error["details"]["items"]["0"]["in_other_returns"] == 2
    assert snapshot(shipped.order.id) == before
    second = request_return(api, shipped, ("A", 1, "resellable"))
    # Received and refunded returns still hold their units ...
    for verb in ("approve", "receive", "refund"):
        act(api, second, verb)
    assert request_return(api, shipped, ("A", 1, "resellable"),
                          status=422)["code"] == "exceeds_returnable"
    # ... a cancelled one gives them back.
    act(api, first, "cancel")
    assert request_return(api, shipped, ("A", 2, "resellable"))["status"] == "requested"


def test_a_rejected_return_gives_its_units_back(api, make_product, shipped_order):
    product = make_product(sku="A")
    shipped = shipped_order((product, 1))
    act(api, request_return(api, shipped, ("A", 1, "resellable")), "reject")
    assert request_return(api, shipped, ("A", 1, "resellable"))["status"] == "requested"


def test_units_not_shipped_cannot_be_returned(api, customer, make_product):
    from orders import services as orders_services

    product = make_product(sku="A")
    order = orders_services.order_create(customer_id=customer.id, items=[
        orders_services.OrderLineInput(product_id=product.id, quantity=2)]).order
    item = order.items.get()
    response = api.post("/api/v1/returns", {"order_id": str(order.id), "items": [
        {"order_item_id": str(item.id), "quantity": 1, "condition": "resellable"}]}, format="json")
    assert error_of(response, 422)["details"]["items"]["0"]["returnable"] == 0
    assert not Return.objects.exists()


@pytest.mark.parametrize(("change", "status", "code"), [
    (lambda body: body.update(order_id=str(uuid.uuid4())), 422, "order_not_found"),
    (lambda body: body.update(order_id="not-a-uuid"), 422, "validation_error"),
    (lambda body: body.update(items=[]), 422, "validation_error"),
    (lambda body: body.pop("items"), 422, "validation_error"),
    (lambda body: body.update(bogus=1), 422, "validation_error"),
    (lambda body: body.update(reason=12), 422, "validation_error"),
    (lambda body: body.update(reason="x" * 501), 422, "validation_error"),
    (lambda body: body["items"][0].update(quantity=0), 422, "validation_error"),
    (lambda body: body["items"][0].update(quantity=-1), 422, "validation_error"),
    (lambda body: body["items"][0].update(quantity=10**12), 422, "validation_error"),
    (lambda body: body["items"][0].update(quantity="1"), 422, "validation_error"),  # a string
    (lambda body: body["items"][0].update(condition="smashed"), 422, "validation_error"),
    (lambda body: body["items"][0].update(order_item_id=str(uuid.uuid4())), 422,
     "order_item_not_found"),
    (lambda body: body["items"][0].update(location_id=str(uuid.uuid4())), 422,
     "location_not_found"),
    (lambda body: body["items"].append(dict(body["items"][0])), 422, "validation_error"),
])
def test_bad_input_is_a_4xx_and_writes_nothing(api, make_product, shipped_order, change, status,
                                               code):
    product = make_product(sku="A")
    shipped = shipped_order((product, 2))
    request_return(api, shipped, ("A", 2, "resellable"))  # every unit is now in a return
    before = snapshot(shipped.order.id)
    body = {"order_id": str(shipped.order.id), "items": [
        {"order_item_id": str(shipped.items["A"].id), "quantity": 1, "condition": "resellable"}]}
    change(body)
    response = api.post("/api/v1/returns", body, format="json")
    assert error_of(response, status)["code"] == code
    assert snapshot(shipped.order.id) == before


def test_malformed_json_is_400(api):
    response = api.post("/api/v1/returns", b'{"order_id": ', content_type="application/json")
    assert error_of(response, 400)["code"] == "malformed_json"


def test_an_item_of_another_order_is_422(api, make_product, shipped_order):
    product = make_product(sku="A")
    mine, theirs = shipped_order((product, 1)), shipped_order((product, 1))
    response = api.post("/api/v1/returns", {"order_id": str(mine.order.id), "items": [
        {"order_item_id": str(theirs.items["A"].id), "quantity": 1, "condition": "resellable"}]},
                        format="json")
    assert error_of(response, 422)["code"] == "order_item_not_found"
    assert not Return.objects.exists()


def test_rma_numbers_are_unique_and_sequential(api, make_product, shipped_order):
    product = make_product(sku="A")
    shipped = shipped_order((product, 5))
    numbers = [request_return(api, shipped, ("A", 1, "resellable"))["rma_number"] for _ in range(4)]
    assert all(re.fullmatch(r"RMA-\d{6,}", n) for n in numbers)
    values = [int(n.removeprefix("RMA-")) for n in numbers]
    assert values == list(range(values[0], values[0] + 4))
    assert len(set(Return.objects.values_list("rma_number", flat=True))) == 4


def test_an_orphan_return_is_rejected_by_the_database(make_product, shipped_order):
    shipped = shipped_order((make_product(), 1))
    order = shipped.order
    for order_id, created_at in [(uuid.uuid4(), order.created_at),
                                 # The right order with the wrong partition key is an orphan too.
                                 (order.id, order.created_at - dt.timedelta(days=40))]:
        with pytest.raises(IntegrityError), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            Return.objects.create(order_id=order_id, order_created_at=created_at)
    # the real reference is fine
    Return.objects.create(order_id=order.id, order_created_at=order.created_at)


def test_return_requested_event_names_the_rma(api, make_product, shipped_order):
    shipped = shipped_order((make_product(sku="A"), 2))
    rma = request_return(api, shipped, ("A", 2, "damaged"))
    event = OrderEvent.objects.get(order_id=shipped.order.id, kind="return_requested")
    assert event.data["rma_number"] == rma["rma_number"]
    assert event.data["lines"] == [{"order_item_id": str(shipped.items["A"].id), "sku": "A",
                                    "quantity": 2, "condition": "damaged"}]


def test_receive_puts_units_back_where_they_shipped_from(api, make_product, shipped_order):
    # Stock only at EAST: the order reserves and ships from there although MAIN has the higher
    # priority.
    east = inventory_services.location_create(code="EAST", name="East", priority=10)
    product = make_product(sku="A", at=east)
    shipped = shipped_order((product, 2))
    rma = request_return(api, shipped, ("A", 2, "resellable"))
    act(api, rma, "approve")
    received = act(api, rma, "receive")
    assert received["items"][0]["location_id"] == str(east.id)
    assert InventoryItem.objects.get(product_id=product.id, location_id=east.id).on_hand == 50
    assert not InventoryItem.objects.filter(product_id=product.id).exclude(
        location_id=east.id).exists()


def test_receive_falls_back_to_the_highest_priority_active_location(api, location, make_product,
                                                                    shipped_order):
    east = inventory_services.location_create(code="EAST", name="East", priority=10)
    product = make_product(sku="A", at=east)
    shipped = shipped_order((product, 1))
    inventory_services.location_update(location_id=east.id, is_active=False)
    rma = request_return(api, shipped, ("A", 1, "resellable"))
    act(api, rma, "approve")
    # MAIN, priority 0
    assert act(api, rma, "receive")["items"][0]["location_id"] == str(location.id)
    assert InventoryItem.objects.get(product_id=product.id, location_id=location.id).on_hand == 1


def test_receive_honours_the_lines_location(api, make_product, shipped_order):
    west = inventory_services.location_create(code="WEST", name="West", priority=50)
    product = make_product(sku="A")
    shipped = shipped_order((product, 1))
    response = api.post("/api/v1/returns", {"order_id": str(shipped.order.id), "items": [
        {"order_item_id": str(shipped.items["A"].id), "quantity": 1, "condition": "resellable",
         "location_id": str(west.id)}]}, format="json")
    rma = data_of(response, 201)
    act(api, rma, "approve")
    act(api, rma, "receive")
    movement = StockMovement.objects.get(kind="return")
    assert movement.inventory_item.location_id == west.id and movement.on_hand_delta == 1
    assert movement.reference_type == "return" and movement.reference_id == rma["id"]


def test_the_database_keeps_returned_within_fulfilled(make_product, shipped_order):
    shipped = shipped_order((make_product(sku="A"), 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderItem.objects.filter(id=shipped.items["A"].id).update(quantity_returned=2)


def test_the_service_refuses_bad_lines_before_any_query(django_assert_num_queries):
    line = services.ReturnLineInput(order_item_id=uuid.uuid4(), quantity=0, condition="resellable")
    with django_assert_num_queries(0), pytest.raises(services.ValidationFailed) as caught:
        services.return_create(order_id=uuid.uuid4(), items=[line])
    assert caught.value.details == {
        "items": {"0": {"quantity": ["Give a whole number from 1 to 10000."]}}}


def test_receive_without_any_active_location_is_409_and_writes_nothing(api, location, make_product,
                                                                       shipped_order):
    product = make_product(sku="A")
    shipped = shipped_order((product, 1))
    rma = request_return(api, shipped, ("A", 1, "resellable"))
    act(api, rma, "approve")
    inventory_services.location_update(location_id=location.id, is_active=False)
    movements = StockMovement.objects.count()
    assert act(api, rma, "receive", status=409)["code"] == "no_active_location"
    assert Return.objects.get(id=rma["id"]).status == "approved"
    assert StockMovement.objects.count() == movements
    assert OrderItem.objects.get(id=shipped.items["A"].id).quantity_returned == 0
