"""SPEC §3: every JSON object a client stores (``metadata``, ``attributes``, a location's
``address``) is at most 16 levels deep and 64 KiB encoded; beyond that the write is a 422 naming
the field and nothing is written, on create and on update alike."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from catalog.models import Product
from customers.models import Customer
from inventory.models import Location
from orders.models import Order
from orders.tests.factories import OrderFactory, StockedProductFactory
from stateset.bulk import CellInvalid, check_json_value
from stateset.testing import data_of, error_of

pytestmark = pytest.mark.django_db


def nested(levels: int) -> dict[str, Any]:
    """``levels`` objects, one inside the other, the innermost holding a string."""
    value: dict[str, Any] = {"leaf": "x"}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def huge() -> dict[str, Any]:
    return {"big": "x" * 66_000}


def test_the_limits_count_objects_and_arrays_not_their_values():
    check_json_value(nested(16))
    check_json_value({"a": [[[[[[[[[[[[[[["15 arrays in an object"]]]]]]]]]]]]]]]})
    with pytest.raises(CellInvalid) as caught:
        check_json_value(nested(17))
    assert caught.value.code == "too_deep"
    with pytest.raises(CellInvalid) as caught:
        check_json_value({"a": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]})  # 17 levels
    assert caught.value.code == "too_deep"
    with pytest.raises(CellInvalid) as caught:
        check_json_value(huge())
    assert caught.value.code == "too_large"


def _nothing() -> None:
    return None


def _a_customer() -> Customer:
    return Customer.objects.create(email="patched@example.com")


def _a_product() -> Product:
    return Product.objects.create(sku="DEEP-2", name="Deep", price="1.00")


def _an_order() -> Any:  # factory_boy's type is the factory's, the value an Order
    customer = Customer.objects.create(email="owner@example.com")
    return OrderFactory(customer=customer, lines=[(StockedProductFactory.create(stock=5), 1)])


def _a_location() -> Location:
    return Location.objects.create(code="FLAT", name="Flat")


def _stock() -> tuple[Customer, Product]:
    return (Customer.objects.create(email="buyer@example.com"),
            StockedProductFactory.create(stock=5))


# name: (set-up, the request given the set-up's row and the value, the field, what is stored)
WRITES: dict[str, tuple[Callable[[], Any], Callable[[Any, Any, Any], Any], str,
                        Callable[[], list[Any]]]] = {
    "customer": (_nothing, lambda api, _, value: api.post(
        "/api/v1/customers", {"email": "deep@example.com", "metadata": value}, format="json"),
        "metadata", lambda: list(Customer.objects.values_list("metadata", "version"))),
    "customer PATCH": (_a_customer, lambda api, row, value: api.patch(
        f"/api/v1/customers/{row.id}", {"metadata": value}, format="json"),
        "metadata", lambda: list(Customer.objects.values_list("metadata", "version"))),
    "product": (_nothing, lambda api, _, value: api.post(
        "/api/v1/products", {"sku": "DEEP-1", "name": "Deep", "price": "1.00",
                             "attributes": value}, format="json"),
        "attributes", lambda: list(Product.objects.values_list("attributes", "version"))),
    "product PATCH": (_a_product, lambda api, row, value: api.patch(
        f"/api/v1/products/{row.id}", {"attributes": value}, format="json"),
        "attributes", lambda: list(Product.objects.values_list("attributes", "version"))),
    "order": (_stock, lambda api, row, value: api.post(
        "/api/v1/orders", {"customer_id": str(row[0].id), "metadata": value,
                           "items": [{"product_id": str(row[1].id), "quantity": 1}]},
        format="json"),
        "metadata", lambda: list(Order.objects.values_list("metadata", "version"))),
    "order PATCH": (_an_order, lambda api, row, value: api.patch(
        f"/api/v1/orders/{row.id}", {"metadata": value}, format="json"),
        "metadata", lambda: list(Order.objects.values_list("metadata", "version"))),
    "location": (_nothing, lambda api, _, value: api.post(
        "/api/v1/locations", {"code": "DEEP", "name": "Deep", "address": value}, format="json"),
        "address", lambda: list(Location.objects.values_list("address", "version"))),
    "location PATCH": (_a_location, lambda api, row, value: api.patch(
        f"/api/v1/locations/{row.id}", {"address": value}, format="json"),
        "address", lambda: list(Location.objects.values_list("address", "version"))),
}


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("value", [nested(17), huge()], ids=["17 levels", "66 KB"])
def test_a_json_object_over_the_limits_is_422_naming_the_field_and_writes_nothing(api, write,
                                                                                 value):
    set_up, send, field, stored = WRITES[write]
    row = set_up()
    before = stored()
    error = error_of(send(api, row, value), 422)
    assert field in error["details"], error
    assert stored() == before


# A location's address has tighter rules of its own (4 levels, 50 fields: inventory.services).
@pytest.mark.parametrize("write", [name for name in WRITES if not name.startswith("location")])
def test_sixteen_levels_are_stored(api, write):
    set_up, send, field, _ = WRITES[write]
    assert send(api, set_up(), nested(16)).status_code in (200, 201)


def test_sixteen_levels_are_read_back_in_lists_and_details(api):
    value = nested(16)
    created = data_of(WRITES["customer"][1](api, None, value), 201)
    assert data_of(api.get(f"/api/v1/customers/{created['id']}"))["metadata"] == value
    assert data_of(api.get("/api/v1/customers"))["items"][0]["metadata"] == value


# SPEC §3: money is a decimal string or number. Python's Decimal reads more than that.
@pytest.mark.parametrize("price", ["1_000", "1e3", "+5", " 10 ", "١٢", "10.", ".5", ""])
def test_a_price_that_is_not_a_plain_decimal_is_422_and_writes_nothing(api, price):
    response = api.post("/api/v1/products", {"sku": "PLAIN-1", "name": "Plain", "price": price},
                        format="json")
    assert "price" in error_of(response, 422)["details"]
    assert not Product.objects.filter(sku="PLAIN-1").exists()


@pytest.mark.parametrize("price", ["12", "12.50", 12, 12.5])
def test_plain_decimals_and_json_numbers_are_prices(api, price):
    response = api.post("/api/v1/products", {"sku": "PLAIN-2", "name": "Plain", "price": price},
                        format="json")
    assert Product.objects.get(sku=data_of(response, 201)["sku"]).price in (12, Decimal("12.5"))


def test_an_order_amount_that_is_not_a_plain_decimal_is_422_and_writes_nothing(api):
    set_up, _, _, _ = WRITES["order"]
    customer, product = set_up()
    response = api.post("/api/v1/orders", {
        "customer_id": str(customer.id), "items": [{"product_id": str(product.id), "quantity": 1}],
        "shipping_lines": [{"method": "post", "amount": "1e1"}]}, format="json")
    assert error_of(response, 422)["code"] == "validation_error"
    assert not Order.objects.exists()


def _service_writes() -> list[tuple[str, Callable[[Any], Any]]]:
    """Writes that reach the services without the API's serializers (the admin, imports and
    commands call them directly)."""
    from catalog import services as catalog_services
    from customers import services as customer_services
    from orders import services as order_services

    def customer_create(value):
        customer_services.customer_create(email="deep@example.com", metadata=value)

    def customer_update(value):
        customer = Customer.objects.create(email="kept@example.com")
        customer_services.customer_update(customer_id=customer.id, fields={"metadata": value})

    def product_create(value):
        catalog_services.product_create(sku="DEEP-1", name="Deep", price=Decimal("1.00"),
                                        attributes=value)

    def order_create(value):
        product = StockedProductFactory(stock=5)
        customer = Customer.objects.create(email="buyer@example.com")
        order_services.order_create(customer_id=customer.id, metadata=value, items=[
            order_services.OrderLineInput(product_id=product.id, quantity=1)])

    def order_update(value):
        order = OrderFactory()
        order_services.order_update(order_id=order.id, changes={"shipping_address": value})

    return [("customer_create", customer_create), ("customer_update", customer_update),
            ("product_create", product_create), ("order_create", order_create),
            ("order_update", order_update)]


@pytest.mark.parametrize("value", [nested(300), huge()], ids=["300 levels", "66 KB"])
@pytest.mark.parametrize("name, write", _service_writes(), ids=[n for n, _ in _service_writes()])
def test_the_services_refuse_what_the_api_refuses(name, write, value):
    from stateset.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        write(value)
    assert set(refused.value.details) & {"metadata", "attributes", "shipping_address"}
    assert not Product.objects.filter(sku="DEEP-1").exists()
    assert not Customer.objects.filter(email="deep@example.com").exists()
    assert not Customer.objects.exclude(metadata={}).exists()
    assert not Order.objects.exclude(shipping_address=None).exclude(shipping_address={}).exists()
