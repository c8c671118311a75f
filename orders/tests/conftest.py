from decimal import Decimal

import pytest

from catalog.models import Product
from catalog.seed import LOADTEST_PRODUCT_ID
from customers.models import Customer
from customers.seed import LOADTEST_CUSTOMER_ID
from orders import services

GUIDE_CUSTOMER = LOADTEST_CUSTOMER_ID
GUIDE_PRODUCT = LOADTEST_PRODUCT_ID


def receive(product: Product, quantity: int, location_code: str = "MAIN", priority: int = 0):
    """Put ``quantity`` units of ``product`` on hand at ``location_code`` through the inventory service."""
    from inventory import services as inventory_services
    from inventory.models import Location

    location, _ = Location.objects.get_or_create(code=location_code, defaults={"name": location_code, "priority": priority})
    return inventory_services.stock_receive(product_id=product.id, location_id=location.id, quantity=quantity,
                                            reason="test stock")


@pytest.fixture
def customer(db):
    return Customer.objects.create(id=GUIDE_CUSTOMER, email="LoadTest@Example.com", first_name="Load", last_name="Test")


@pytest.fixture
def make_product(db):
    counter = iter(range(1, 10_000))

    def make(*, sku: str | None = None, price: str = "29.99", stock: int = 100, active: bool = True, **fields):
        product = Product.objects.create(sku=sku or f"SKU-{next(counter):05d}", name=fields.pop("name", "Widget"),
                                         price=Decimal(price), is_active=True, **fields)
        if stock:
            receive(product, stock)
        if not active:
            Product.objects.filter(id=product.id).update(is_active=False)
            product.is_active = False
        return product

    return make


@pytest.fixture
def guide_product(make_product):
    return make_product(sku="TEST-001", price="29.99", stock=1000, id=GUIDE_PRODUCT, name="Test product")


@pytest.fixture
def make_order(customer, make_product):
    """make_order(quantity=1, product=None) → an order created through the service."""

    def make(quantity: int = 1, product: Product | None = None) -> object:
        product = product or make_product()
        return services.order_create(customer_id=customer.id,
                                     items=[services.OrderLineInput(product_id=product.id, quantity=quantity)]).order

    return make


def guide_payload() -> dict:
    """The seed guide's k6 payload, exactly as written there (floats and all)."""
    return {
        "customer_id": str(GUIDE_CUSTOMER),
        "items": [{"product_id": str(GUIDE_PRODUCT), "sku": "TEST-001", "quantity": 2, "unit_price": 29.99}],
        "total_amount": 59.98,
    }
