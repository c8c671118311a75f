"""Order edits (SPEC §4.4.3): change a placed order, moving stock by the difference only, all or
nothing, with totals recomputed. Served by fulfillment: a line may not drop below what ships."""

from decimal import Decimal

import pytest

from fulfillment import services
from inventory.models import InventoryItem, Reservation, StockMovement
from orders.models import Order, OrderEvent, OrderItem
from stateset.testing import data_of, error_of
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def edit(api, order, body, *, version=None, status=200):
    headers = ({} if version is False
               else {"HTTP_IF_MATCH": f'"{version or Order.objects.get(id=order.id).version}"'})
    response = api.post(f"/api/v1/orders/{order.id}/edit", body, format="json", **headers)
    return data_of(response, status) if status < 400 else error_of(response, status)


def written():
    return (list(OrderItem.objects.order_by("id").values_list("id", "quantity")),
            StockMovement.objects.count(),
            Reservation.objects.count(),
            sum(InventoryItem.objects.values_list("reserved", flat=True)),
            OrderEvent.objects.count(), Event.objects.filter(type="order.updated").count(),
            list(Order.objects.values_list("version", "total_amount")))


def test_raising_a_line_reserves_exactly_the_difference(api, make_product, make_order):
    widget = make_product(price="10.00", stock=10)
    order = make_order(quantity=2, product=widget)
    item = OrderItem.objects.get(order_id=order.id)
    movements = StockMovement.objects.count()
    answer = edit(api, order,
                  {"change": [{"order_item_id": str(item.id), "quantity": 5}],
                   "reason": "customer called"})
    assert answer["items"][0]["quantity"] == 5 and answer["total_amount"] == "50.00"
    [moved] = StockMovement.objects.order_by("-created_at")[
        : StockMovement.objects.count() - movements]
    assert (moved.kind, moved.reserved_delta) == ("reserve", 3)
    assert InventoryItem.objects.get(product=widget).reserved == 5
    edited = OrderEvent.objects.get(order_id=order.id, kind="edited")
    assert edited.data["before"]["lines"][0]["quantity"] == 2 and edited.data["after"]["lines"][0][
        "quantity"] == 5
    assert Event.objects.filter(type="order.updated").count() == 1


def test_lowering_and_removing_release_the_difference(api, make_product, make_multi_order):
    a, b = make_product(price="10.00", stock=10), make_product(price="4.00", stock=10)
    order = make_multi_order((a, 5), (b, 2))
    item_a = OrderItem.objects.get(order_id=order.id, product=a)
    item_b = OrderItem.objects.get(order_id=order.id, product=b)
    answer = edit(api, order,
                  {"change": [{"order_item_id": str(item_a.id), "quantity": 1}],
                   "remove": [str(item_b.id)]})
    assert [(i["sku"], i["quantity"])
            for i in answer["items"]] == [(a.sku, 1)] and answer["total_amount"] == "10.00"
    assert (InventoryItem.objects.get(product=a).reserved,
            InventoryItem.objects.get(product=b).reserved) == (1, 0)
    released = StockMovement.objects.filter(kind="release").values_list("reserved_delta", flat=True)
    assert sorted(released) == [-4, -2]


def test_adding_a_line_with_too_little_stock_changes_nothing(api, make_product, make_order):
    order = make_order(quantity=1, product=make_product(stock=5))
    scarce = make_product(stock=2)
    before = written()
    error = edit(api, order, {"add": [{"product_id": str(scarce.id), "quantity": 3}]}, status=409)
    assert error["code"] == "insufficient_stock"
    assert written() == before


def test_adding_a_line_that_fits(api, make_product, make_order):
    order = make_order(quantity=1, product=make_product(price="10.00", stock=5))
    extra = make_product(price="2.50", stock=5)
    answer = edit(api, order, {"add": [{"sku": extra.sku, "quantity": 2}]})
    assert sorted((i["sku"], i["quantity"]) for i in answer["items"]) == sorted([(extra.sku, 2), (
        OrderItem.objects.filter(order_id=order.id).exclude(product=extra).get().sku, 1)])
    assert answer["total_amount"] == "15.00" and InventoryItem.objects.get(
        product=extra).reserved == 2


