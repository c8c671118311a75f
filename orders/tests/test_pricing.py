"""Channel orders (SPEC §4.4, §4.4.1): prices, discounts, taxes and shipping, to the minor unit,
checked against numbers worked out by hand; the pair (channel, external_id) is one order."""

import uuid
from decimal import Decimal

import pytest
from django.test import override_settings

from catalog.models import Product
from inventory.models import InventoryItem, Reservation, StockMovement
from orders.models import ChannelOrder, Order, OrderEvent, OrderItem, Payment, ShippingLine
from orders.pricing import spread
from orders.tests.factories import receive
from stateset.testing import client_for, data_of, run_threads
from webhooks.models import Event

pytestmark = pytest.mark.django_db

NY = {"line1": "1 Main St", "city": "New York", "region": "NY", "postal_code": "10001",
      "country": "US"}
TAXES = {"TAX_RATES": {"US-NY": "0.08875", "US": "0.02", "JP": "0.10", "KW": "0.05", "GB": "0.20"},
         "TAX_PRICES_INCLUDE_TAX": False, "TAX_SHIPPING_TAXABLE": True}


@pytest.fixture
def pricing_key(make_key):
    """A channel that prices its own orders: orders:set_prices is granted by name."""
    return client_for(make_key("orders:write", "orders:read", "orders:set_prices"))


def product(sku: str, price: str, currency: str = "USD", stock: int = 50) -> Product:
    made = Product.objects.create(sku=sku, name=sku.title(), price=Decimal(price),
                                  currency=currency)
    receive(made, stock)
    return made


def snapshot():
    return (Order.objects.count(), OrderItem.objects.count(), ShippingLine.objects.count(),
            Reservation.objects.count(), StockMovement.objects.count(),
            ChannelOrder.objects.count(),
            Payment.objects.count(), Event.objects.count(),
            sum(InventoryItem.objects.values_list("reserved", flat=True)))


def create(client, body, status=201):
    response = client.post("/api/v1/orders", body, format="json")
    assert response.status_code == status, response.content
    return response.json()["data"] if status == 201 else response.json()["error"]


def lines_of(order):
    return [(i["sku"], i["total_price"], i["discount_total"], i["net_total"], i["tax_total"])
            for i in order["items"]]


@override_settings(**TAXES)
def test_a_three_line_channel_order_totals_to_the_cent(pricing_key, customer):
    a, b, c = product("A-1", "20.00"), product("B-1", "15.50"), product("C-1", "7.25")
    order = create(pricing_key, {
        "customer_id": str(customer.id), "channel": "shopify", "external_id": "#1001",
        "shipping_address": NY,
        "items": [{"product_id": str(a.id), "quantity": 2, "discount": "5.00"},
                  {"product_id": str(b.id), "quantity": 1},
                  # the channel's price
                  {"product_id": str(c.id), "quantity": 3, "unit_price": "6.99"}],
        "discounts": [{"code": "TENOFF", "amount": "7.15"}],  # 10% of 71.47, as the shop rounded it
        "shipping_lines": [{"method": "Ground", "amount": "9.99"}],
        "total_amount": "80.91",
    })
    # By hand: bases 35.00 / 15.50 / 20.97 (Σ 71.47) share 7.15 as 3.50 / 1.55 / 2.10; tax 8.875% of
    # the nets 31.50 / 13.95 / 18.87 is 2.80 / 1.24 / 1.67, and of shipping 9.99 is 0.89.
    assert lines_of(order) == [("A-1", "40.00", "8.50", "31.50", "2.80"),
                               ("B-1", "15.50", "1.55", "13.95", "1.24"),
                               ("C-1", "20.97", "2.10", "18.87", "1.67")]
    assert (order["subtotal"], order["discount_total"], order["shipping_total"], order["tax_total"],
            order["total_amount"]) == ("76.47", "12.15", "9.99", "6.60", "80.91")
    assert order["items"][2]["unit_price"] == "6.99" and order["items"][2]["list_price"] == "7.25"
    assert order["items"][0]["taxes"] == [{"name": "US-NY", "rate": "0.08875", "amount": "2.80"}]
    assert order["shipping_lines"] == [{"id": order["shipping_lines"][0]["id"], "method": "Ground",
                                        "amount": "9.99", "tax_total": "0.89",
                                        "taxes": [{"name": "US-NY", "rate": "0.08875",
                                                   "amount": "0.89"}]}]
    assert (order["channel"], order["external_id"]) == ("shopify", "#1001")
    assert order["discounts"] == [{"code": "TENOFF", "description": "", "amount": "7.15"}]
    stored = data_of(pricing_key.get(f"/api/v1/orders/{order['id']}"))
    assert lines_of(stored) == lines_of(order) and stored["total_amount"] == "80.91"


