"""Fixtures of the fulfillment tests: a customer, products with stock and orders (the factories of
orders and of the apps below it), and shipments through the service."""

from decimal import Decimal

import pytest

from catalog.models import Product
from customers.tests.factories import CustomerFactory
from fulfillment.tests.factories import ShipmentFactory
from inventory.models import Location
from orders.tests.factories import OrderFactory, StockedProductFactory


@pytest.fixture
def customer(db):
    return CustomerFactory(email="LoadTest@Example.com", first_name="Load", last_name="Test",
                           phone="")


@pytest.fixture
def make_product(db):
    """make_product(sku=None, price="29.99", stock=100, **fields) → a product with ``stock`` units
    on hand at MAIN, received through inventory."""

    def make(*, sku: str | None = None, price: str = "29.99", stock: int = 100,
             **fields) -> Product:
        if sku is not None:
            fields["sku"] = sku
        return StockedProductFactory.create(price=Decimal(price), stock=stock, **fields)

    return make


@pytest.fixture
def make_order(customer, make_product):
    """make_order(quantity=1, product=None) → an order created through the service."""

    def make(quantity: int = 1, product: Product | None = None):
        return OrderFactory(customer=customer, lines=[(product or make_product(), quantity)])

    return make


@pytest.fixture
def main(db):
    location, _ = Location.objects.get_or_create(code="MAIN",
                                                 defaults={"name": "MAIN", "priority": 0})
    return location


@pytest.fixture
def east(db):
    location, _ = Location.objects.get_or_create(code="EAST",
                                                 defaults={"name": "EAST", "priority": 10})
    return location


@pytest.fixture
def make_multi_order(customer):
    """make_multi_order((product, 3), (other, 2)) → an order of several lines."""

    def make(*lines):
        return OrderFactory(customer=customer, lines=list(lines))

    return make


@pytest.fixture
def ship_order():
    """ship_order(order, **fields) → a pending shipment of everything open, through the service."""

    def make(order, **fields):
        return ShipmentFactory(order=order, **fields)

    return make
