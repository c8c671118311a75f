"""Fixtures for the returns tests: stocked products and orders whose units have shipped, made with
the factories of orders and of the apps below it (fulfillment is a sibling: never imported)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import pytest

from catalog.models import Product
from customers.tests.factories import CustomerFactory
from inventory import services as inventory_services
from inventory.models import Location
from orders import services as orders_services
from orders.models import Order, OrderItem
from orders.tests.factories import ShippedOrderFactory, StockedProductFactory


@dataclass
class Shipped:
    order: Order
    items: dict[str, OrderItem]  # by SKU


@pytest.fixture
def customer(db):
    return CustomerFactory(email="returns@example.com", first_name="Re", last_name="Turn", phone="")


@pytest.fixture
def location(db):
    """The warehouse every product is stocked at unless a test says otherwise."""
    return inventory_services.location_create(code="MAIN", name="Main", priority=0)


@pytest.fixture
def make_product(location):
    counter = iter(range(1, 10_000))

    def make(*, price: str = "10.00", stock: int = 50, at: Location | None = None,
             sku: str | None = None) -> Product:
        return StockedProductFactory.create(sku=sku or f"RET-{next(counter):04d}",
                                            name="Returnable", price=Decimal(price),
                                     stock=stock, stock__at=at or location)

    return make


@pytest.fixture
def shipped_order(customer):
    """shipped_order((product, quantity), ..., paid=True, deliver=True) → an order taken through
    ``orders.services.order_create`` whose units have all shipped
    (``orders.tests.factories.ship_units``:
    ``orders.under_lock.order_units_shipped`` and ``inventory.services.stock_fulfil_many``),
    delivered unless ``deliver=False``. ``paid`` records the payment through
    ``orders.services.order_record_payment``."""

    def make(*lines: tuple[Product, int] | tuple[Product, int, str], paid: bool = True,
             deliver: bool = True, **order_fields: Any) -> Shipped:
        """A line may carry its own discount: ``(product, quantity, "5.00")``; ``order_fields`` go
        to
        ``order_create`` (``discounts``, ``shipping_address``...)."""
        order = cast(Order, ShippedOrderFactory(customer=customer, lines=list(lines),
                                                delivered=deliver, **order_fields))
        if paid:
            orders_services.order_record_payment(order_id=order.id,
                                                 payment_status=Order.PaymentStatus.PAID)
        order.refresh_from_db()
        return Shipped(order=order,
                       items={item.sku: item
                              for item in OrderItem.objects.filter(order_id=order.id)})

    return make