@override_settings(**TAXES)
def test_the_same_in_yen_which_has_no_minor_unit(pricing_key, customer):
    a, c = product("JA-1", "2000", "JPY"), product("JC-1", "725", "JPY")
    order = create(pricing_key, {
        "customer_id": str(customer.id), "shipping_address": {**NY, "region": "", "country": "JP"},
        "items": [{"product_id": str(a.id), "quantity": 2, "discount": "300"},
                  {"product_id": str(c.id), "quantity": 3, "unit_price": "699"}],
        "discounts": [{"amount": "580"}], "shipping_lines": [{"method": "Yamato", "amount": 500}],
    })
    # Bases 3700 / 2097 share 580 as 370 / 210; tax 10% of 3330 / 1887 is 333 / 189 (188.7), of 500
    # is 50.
    assert lines_of(order) == [("JA-1", "4000", "670", "3330", "333"),
                               ("JC-1", "2097", "210", "1887", "189")]
    assert (order["currency"], order["subtotal"], order["discount_total"], order["tax_total"],
            order["total_amount"]) == ("JPY", "6097", "880", "572", "6289")


@override_settings(**TAXES)
def test_the_same_in_dinars_which_have_three_digits(pricing_key, customer):
    a, b = product("KA-1", "1.250", "KWD"), product("KB-1", "0.875", "KWD")
    order = create(pricing_key, {
        "customer_id": str(customer.id), "shipping_address": {**NY, "region": "", "country": "KW"},
        "items": [{"product_id": str(a.id), "quantity": 3},
                  {"product_id": str(b.id), "quantity": 1, "discount": "0.125"}],
        "discounts": [{"amount": "0.450"}],
        "shipping_lines": [{"method": "Aramex", "amount": "1.500"}], "total_amount": "5.828",
    })
    # Bases 3.750 / 0.750 share 0.450 as 0.375 / 0.075; tax 5% of 3.375 / 0.675 / 1.500 is 0.169 /
    # 0.034 / 0.075.
    assert lines_of(order) == [("KA-1", "3.750", "0.375", "3.375", "0.169"),
                               ("KB-1", "0.875", "0.200", "0.675", "0.034")]
    assert (order["subtotal"], order["discount_total"], order["tax_total"],
            order["total_amount"]) == (
        "4.625", "0.575", "0.278", "5.828")


@override_settings(**{**TAXES, "TAX_PRICES_INCLUDE_TAX": True})
def test_an_inclusive_tax_order_extracts_the_tax_from_the_price(api, customer):
    a, b = product("GA-1", "12.00", "GBP"), product("GB-1", "5.99", "GBP")
    order = create(api, {
        "customer_id": str(customer.id), "shipping_address": {**NY, "region": "", "country": "GB"},
        "items": [{"product_id": str(a.id), "quantity": 2},
                  {"product_id": str(b.id), "quantity": 1}],
        "shipping_lines": [{"method": "Royal Mail", "amount": "4.80"}], "total_amount": "34.79",
    })
    # 24.00 × 0.2/1.2 = 4.00; 5.99 × 0.2/1.2 = 0.998 → 1.00; shipping 4.80 → 0.80. Included, not
    # added.
    assert lines_of(order) == [("GA-1", "24.00", "0.00", "24.00", "4.00"),
                               ("GB-1", "5.99", "0.00", "5.99", "1.00")]
    assert (order["subtotal"], order["tax_total"], order["shipping_total"], order["total_amount"],
            order["taxes_included"]) == ("29.99", "5.80", "4.80", "34.79", True)


def test_the_guides_payload_keeps_catalog_prices_and_no_tax(api, customer, guide_product):
    order = create(api, {"customer_id": str(customer.id), "items": [
        {"product_id": str(guide_product.id), "sku": "TEST-001", "quantity": 2,
         "unit_price": 29.99}],
        "total_amount": 59.98})
    assert (order["subtotal"], order["tax_total"], order["total_amount"], order["channel"]) == (
        "59.98", "0.00", "59.98", "api")
    assert order["items"][0]["list_price"] == "29.99" and order["items"][0]["taxes"] == []


