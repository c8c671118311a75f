"""factory_boy factories for the orders tests, and for the tests of the apps above orders.

Everything goes through the services of orders and of the apps below it, so every row an order
owns (items, timeline, reservations, ledger) is as the product writes it. :func:`ship_units` is
what an upper app's shipping does to an order, written with the lower-level services only
(``orders.under_lock`` and ``inventory.services``): returns tests need shipped units without
importing fulfillment, their sibling.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import factory
from django.db import transaction

from catalog.models import Product
from catalog.seed import LOADTEST_PRODUCT_ID
from catalog.tests.factories import ProductFactory
from customers.seed import LOADTEST_CUSTOMER_ID
from customers.tests.factories import CustomerFactory
from inventory import selectors as inventory_selectors
from inventory import services as inventory_services
from inventory.models import InventoryItem, Location
from orders import locks, services, under_lock
from orders.models import Order

# The seed guide's customer and product (its k6 payload names them).
GUIDE_CUSTOMER = LOADTEST_CUSTOMER_ID
GUIDE_PRODUCT = LOADTEST_PRODUCT_ID


def guide_payload() -> dict[str, Any]:
    """The seed guide's k6 payload, exactly as written there (floats and all)."""
    return {
        "customer_id": str(GUIDE_CUSTOMER),
        "items": [{"product_id": str(GUIDE_PRODUCT), "sku": "TEST-001", "quantity": 2,
                   "unit_price": 29.99}],
        "total_amount": 59.98,
    }


def receive(product: Product, quantity: int, location: str | Location = "MAIN",
            priority: int = 0) -> InventoryItem:
    """Put ``quantity`` units of ``product`` on hand at ``location`` (a Location, or a code: the
    location is made when missing) through ``inventory.services.stock_receive``."""
    if not isinstance(location, Location):
        location, _ = Location.objects.get_or_create(
            code=location, defaults={"name": location, "priority": priority})
    return inventory_services.stock_receive(product_id=product.id, location_id=location.id,
                                            quantity=quantity, reason="test stock")


def _stock(product: Product, create: bool, extracted: int | None, **kwargs: Any) -> None:
    quantity = 100 if extracted is None else extracted
    if create and quantity:
        receive(product, quantity, kwargs.get("at", "MAIN"), kwargs.get("priority", 0))


class StockedProductFactory(ProductFactory):
    """A catalog product with ``stock`` units (100 unless given; 0 for none) received at
    ``stock__at`` (a Location or a code, MAIN by default)."""

    class Meta:
        skip_postgeneration_save = True

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = "Widget"  # type: ignore[assignment]  # a plain value overrides the base's Sequence
    description = ""
    price = Decimal("29.99")

    stock = factory.PostGeneration(_stock)


class OrderFactory(factory.Factory):
    """An order taken through ``orders.services.order_create`` (so its stock is reserved):
    ``OrderFactory(customer=c, lines=[(product, 2), ...])``; other keywords go to the service."""

    class Meta:
        model = Order

    customer = factory.SubFactory(CustomerFactory)
    lines = factory.LazyFunction(lambda: [(StockedProductFactory(), 1)])

    @classmethod
    def _create(cls, model_class: type[Order], *args: Any, customer: Any,
                lines: list[tuple[Product, int] | tuple[Product, int, str]],
                **kwargs: Any) -> Order:
        """A line may carry its own discount: ``(product, quantity, "5.00")``."""
        return services.order_create(
            customer_id=customer.id,
            items=[services.OrderLineInput(product_id=line[0].id, quantity=line[1],
                                           # a 3-tuple here
                                           discount=line[2] if len(line) > 2 else None)
                   for line in lines],
            **kwargs,
        ).order


def ship_units(order: Order, *, deliver: bool = True, actor: str = "") -> Order:
    """Every open unit of ``order`` leaves the warehouse as a shipment of an upper app takes it,
    through the services below that app: under the order lock, ``order_shipment_created`` and
    ``order_units_shipped`` (quantities fulfilled, statuses, timeline), then the order's active
    reservations consumed by ``inventory.services.stock_fulfil_many`` (ledger ``ship``), in the
    global lock order (order, order items, reservations, stock rows). With ``deliver`` the parcel
    is then delivered (``order_shipment_delivered``). There is no shipment row: the shipment id
    on the timeline names a parcel no app below fulfillment knows. Returns ``order`` refreshed."""
    shipment_id = uuid.uuid4()
    with transaction.atomic():
        locked = locks.lock_order(order.id)
        items = list(locked.items.order_by("id"))
        quantities = {item.id: item.quantity - item.quantity_fulfilled for item in items
                      if item.quantity > item.quantity_fulfilled}
        under_lock.order_shipment_created(order=locked, shipment_id=shipment_id, actor=actor,
                                          lines=[
            {"order_item_id": str(item.id), "sku": item.sku, "quantity": quantities[item.id]}
            for item in items if item.id in quantities])
        under_lock.order_units_shipped(order=locked, quantities=quantities,
                                       shipment_id=shipment_id, actor=actor)
        reservations = inventory_selectors.reservations_for(
            reference_id=str(order.id), reference_type="order", status="active")
        inventory_services.stock_fulfil_many(
            fulfilments=[(r.id, r.remaining) for r in reservations],
            actor=actor, reference_type="shipment", reference_id=str(shipment_id))
    if deliver:
        with transaction.atomic():
            under_lock.order_shipment_delivered(order=locks.lock_order(order.id),
                                                shipment_id=shipment_id, all_delivered=True,
                                                actor=actor)
    order.refresh_from_db()
    return order


def _ship(order: Order, create: bool, extracted: bool | None, **kwargs: Any) -> None:
    if create:
        ship_units(order, deliver=True if extracted is None else extracted)


class ShippedOrderFactory(OrderFactory):
    """An order whose units have all shipped (:func:`ship_units`) and been delivered, unless
    ``delivered=False``."""

    delivered = factory.PostGeneration(_ship)
