"""Recording a payment: pending → authorized → paid, forward only, never on a cancelled order."""

import pytest

from orders import services
from orders.models import Order, OrderEvent
from stateset.testing import data_of, error_of

pytestmark = pytest.mark.django_db


def cancel(order_id):
    """Cancel through the orders side of the use case (fulfillment's order_cancel adds its
    shipments)."""
    from django.db import transaction

    from orders import locks, under_lock

    with transaction.atomic():
        under_lock.order_move(order=locks.lock_order(order_id), to_status="cancelled")


def pay(api, order, status, **headers):
    return api.post(f"/api/v1/orders/{order.id}/payment", {"payment_status": status}, format="json",
                    **headers)


def test_authorized_then_paid_each_with_a_timeline_note(api, make_order):
    order = make_order()
    assert data_of(pay(api, order, "authorized"))["payment_status"] == "authorized"
    answer = pay(api, order, "paid", HTTP_IF_MATCH='"2"')
    assert data_of(answer)["payment_status"] == "paid" and answer["ETag"] == '"3"'
    notes = OrderEvent.objects.filter(order_id=order.id, kind="payment").order_by("created_at")
    assert [(e.data["kind"], e.data["amount"], e.data["payment_status"]) for e in notes] == [
        # the whole total, then the rest
        ("authorization", "29.99", "authorized"), ("capture", "29.99", "paid")]


@pytest.mark.parametrize("setup, status, code", [
    ("paid", "authorized", 409),
    ("paid", "paid", 409),
    ("cancelled", "paid", 409),
    ("pending", "refunded", 422),
    ("pending", "partially_refunded", 422),
])
def test_illegal_payment_moves_are_refused_and_write_nothing(api, make_order, setup, status, code):
    order = make_order()
    if setup == "paid":
        services.order_record_payment(order_id=order.id, payment_status="paid")
    elif setup == "cancelled":
        cancel(order.id)
    before = (Order.objects.get(id=order.id).version,
              OrderEvent.objects.filter(order_id=order.id).count())
    error_of(pay(api, order, status), code)
    assert (Order.objects.get(id=order.id).version,
            OrderEvent.objects.filter(order_id=order.id).count()) == before


def test_a_stale_if_match_is_412(api, make_order):
    order = make_order()
    assert error_of(pay(api, order, "paid", HTTP_IF_MATCH='"9"'),
                    412)["code"] == "precondition_failed"
    assert Order.objects.get(id=order.id).payment_status == "pending"


def test_admin_mark_paid_goes_through_the_service(admin_client, make_order):
    order, cancelled = make_order(), make_order()
    cancel(cancelled.id)
    response = admin_client.post("/admin/orders/order/", {"action": "mark_paid",
                                                          "_selected_action": [str(order.id),
                                                                               str(cancelled.id)]},
                                 follow=True)
    shown = sorted(str(message) for message in response.context["messages"])
    assert shown[0] == "1 order(s) marked paid."
    assert shown[1].startswith(f"{cancelled.order_number}: A cancelled order takes no new capture")
    assert Order.objects.get(id=order.id).payment_status == "paid"
    assert Order.objects.get(id=cancelled.id).payment_status == "pending"
