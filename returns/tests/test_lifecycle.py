"""A return's life (SPEC §4.6): request → approve → receive → refund → close, the state machine,
restocking, refunds in Decimal and the order's payment status."""

from decimal import Decimal

import pytest

from inventory.models import InventoryItem, StockMovement
from orders.models import Order, OrderEvent, OrderItem, Payment
from returns import services
from returns.models import Return
from returns.tests.factories import act, request_return
from stateset.testing import data_of, error_of
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def on_hand(product):
    return InventoryItem.objects.get(product_id=product.id).on_hand


def test_the_full_happy_path_restocks_only_resellable_units_and_refunds_exactly(api, make_product,
                                                                                shipped_order):
    shirt, mug, lamp = (make_product(sku="SHIRT", price="19.99"),
                        make_product(sku="MUG", price="5.25"),
                        make_product(sku="LAMP", price="0.10"))
    shipped = shipped_order((shirt, 3), (mug, 2), (lamp, 3))
    before = {p.sku: on_hand(p) for p in (shirt, mug, lamp)}

    rma = request_return(api, shipped, ("SHIRT", 2, "resellable"), ("MUG", 1, "damaged"),
                         ("LAMP", 3, "resellable", False))
    assert rma["status"] == "requested" and rma["rma_number"].startswith("RMA-")
    assert rma["refund_amount"] is None and rma["currency"] == "USD"
    assert {i["sku"]: (i["quantity"], i["condition"], i["restock"]) for i in rma["items"]} == {
        "SHIRT": (2, "resellable", True), "MUG": (1, "damaged", True),
        "LAMP": (3, "resellable", False)}
    assert OrderEvent.objects.filter(order_id=shipped.order.id,
                                     kind="return_requested").count() == 1

    assert act(api, rma, "approve")["status"] == "approved"
    received = act(api, rma, "receive")
    assert received["status"] == "received"
    # Only the resellable, restocked shirts went back on hand, at the location they shipped from.
    movements = StockMovement.objects.filter(kind="return")
    assert [(m.inventory_item.sku, m.on_hand_delta, m.reference_id)
            for m in movements] == [("SHIRT", 2, rma["id"])]
    assert {p.sku: on_hand(p) - before[p.sku] for p in (shirt, mug, lamp)} == {"SHIRT": 2, "MUG": 0,
                                                                               "LAMP": 0}
    assert {i["sku"]: i["location_id"] for i in received["items"]}["SHIRT"] == str(
        InventoryItem.objects.get(product_id=shirt.id).location_id)
    returned = dict(OrderItem.objects.filter(order_id=shipped.order.id).values_list("sku",
                                                                                    "quantity_returned"))
    assert returned == {"SHIRT": 2, "MUG": 1, "LAMP": 3}

    refunded = act(api, rma, "refund")
    # 2 × 19.99 + 1 × 5.25 + 3 × 0.10, in Decimal (0.1 * 3 in float is 0.30000000000000004).
    assert refunded["status"] == "refunded" and refunded["refund_amount"] == "45.53"
    assert Return.objects.get(id=rma["id"]).refund_amount == Decimal("45.53")
    order = Order.objects.get(id=shipped.order.id)
    assert order.payment_status == "partially_refunded" and order.status == "delivered"
    refund_event = OrderEvent.objects.get(order_id=order.id, kind="refunded")
    assert refund_event.data["amount"] == "45.53" and refund_event.data["rma_number"] == rma[
        "rma_number"]

    closed = act(api, rma, "close")
    assert closed["status"] == "closed" and closed["refund_amount"] == "45.53"
    assert closed["version"] == rma["version"] + 4  # one bump per move
    assert list(Event.objects.filter(type__startswith="return.").order_by("created_at")
                .values_list("type", flat=True)) == ["return.requested", "return.approved",
                                                     "return.received", "return.refunded",
                                                     "return.closed"]


def test_refunding_everything_marks_the_order_refunded_across_two_returns(api, make_product,
                                                                          shipped_order):
    product = make_product(sku="CUP", price="0.10")
    other = make_product(sku="PLATE", price="33.33")
    shipped = shipped_order((product, 3), (other, 1))
    first = request_return(api, shipped, ("CUP", 1, "resellable"))
    for verb in ("approve", "receive", "refund"):
        act(api, first, verb)
    order = Order.objects.get(id=shipped.order.id)
    assert (order.payment_status, order.status) == ("partially_refunded", "delivered")

    second = request_return(api, shipped, ("CUP", 2, "defective"), ("PLATE", 1, "resellable"))
    for verb in ("approve", "receive"):
        act(api, second, verb)
    assert act(api, second, "refund")["refund_amount"] == "33.53"
    order.refresh_from_db()
    assert (order.payment_status, order.status) == ("refunded", "refunded")
    assert Decimal("0.10") + Decimal("33.53") == order.total_amount
    moves = OrderEvent.objects.filter(order_id=order.id,
                                      kind="status_changed").order_by("created_at")
    assert (moves.last().from_status, moves.last().to_status) == ("delivered", "refunded")