@override_settings(**TAXES)
@pytest.mark.parametrize("change, status, code", [
    (lambda body: body.update(total_amount="80.90"), 422, "total_mismatch"),
    # without set_prices
    (lambda body: body["items"][1].update(unit_price="15.49"), 422, "price_mismatch"),
    (lambda body: body["items"][1].update(taxes=[{"name": "x", "rate": "0.1", "amount": "1.55"}]),
     403, "set_prices_required"),
    (lambda body: body["items"].append({"product_id": "EUR", "quantity": 1}), 422,
     "mixed_currency"),
    (lambda body: body["items"][0].update(discount="40.01"), 422, "discount_exceeds"),
    (lambda body: body.update(discounts=[{"amount": "60.00"}]), 422, "discount_exceeds"),
    (lambda body: body["items"][0].update(discount="1.001"), 422, "validation_error"),
    (lambda body: body["items"][0].update(quantity="2"), 422, "validation_error"),
])
def test_a_refused_price_writes_nothing(api, customer, change, status, code):
    a, b = product("A-1", "20.00"), product("B-1", "15.50")
    euro = product("E-1", "9.00", "EUR")
    body = {"customer_id": str(customer.id), "shipping_address": NY, "external_id": "X-1",
            "items": [{"product_id": str(a.id), "quantity": 2},
                      {"product_id": str(b.id), "quantity": 1}]}
    change(body)
    for item in body["items"]:
        if item["product_id"] == "EUR":
            item["product_id"] = str(euro.id)
    before = snapshot()
    error = create(api, body, status=status)
    assert error["code"] == code, error
    if code == "total_mismatch":
        assert error["details"]["expected"] == "60.43"  # 55.50 + 8.875% of each line (3.55 + 1.38)
    assert snapshot() == before


def test_prices_of_a_key_without_set_prices_must_be_the_catalogs_even_with_every_wildcard(make_key,
                                                                                          customer):
    a = product("A-1", "20.00")
    star = client_for(make_key("*"))
    error = create(star, {"customer_id": str(customer.id), "items": [
        {"product_id": str(a.id), "quantity": 1, "unit_price": "1.00"}]}, status=422)
    assert error["code"] == "price_mismatch"


def test_a_channel_order_is_taken_once(api, customer):
    a = product("A-1", "20.00")
    body = {"customer_id": str(customer.id), "channel": "amazon", "external_id": "114-0001",
            "items": [{"product_id": str(a.id), "quantity": 1}]}
    first = create(api, body)
    before = snapshot()
    error = create(api, body, status=409)
    assert error["code"] == "duplicate_order" and error["details"]["order_id"] == first["id"]
    assert snapshot() == before
    other_channel = create(api, {**body, "channel": "ebay"})  # the pair is unique, not the id alone
    listed = data_of(api.get("/api/v1/orders",
                             {"channel": "amazon", "external_id": "114-0001"}))["items"]
    assert [o["id"] for o in listed] == [first["id"]]
    searched = data_of(api.get("/api/v1/orders", {"search": "114-0001"}))["items"]
    assert {o["id"] for o in searched} == {first["id"], other_channel["id"]}
    by_prefix = data_of(api.get("/api/v1/orders",
                                {"search": first["order_number"][:-1].lower()}))["items"]
    assert first["id"] in {o["id"] for o in by_prefix}


@pytest.mark.django_db(transaction=True)
def test_two_racing_posts_of_one_channel_order_make_one_order(customer):
    from stateset import services

    a = product("A-1", "20.00")
    _, raw = services.api_key_create(name="race", scopes=["*"])
    body = {"customer_id": str(customer.id), "channel": "shopify", "external_id": "#race",
            "items": [{"product_id": str(a.id), "quantity": 1}]}
    results = run_threads(8, lambda _: client_for(raw).post("/api/v1/orders", body, format="json"))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [409] * 7, statuses
    winner = next(r.json()["data"]["id"] for r in results if r.status_code == 201)
    assert {r.json()["error"]["details"]["order_id"] for r in results
            if r.status_code == 409} == {winner}
    assert Order.objects.count() == 1 and InventoryItem.objects.get(product=a).reserved == 1


def test_spread_sends_the_remainder_to_the_largest_line():
    bases = [Decimal("10.00"), Decimal("10.00"), Decimal("10.00")]
    assert spread(Decimal("1.00"), bases, "USD") == [Decimal("0.34"), Decimal("0.33"),
                                                     Decimal("0.33")]
    assert spread(Decimal("0.02"), [Decimal("1.00"), Decimal("3.00")], "USD") == [Decimal("0.01"),
                                                                                  Decimal("0.01")]
    assert sum(spread(Decimal("7.15"), [Decimal("35.00"), Decimal("15.50"), Decimal("20.97")],
                      "USD")) == Decimal("7.15")


def test_money_is_written_with_the_currencys_digits(api, customer):
    a = product("A-1", "20.00")
    order = create(api, {"customer_id": str(customer.id), "items": [
        {"product_id": str(a.id), "quantity": 1, "unit_price": "20.000", "discount": "-0.00"}],
                         "total_amount": 20})
    assert (order["total_amount"], order["items"][0]["discount_total"]) == ("20.00", "0.00")
    assert OrderEvent.objects.filter(order_id=uuid.UUID(order["id"]),
                                     kind="created").get().data["total_amount"] == "20.00"
