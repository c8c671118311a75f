"""Fixtures: orders' own (a customer, products with stock, orders through the service), plus
shipments made through the service."""

import pytest

from fulfillment import services
from inventory.models import Location
from orders import services as orders_services
from orders.tests.conftest import customer, make_order, make_product, receive

__all__ = ["customer", "make_order", "make_product", "receive"]


@pytest.fixture
def main(db):
    location, _ = Location.objects.get_or_create(code="MAIN", defaults={"name": "MAIN", "priority": 0})
    return location


@pytest.fixture
def east(db):
    location, _ = Location.objects.get_or_create(code="EAST", defaults={"name": "EAST", "priority": 10})
    return location


@pytest.fixture
def make_multi_order(customer):
    """make_multi_order((product, 3), (other, 2)) → an order of several lines."""

    def make(*lines):
        return orders_services.order_create(customer_id=customer.id, items=[
            orders_services.OrderLineInput(product_id=product.id, quantity=quantity) for product, quantity in lines
        ]).order

    return make


@pytest.fixture
def ship_order():
    """ship_order(order, **fields) → a pending shipment of everything open, through the service."""

    def make(order, **fields):
        fields.setdefault("carrier", "ups")
        return services.shipment_create(order_id=order.id, **fields).shipment

    return make