def test_a_line_cannot_drop_below_what_ships(api, make_product, make_order, ship_order):
    order = make_order(quantity=3, product=make_product(stock=5))
    item = OrderItem.objects.get(order_id=order.id)
    shipment = ship_order(order,
                          items=[services.ShipmentLineInput(order_item_id=item.id, quantity=2)])
    before = written()
    error = edit(api, order, {"change": [{"order_item_id": str(item.id), "quantity": 1}]},
                 status=422)
    assert error["code"] == "below_fulfilled" and error["details"]["lines"][str(item.id)][
        "in_pending_shipments"] == 2
    assert edit(api, order, {"remove": [str(item.id)]}, status=422)["code"] == "below_fulfilled"
    assert written() == before
    services.shipment_ship(shipment_id=shipment.id)
    assert edit(api, order,
                {"change": [{"order_item_id": str(item.id), "quantity": 2}]})["items"][0][
                    "quantity"] == 2


def test_if_match_is_required_and_must_be_current(api, make_order):
    order = make_order(quantity=1)
    item = OrderItem.objects.get(order_id=order.id)
    body = {"change": [{"order_item_id": str(item.id), "quantity": 2}]}
    before = written()
    assert edit(api, order, body, version=False, status=428)["code"] == "if_match_required"
    assert edit(api, order, body, version=99, status=412)["code"] == "precondition_failed"
    assert written() == before


def test_a_shipped_order_is_not_editable(api, make_product, make_order, ship_order):
    order = make_order(quantity=1, product=make_product(stock=5))
    services.shipment_ship(shipment_id=ship_order(order).id)
    item = OrderItem.objects.get(order_id=order.id)
    error = edit(api, order, {"change": [{"order_item_id": str(item.id), "quantity": 2}]},
                 status=409)
    assert error["code"] == "order_not_editable"


def test_order_discounts_are_spread_again(api, make_product, customer):
    from orders import services as orders_services

    a, b = make_product(price="30.00", stock=5), make_product(price="10.00", stock=5)
    order = orders_services.order_create(customer_id=customer.id, items=[
        orders_services.OrderLineInput(product_id=a.id, quantity=1),
        orders_services.OrderLineInput(product_id=b.id, quantity=1)],
        discounts=[orders_services.DiscountInput(amount="4.00")]).order
    item_b = OrderItem.objects.get(order_id=order.id, product=b)
    answer = edit(api, order, {"change": [{"order_item_id": str(item_b.id), "quantity": 3}]})
    # Bases 30.00 and 30.00 now share the 4.00 discount equally.
    assert sorted(i["discount_total"] for i in answer["items"]) == ["2.00", "2.00"]
    assert answer["total_amount"] == "56.00" and Decimal(answer["discount_total"]) == Decimal(
        "4.00")


def test_bad_edit_bodies_are_422(api, make_order):
    order = make_order(quantity=1)
    item = OrderItem.objects.get(order_id=order.id)
    for body in ({}, {"change": [{"order_item_id": str(item.id), "quantity": "2"}]},
                 {"change": [{"order_item_id": str(item.id), "quantity": 0}]},
                 {"remove": ["not-a-uuid"]}, {"add": [{"quantity": 1}]}):
        edit(api, order, body, status=422)
    # an order keeps one line
    assert edit(api, order, {"remove": [str(item.id)]}, status=422)["details"]


def test_lowering_a_backordered_line_cuts_its_waiting_units_first(api, customer, make_product):
    from inventory.models import Backorder
    from orders import services as orders_services

    coming = make_product(stock=2, allow_backorder=True)
    order = orders_services.order_create(customer_id=customer.id, items=[
        # 2 reserved, 3 waiting
        orders_services.OrderLineInput(product_id=coming.id, quantity=5)]).order
    item = OrderItem.objects.get(order_id=order.id)
    answer = edit(api, order, {"change": [{"order_item_id": str(item.id), "quantity": 3}]})
    assert answer["items"][0]["quantity_backordered"] == 1
    assert Backorder.objects.get(line_id=item.id).quantity_waiting == 1
    # nothing released: the cut came off the wait
    assert InventoryItem.objects.get(product=coming).reserved == 2
    raised = edit(api, order, {"change": [{"order_item_id": str(item.id), "quantity": 6}]})
    # the excess waits: the line may be backordered
    assert raised["items"][0]["quantity_backordered"] == 4
