"""Fixtures of the orders tests, built on the factories of orders and of the apps below it."""

from decimal import Decimal

import pytest

from catalog.models import Product
from customers.tests.factories import CustomerFactory
from orders.tests.factories import (
    GUIDE_CUSTOMER,
    GUIDE_PRODUCT,
    OrderFactory,
    StockedProductFactory,
)


@pytest.fixture
def customer(db):
    return CustomerFactory(id=GUIDE_CUSTOMER, email="LoadTest@Example.com", first_name="Load",
                           last_name="Test", phone="")


@pytest.fixture
def make_product(db):
    """make_product(sku=None, price="29.99", stock=100, active=True, **fields) → a product with
    ``stock`` units on hand at MAIN (received through inventory), deactivated afterwards unless
    ``active``."""

    def make(*, sku: str | None = None, price: str = "29.99", stock: int = 100, active: bool = True,
             **fields):
        if sku is not None:
            fields["sku"] = sku
        product: Product = StockedProductFactory.create(price=Decimal(price), stock=stock, **fields)
        if not active:
            Product.objects.filter(id=product.id).update(is_active=False)
            product.is_active = False
        return product

    return make


@pytest.fixture
def guide_product(make_product):
    return make_product(sku="TEST-001", price="29.99", stock=1000, id=GUIDE_PRODUCT,
                        name="Test product")


@pytest.fixture
def make_order(customer, make_product):
    """make_order(quantity=1, product=None) → an order created through the service."""

    def make(quantity: int = 1, product: Product | None = None):
        return OrderFactory(customer=customer, lines=[(product or make_product(), quantity)])

    return make
