"""Fixtures for the returns tests: stocked products and orders whose units have shipped."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from catalog.models import Product
from customers.models import Customer
from inventory import services as inventory_services
from inventory.models import Location
from orders import services as orders_services
from orders.models import Order, OrderItem
from stateset.testing import data_of, error_of


@dataclass
class Shipped:
    order: Order
    items: dict[str, OrderItem]  # by SKU


@pytest.fixture
def customer(db):
    return Customer.objects.create(email="returns@example.com", first_name="Re", last_name="Turn")


@pytest.fixture
def location(db):
    """The warehouse every product is stocked at unless a test says otherwise."""
    return inventory_services.location_create(code="MAIN", name="Main", priority=0)


@pytest.fixture
def make_product(location):
    counter = iter(range(1, 10_000))

    def make(*, price: str = "10.00", stock: int = 50, at: Location | None = None, sku: str | None = None) -> Product:
        product = Product.objects.create(sku=sku or f"RET-{next(counter):04d}", name="Returnable", price=Decimal(price))
        if stock:
            inventory_services.stock_receive(product_id=product.id, location_id=(at or location).id,
                                             quantity=stock, reason="test stock")
        return product

    return make


@pytest.fixture
def shipped_order(customer):
    """shipped_order((product, quantity), ..., paid=True, deliver=True) → an order taken through
    ``orders.services.order_create`` whose units have all shipped through the fulfillment services
    (one shipment: create, ship, and deliver unless ``deliver=False``). ``paid`` records the payment
    through ``orders.services.order_record_payment``."""

    def make(*lines: tuple[Product, int] | tuple[Product, int, str], paid: bool = True, deliver: bool = True,
             **order_fields) -> Shipped:
        """A line may carry its own discount: ``(product, quantity, "5.00")``; ``order_fields`` go to
        ``order_create`` (``discounts``, ``shipping_address``...)."""
        from fulfillment import services as fulfillment_services

        order = orders_services.order_create(
            customer_id=customer.id,
            items=[orders_services.OrderLineInput(product_id=line[0].id, quantity=line[1],
                                                  discount=line[2] if len(line) > 2 else None)
                   for line in lines],
            **order_fields,
        ).order
        shipment = fulfillment_services.shipment_create(order_id=order.id, carrier="UPS").shipment
        fulfillment_services.shipment_ship(shipment_id=shipment.id)
        if deliver:
            fulfillment_services.shipment_deliver(shipment_id=shipment.id)
        if paid:
            orders_services.order_record_payment(order_id=order.id, payment_status=Order.PaymentStatus.PAID)
        order.refresh_from_db()
        return Shipped(order=order, items={item.sku: item for item in OrderItem.objects.filter(order_id=order.id)})

    return make


def request_return(api, shipped, *lines, reason="does not fit", status=201):
    """lines: (sku, quantity, condition[, restock]) → the POST /returns answer's data (or error)."""
    items = []
    for sku, quantity, condition, *rest in lines:
        item = {"order_item_id": str(shipped.items[sku].id), "quantity": quantity, "condition": condition}
        if rest:
            item["restock"] = rest[0]
        items.append(item)
    response = api.post("/api/v1/returns", {"order_id": str(shipped.order.id), "reason": reason, "items": items},
                        format="json")
    return data_of(response, status) if status < 400 else error_of(response, status)


def act(api, rma, verb, status=200):
    response = api.post(f"/api/v1/returns/{rma['id']}/{verb}", {}, format="json")
    return data_of(response, status) if status < 400 else error_of(response, status)
