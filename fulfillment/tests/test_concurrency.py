"""Races: concurrent writers of one order's shipments are serialised by the order's row lock."""

import pytest
from django.db.models import Sum

from fulfillment import services
from fulfillment.models import Shipment, ShipmentItem
from inventory.models import InventoryItem, StockMovement
from orders.models import Order, OrderItem
from stateset.errors import DomainError
from stateset.testing import run_threads


def outcome(result):
    if isinstance(result, DomainError):
        return result.code
    if isinstance(result, BaseException):
        raise result  # a deadlock or a 500-class failure fails the test
    return "ok"


@pytest.mark.django_db(transaction=True)
def test_concurrent_shipment_creates_never_allocate_more_than_ordered(make_product, make_order):
    widget = make_product(stock=10)
    order = make_order(quantity=5, product=widget)
    item = OrderItem.objects.get(order_id=order.id)

    def create(i: int):
        return services.shipment_create(order_id=order.id, carrier="ups", items=[
            services.ShipmentLineInput(order_item_id=item.id, quantity=2)])

    results = [outcome(r) for r in run_threads(8, create)]
    assert results.count("ok") == 2 and results.count("exceeds_unfulfilled") == 6
    assert ShipmentItem.objects.aggregate(units=Sum("quantity"))["units"] == 4
    # And with the default (everything open), only one of the racers gets the last unit.
    results = [outcome(r)
               for r in run_threads(6, lambda i: services.shipment_create(order_id=order.id,
                                                                                      carrier="dhl"))]
    assert results.count("ok") == 1 and results.count("nothing_to_ship") == 5
    assert ShipmentItem.objects.aggregate(units=Sum("quantity"))["units"] == 5
    assert Shipment.objects.get(carrier="dhl").items.get().quantity == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_ships_of_one_shipment_ship_once(make_product, make_order):
    widget = make_product(stock=10)
    order = make_order(quantity=3, product=widget)
    shipment = services.shipment_create(order_id=order.id, carrier="ups").shipment

    results = [outcome(r)
               for r in run_threads(6, lambda i: services.shipment_ship(shipment_id=shipment.id))]
    assert results.count("ok") == 1 and results.count("invalid_transition") == 5
    assert OrderItem.objects.get(order_id=order.id).quantity_fulfilled == 3
    row = InventoryItem.objects.get(product_id=widget.id)
    assert (row.on_hand, row.reserved) == (7, 0)
    assert StockMovement.objects.filter(kind="ship").count() == 1
    assert Order.objects.get(id=order.id).status == "shipped"


@pytest.mark.django_db(transaction=True)
def test_shipping_two_shipments_of_one_order_at_once_does_not_deadlock(make_product,
                                                                       make_multi_order):
    widget, gadget = make_product(stock=10), make_product(stock=10)
    order = make_multi_order((widget, 2), (gadget, 2))
    items = {i.product_id: i.id for i in OrderItem.objects.filter(order_id=order.id)}
    shipments = [
        services.shipment_create(order_id=order.id, carrier="ups", items=[
            services.ShipmentLineInput(order_item_id=items[widget.id], quantity=1),
            services.ShipmentLineInput(order_item_id=items[gadget.id], quantity=1)]).shipment
        for _ in range(2)
    ]
    results = [outcome(r)
               for r in run_threads(2,
                                    lambda i: services.shipment_ship(shipment_id=shipments[i].id))]
    assert results == ["ok", "ok"]
    order.refresh_from_db()
    assert (order.status, order.fulfillment_status) == ("shipped", "fulfilled")
    assert sorted(InventoryItem.objects.values_list("on_hand", "reserved")) == [(8, 0), (8, 0)]
