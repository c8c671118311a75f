"""Payments (SPEC §4.4.2): an append-only table, bounds checked under the order lock, a derived
payment_status, and races that never exceed a bound."""

from decimal import Decimal

import pytest

from orders import services
from orders.models import Order, OrderEvent, Payment
from stateset.testing import client_for, data_of, error_of, run_threads
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def pay(api, order, kind, amount=None, **extra):
    body = {"kind": kind, **({"amount": amount} if amount is not None else {}), **extra}
    return api.post(f"/api/v1/orders/{order.id}/payments", body, format="json")


def written(order):
    return (Payment.objects.filter(order_id=order.id).count(),
            Order.objects.get(id=order.id).version,
            OrderEvent.objects.filter(order_id=order.id).count(),
            Event.objects.filter(type="payment.recorded").count())


def test_authorize_capture_in_parts_then_refund(api, make_order, make_product):
    order = make_order(quantity=2, product=make_product(price="25.00"))  # 50.00
    answer = data_of(pay(api, order, "authorize", provider="stripe", reference="pi_1"), 201)
    assert answer["payment"]["kind"] == "authorization" and answer["payment"]["amount"] == "50.00"
    assert answer["payment_status"] == "authorized"
    assert data_of(pay(api, order, "capture", "20.00"), 201)["payment_status"] == "partially_paid"
    # the rest of the authorization
    assert data_of(pay(api, order, "capture"), 201)["payment"]["amount"] == "30.00"
    assert data_of(pay(api, order, "refund", "5.00"), 201)["payment_status"] == "partially_refunded"
    assert data_of(pay(api, order, "refund"), 201)["payment"]["amount"] == "45.00"
    listed = data_of(api.get(f"/api/v1/orders/{order.id}/payments"))["items"]
    assert [(p["kind"], p["amount"]) for p in listed] == [
        ("authorization", "50.00"), ("capture", "20.00"), ("capture", "30.00"), ("refund", "5.00"),
        ("refund", "45.00")]
    detail = data_of(api.get(f"/api/v1/orders/{order.id}"))
    assert detail["payment_status"] == "refunded" and len(detail["payments"]) == 5
    assert Event.objects.filter(type="payment.recorded").count() == 5


def test_void_cancels_the_uncaptured_rest(api, make_order, make_product):
    order = make_order(quantity=1, product=make_product(price="40.00"))
    pay(api, order, "authorize")
    pay(api, order, "capture", "10.00")
    void = data_of(pay(api, order, "void"), 201)
    assert void["payment"]["amount"] == "30.00" and void["payment_status"] == "partially_paid"
    # nothing left to void
    assert error_of(pay(api, order, "void"), 409)["code"] == "payment_exceeds"


def test_a_void_with_nothing_captured_is_pending_again(api, make_order):
    order = make_order()
    pay(api, order, "authorize")
    assert data_of(pay(api, order, "void"), 201)["payment_status"] == "pending"


def test_capture_without_authorization_is_bounded_by_the_unpaid_total(api, make_order,
                                                                      make_product):
    order = make_order(quantity=1, product=make_product(price="12.00"))
    assert data_of(pay(api, order, "capture", "12.00"), 201)["payment_status"] == "paid"
    error = error_of(pay(api, order, "capture", "0.01"), 409)
    assert error["code"] == "payment_exceeds" and error["details"]["allowed"] == "0.00"


@pytest.mark.parametrize("steps, act, amount", [
    ([], "authorize", "30.00"),              # above the order total (29.99)
    ([("authorize", "10.00")], "capture", "10.01"),
    ([("capture", "29.99")], "refund", "30.00"),
    ([], "refund", None),                    # nothing captured
    ([], "void", None),                      # nothing authorized
])
def test_payments_beyond_a_bound_are_409_and_write_nothing(api, make_order, steps, act, amount):
    order = make_order()
    for step, value in steps:
        pay(api, order, step, value)
    before = written(order)
    assert error_of(pay(api, order, act, amount), 409)["code"] == "payment_exceeds"
    assert written(order) == before


