"""The status machine, PATCH with If-Match, events (SPEC §4.4). Cancelling and the status
endpoint (``POST /orders/{id}/cancel|status``) are fulfillment's: its tests cover them."""

import pytest

from orders import services
from orders.models import Order, OrderEvent
from orders.under_lock import TRANSITIONS
from stateset.errors import InvalidTransition

pytestmark = pytest.mark.django_db
STATUSES = [s.value for s in Order.Status]


def put_in(order, status, payment_status="pending"):
    Order.objects.filter(id=order.id).update(status=status, payment_status=payment_status)


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_every_transition_is_allowed_or_409_through_the_service(make_order, current, target):
    """``orders.services.order_transition`` moves along ``TRANSITIONS``; a cancellation is the
    cancel use case of fulfillment (``use_cancel``). A refused move writes nothing."""
    order = make_order()
    put_in(order, current, payment_status="paid")
    before = (Order.objects.get(id=order.id).version,
              OrderEvent.objects.filter(order_id=order.id).count())
    if target in TRANSITIONS[current] and target != "cancelled":
        moved = services.order_transition(order_id=order.id, to_status=target, reason="test")
        assert moved.status == target and Order.objects.get(id=order.id).status == target
        event = OrderEvent.objects.filter(order_id=order.id,
                                          kind="status_changed").latest("created_at")
        assert (event.from_status, event.to_status, event.message) == (current, target, "test")
        return
    with pytest.raises(InvalidTransition) as caught:
        services.order_transition(order_id=order.id, to_status=target, reason="test")
    assert caught.value.code == ("use_cancel" if target == "cancelled" else "invalid_transition")
    order.refresh_from_db()
    assert order.status == current
    assert (order.version, OrderEvent.objects.filter(order_id=order.id).count()) == before


def test_the_machine_is_the_specs():
    assert TRANSITIONS["pending"] == {"confirmed", "processing", "on_hold", "cancelled"}
    assert TRANSITIONS["shipped"] == {"delivered", "on_hold"}
    assert TRANSITIONS["delivered"] == {"refunded"} and TRANSITIONS["refunded"] == set()


def test_refunding_an_unpaid_cancelled_order_is_409(make_order):
    order = make_order()
    put_in(order, "cancelled", payment_status="pending")
    with pytest.raises(InvalidTransition) as caught:
        services.order_transition(order_id=order.id, to_status="refunded")
    assert caught.value.code == "invalid_transition"
    assert Order.objects.get(id=order.id).status == "cancelled"


def test_patch_honours_if_match(api, make_order):
    order = make_order()
    detail = api.get(f"/api/v1/orders/{order.id}")
    etag = detail["ETag"]
    stale = api.patch(f"/api/v1/orders/{order.id}", {"notes": "late"}, format="json",
                      HTTP_IF_MATCH='"999"')
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "precondition_failed"
    order.refresh_from_db()
    assert order.notes == ""
    fresh = api.patch(f"/api/v1/orders/{order.id}", {"notes": "ring twice",
                                                     "shipping_address": {"line1": "1 Main St",
                                                                          "city": "Springfield",
                                                                          "country": "us"}},
                      format="json", HTTP_IF_MATCH=etag)
    assert fresh.status_code == 200, fresh.content
    data = fresh.json()["data"]
    assert data["notes"] == "ring twice" and data["shipping_address"]["country"] == "US"
    assert fresh["ETag"] == f'"{int(etag.strip(chr(34))) + 1}"'
    # cache dropped
    assert api.get(f"/api/v1/orders/{order.id}").json()["data"]["notes"] == "ring twice"


def test_patch_refuses_other_fields(api, make_order):
    order = make_order()
    response = api.patch(f"/api/v1/orders/{order.id}",
                         {"status": "shipped", "total_amount": "0.00"}, format="json")
    assert response.status_code == 422
    assert set(response.json()["error"]["details"]) == {"status", "total_amount"}
    order.refresh_from_db()
    assert order.status == "pending" and str(order.total_amount) != "0.00" and order.version == 1


def test_unknown_order_is_404(api):
    import uuid

    assert api.get(f"/api/v1/orders/{uuid.uuid4()}").status_code == 404
    assert api.get("/api/v1/orders/by-number/ORD-999999999").status_code == 404


def test_by_number_and_events(api, make_order):
    order = make_order()
    order.refresh_from_db()
    found = api.get(f"/api/v1/orders/by-number/{order.order_number.lower()}")
    assert found.status_code == 200 and found.json()["data"]["id"] == str(order.id)
    events = api.get(f"/api/v1/orders/{order.id}/events").json()["data"]
    assert [e["kind"] for e in events["items"]] == ["created", "reserved"]


def test_scopes(client_with, make_order):
    order = make_order()
    reader = client_with("orders:read")
    assert reader.get(f"/api/v1/orders/{order.id}").status_code == 200
    assert reader.patch(f"/api/v1/orders/{order.id}", {"notes": "x"},
                        format="json").status_code == 403
    assert Order.objects.get(id=order.id).notes == ""
    assert client_with("inventory:*").get("/api/v1/orders").status_code == 403