def test_a_full_refund_of_a_shipped_but_undelivered_order_keeps_its_status(api, make_product,
                                                                           shipped_order):
    product = make_product(price="12.50")
    shipped = shipped_order((product, 2), deliver=False)
    rma = request_return(api, shipped, (product.sku, 2, "resellable"))
    for verb in ("approve", "receive", "refund"):
        act(api, rma, verb)
    order = Order.objects.get(id=shipped.order.id)
    # shipped → refunded is not a move
    assert (order.payment_status, order.status) == ("refunded", "shipped")


def test_refunding_a_return_of_an_unpaid_order_refunds_nothing_and_lets_it_close(
        api, make_product, shipped_order):
    product = make_product()
    shipped = shipped_order((product, 1), paid=False)
    rma = request_return(api, shipped, (product.sku, 1, "resellable"))
    act(api, rma, "approve")
    act(api, rma, "receive")
    refunded = act(api, rma, "refund")  # capped at what was captured: nothing
    assert (refunded["status"], refunded["refund_amount"]) == ("refunded", "0.00")
    order = Order.objects.get(id=shipped.order.id)
    assert order.payment_status == "pending"
    assert not Payment.objects.filter(order_id=order.id).exists()
    assert not OrderEvent.objects.filter(order_id=order.id, kind="refunded").exists()
    assert act(api, rma, "close")["status"] == "closed"


VERBS = {"approve": "approved", "reject": "rejected", "receive": "received", "refund": "refunded",
         "close": "closed", "cancel": "cancelled"}


@pytest.mark.parametrize("current", [s.value for s in Return.Status])
@pytest.mark.parametrize("verb", list(VERBS))
def test_every_transition_is_allowed_or_409(api, make_product, shipped_order, current, verb):
    product = make_product()
    shipped = shipped_order((product, 2))
    rma = request_return(api, shipped, (product.sku, 1, "resellable"))
    # setup: put it in the state under test
    Return.objects.filter(id=rma["id"]).update(status=current)
    target = VERBS[verb]
    response = api.post(f"/api/v1/returns/{rma['id']}/{verb}", format="json")
    row = Return.objects.get(id=rma["id"])
    if target in services.TRANSITIONS[current]:
        assert data_of(response)["status"] == target
        assert row.status == target and row.version == 2
    else:
        error = error_of(response, 409)
        assert error["code"] == "invalid_transition"
        assert error["details"] == {"from": current, "to": target,
                                    "allowed": sorted(services.TRANSITIONS[current])}
        assert (row.status, row.version) == (current, 1)


def test_the_machine_is_the_specs():
    assert services.TRANSITIONS["requested"] == {"approved", "rejected", "cancelled"}
    assert services.TRANSITIONS["approved"] == {"received", "cancelled"}
    assert services.TRANSITIONS["received"] == {"refunded"} and services.TRANSITIONS[
        "refunded"] == {"closed"}
    assert not services.TRANSITIONS["closed"] and not services.TRANSITIONS["rejected"]
    assert not services.TRANSITIONS["cancelled"]


def test_receive_records_what_the_warehouse_found_per_line(api, make_product, shipped_order):
    shirt = make_product(sku="SHIRT")
    shipped = shipped_order((shirt, 2))
    rma = request_return(api, shipped, ("SHIRT", 2, "resellable"))
    act(api, rma, "approve")
    line = rma["items"][0]
    before = on_hand(shirt)
    response = api.post(f"/api/v1/returns/{rma['id']}/receive", {"items": [
        {"return_item_id": line["id"], "condition": "damaged", "restock": False}]},
        format="json")
    received = data_of(response)
    assert received["status"] == "received"
    assert (received["items"][0]["condition"], received["items"][0]["restock"]) == ("damaged",
                                                                                    False)
    assert on_hand(shirt) == before  # damaged units stay out of stock
    assert OrderItem.objects.get(id=line["order_item_id"]).quantity_returned == 2


def test_receive_refuses_a_foreign_line_or_a_condition_twice_and_writes_nothing(
        api, make_product, shipped_order):
    shirt = make_product(sku="SHIRT")
    shipped = shipped_order((shirt, 3))
    rma = request_return(api, shipped, ("SHIRT", 1, "resellable"), ("SHIRT", 1, "damaged"))
    other = request_return(api, shipped, ("SHIRT", 1, "defective"))
    act(api, rma, "approve")
    lines = {item["condition"]: item["id"] for item in rma["items"]}
    for items in ([{"return_item_id": other["items"][0]["id"], "condition": "damaged"}],
                  [{"return_item_id": lines["resellable"], "condition": "damaged"}]):
        response = api.post(f"/api/v1/returns/{rma['id']}/receive", {"items": items},
                            format="json")
        assert error_of(response, 422)["code"] == "validation_error"
    row = Return.objects.get(id=rma["id"])
    assert (row.status, row.version) == ("approved", 2)
    assert sorted(row.items.values_list("condition", flat=True)) == ["damaged", "resellable"]
    assert not StockMovement.objects.filter(kind="return").exists()