def test_bad_payment_bodies_are_422_and_write_nothing(api, make_order):
    order = make_order()
    before = written(order)
    for body in ({"kind": "steal"}, {"kind": "capture", "amount": "1.001"},
                 {"kind": "capture", "amount": "-1"},
                 {"kind": "capture", "amount": True}, {"kind": "capture", "provider": "x" * 65}):
        error_of(api.post(f"/api/v1/orders/{order.id}/payments", body, format="json"), 422)
    assert written(order) == before


def test_a_failed_attempt_is_recorded_and_changes_nothing(api, make_order):
    order = make_order()
    answer = data_of(pay(api, order, "capture", status="failed"), 201)
    assert answer["payment"]["status"] == "failed" and answer["payment_status"] == "pending"
    assert data_of(pay(api, order, "capture"), 201)["payment"]["amount"] == "29.99"


def test_the_status_shorthand_still_authorizes_or_captures_in_full(api, make_order):
    order = make_order()
    api.post(f"/api/v1/orders/{order.id}/payment", {"payment_status": "authorized"}, format="json")
    data_of(api.post(f"/api/v1/orders/{order.id}/payment", {"payment_status": "paid"},
                     format="json"))
    payments = Payment.objects.filter(order_id=order.id).order_by("created_at")
    assert list(payments.values_list("kind", "amount")) == [
        ("authorization", Decimal("29.99")), ("capture", Decimal("29.99"))]


@pytest.mark.django_db(transaction=True)
def test_racing_captures_and_refunds_never_exceed_their_bounds(customer, make_product):
    from stateset import services as platform

    order = services.order_create(customer_id=customer.id, items=[
        # 100.00
        services.OrderLineInput(product_id=make_product(price="10.00").id, quantity=10)]).order
    _, raw = platform.api_key_create(name="race", scopes=["*"])
    captures = run_threads(12, lambda _: pay(client_for(raw), order, "capture", "10.00"))
    assert sorted(r.status_code for r in captures) == [201] * 10 + [409] * 2
    refunds = run_threads(12, lambda _: pay(client_for(raw), order, "refund", "15.00"))
    assert sorted(r.status_code for r in refunds) == [201] * 6 + [409] * 6
    sums = {
        kind: sum(Payment.objects.filter(order_id=order.id, kind=kind).values_list("amount",
                                                                                   flat=True))
            for kind in ("capture", "refund")}
    assert sums == {"capture": Decimal("100.00"), "refund": Decimal("90.00")}
    assert Order.objects.get(id=order.id).payment_status == "partially_refunded"


def test_the_refunded_status_refunds_what_was_captured_and_payment_status_follows_payments(
        api, make_order, make_product):
    order = make_order(quantity=1, product=make_product(price="30.00"))
    pay(api, order, "capture", "12.00")
    data_of(api.post(f"/api/v1/orders/{order.id}/cancel", {}, format="json"))
    moved = data_of(api.post(f"/api/v1/orders/{order.id}/status",
                             {"status": "refunded", "reason": "goodwill"}, format="json"))
    assert (moved["status"], moved["payment_status"]) == ("refunded", "refunded")
    listed = data_of(api.get(f"/api/v1/orders/{order.id}/payments"))["items"]
    assert [(p["kind"], p["amount"]) for p in listed] == [("capture", "12.00"),
                                                          ("refund", "12.00")]
    assert error_of(pay(api, order, "refund"), 409)["code"] == "payment_exceeds"
    changes = OrderEvent.objects.filter(order_id=order.id, kind="status_changed",
                                        to_status="refunded")
    assert changes.count() == 1  # one move, whichever path wrote it


def test_the_refunded_status_of_an_unpaid_order_records_no_payment(api, make_order):
    order = make_order()
    for status in ("processing", "shipped", "delivered"):
        Order.objects.filter(id=order.id).update(status=status)
    moved = data_of(api.post(f"/api/v1/orders/{order.id}/status", {"status": "refunded"},
                             format="json"))
    assert (moved["status"], moved["payment_status"]) == ("refunded", "pending")
    assert not Payment.objects.filter(order_id=order.id).exists()
