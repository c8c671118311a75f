"""Refunds of returns (SPEC §4.4.2, §4.6): each returned unit refunds its share of its line's net
price and tax — exactly what was paid for it — recorded as a refund payment."""

from decimal import Decimal

import pytest
from django.test import override_settings

from orders.models import Order, OrderItem, Payment
from orders.services import DiscountInput
from returns.models import ReturnItem
from returns.tests.factories import act, request_return

pytestmark = pytest.mark.django_db

NY = {"line1": "1 Main St", "city": "New York", "region": "NY", "country": "US"}


@override_settings(TAX_RATES={"US-NY": "0.08875"}, TAX_PRICES_INCLUDE_TAX=False,
                   TAX_SHIPPING_TAXABLE=False)
def test_returning_a_discounted_line_refunds_its_net_price_plus_tax_share(api, make_product,
                                                                          shipped_order):
    a, b = make_product(price="20.00", sku="A"), make_product(price="15.50", sku="B")
    # A: 40.00 − 5.00 own − 3.50 share = 31.50 net, 2.80 tax; B: 15.50 − 1.55 = 13.95 net, 1.24 tax.
    shipped = shipped_order((a, 2, "5.00"), (b, 1), discounts=[DiscountInput(amount="5.05")],
                            shipping_address=NY)
    line = OrderItem.objects.get(id=shipped.items["A"].id)
    assert (line.net_total, line.tax_total) == (Decimal("31.50"), Decimal("2.80"))
    first = request_return(api, shipped, ("A", 1, "resellable"))
    for verb in ("approve", "receive"):
        act(api, first, verb)
    refunded = act(api, first, "refund")
    assert refunded["refund_amount"] == "17.15"  # 31.50/2 = 15.75 and 2.80/2 = 1.40
    second = request_return(api, shipped, ("A", 1, "damaged"))
    for verb in ("approve", "receive"):
        act(api, second, verb)
    # The line's last unit takes the remainder: the two refunds sum to what the line cost.
    assert act(api, second, "refund")["refund_amount"] == "17.15"
    refunds = Payment.objects.filter(order_id=shipped.order.id, kind="refund").values_list("amount",
                                                                                           flat=True)
    assert sorted(refunds) == [Decimal("17.15"), Decimal("17.15")]
    assert Order.objects.get(id=shipped.order.id).payment_status == "partially_refunded"


def test_an_odd_split_gives_the_last_unit_the_remainder(api, make_product, shipped_order):
    a = make_product(price="10.00", sku="A")
    shipped = shipped_order((a, 3, "1.00"))  # 29.00 net over 3 units: 9.67 + 9.67 + 9.66
    amounts = []
    for _ in range(3):
        rma = request_return(api, shipped, ("A", 1, "resellable"))
        for verb in ("approve", "receive"):
            act(api, rma, verb)
        amounts.append(act(api, rma, "refund")["refund_amount"])
    assert amounts == ["9.67", "9.67", "9.66"]
    assert Order.objects.get(id=shipped.order.id).payment_status == "refunded"


def test_one_line_may_come_back_in_two_conditions(api, make_product, shipped_order):
    a = make_product(price="10.00", sku="A")
    shipped = shipped_order((a, 2))
    rma = request_return(api, shipped, ("A", 1, "resellable"), ("A", 1, "damaged"))
    assert sorted(item["condition"] for item in rma["items"]) == ["damaged", "resellable"]
    for verb in ("approve", "receive"):
        act(api, rma, verb)
    assert act(api, rma, "refund")["refund_amount"] == "20.00"
    assert sorted(ReturnItem.objects.filter(rma_id=rma["id"]).values_list("refund_amount",
                                                                          flat=True)) == [
        Decimal("10.00"), Decimal("10.00")]
    # Both conditions count against what may still come back.
    assert request_return(api, shipped, ("A", 1, "resellable"),
                          status=422)["code"] == "exceeds_returnable"


def test_the_same_line_and_condition_twice_is_refused(api, make_product, shipped_order):
    shipped = shipped_order((make_product(sku="A"), 2))
    error = request_return(api, shipped, ("A", 1, "damaged"), ("A", 1, "damaged"), status=422)
    assert error["code"] == "validation_error"


def test_a_refund_is_capped_at_what_was_captured(api, make_product, shipped_order):
    shipped = shipped_order((make_product(price="10.00", sku="A"), 2), paid=False)
    from orders import services

    services.payment_record(order_id=shipped.order.id, act="capture", amount="5.00")
    rma = request_return(api, shipped, ("A", 2, "resellable"))
    for verb in ("approve", "receive"):
        act(api, rma, verb)
    assert act(api, rma, "refund")["refund_amount"] == "5.00"
