"""Back office: the returns changelist stays fast; actions call the services; the order page shows
its returns."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages

from inventory import services as inventory_services
from inventory.models import InventoryItem, StockMovement
from orders.models import Order, Payment
from returns.models import Return, ReturnItem
from returns.tests.factories import ReturnFactory, request_return
from stateset.testing import staff_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("count", [1, 20])
def test_changelist_query_count_is_fixed(admin_client, api, make_product, shipped_order,
                                         django_assert_max_num_queries, count):
    shipped = shipped_order((make_product(sku="A"), count))
    for _ in range(count):
        request_return(api, shipped, ("A", 1, "resellable"))
    admin_client.get("/admin/returns/return/")  # session and permission caches
    with django_assert_max_num_queries(8) as captured:
        response = admin_client.get("/admin/returns/return/")
    assert response.status_code == 200
    assert response.content.count(b'class="field-order_number"') == count
    fixed = len(captured)
    with django_assert_max_num_queries(fixed):
        admin_client.get("/admin/returns/return/?status__exact=requested")


def test_search_by_rma_or_order_number(admin_client, api, make_product, shipped_order):
    shipped = shipped_order((make_product(sku="A"), 2))
    rma = request_return(api, shipped, ("A", 1, "resellable"))
    shipped.order.refresh_from_db()
    for term in (rma["rma_number"], rma["rma_number"].lower(), shipped.order.order_number):
        assert rma["rma_number"].encode() in admin_client.get("/admin/returns/return/",
                                                              {"q": term}).content
    assert rma["rma_number"].encode() not in admin_client.get("/admin/returns/return/",
                                                              {"q": "RMA-999999"}).content


def test_actions_call_the_services_and_report_errors(admin_client, api, make_product,
                                                     shipped_order):
    product = make_product(sku="A")
    shipped = shipped_order((product, 2))
    rma = request_return(api, shipped, ("A", 2, "resellable"))

    def run(action):
        return admin_client.post("/admin/returns/return/",
                                 {"action": action, "_selected_action": [rma["id"]]}, follow=True)

    # Refunding a requested return is refused by the state machine and reported, not applied.
    response = run("refund_returns")
    assert b"A return cannot go from requested to refunded" in response.content
    assert Return.objects.get(id=rma["id"]).status == "requested"
    assert b"1 return(s) approved." in run("approve_returns").content
    assert b"1 return(s) received." in run("receive_returns").content
    assert StockMovement.objects.filter(kind="return",
                                        reference_id=rma["id"]).get().on_hand_delta == 2
    assert b"1 return(s) refunded." in run("refund_returns").content
    row = Return.objects.get(id=rma["id"])
    assert (row.status, row.refund_amount) == ("refunded", Decimal("20.00"))
    assert row.notes.endswith("refunded: admin action")


def test_change_page_and_order_page_show_the_return(admin_client, api, make_product, shipped_order):
    shipped = shipped_order((make_product(sku="A"), 1))
    rma = request_return(api, shipped, ("A", 1, "damaged"))
    page = admin_client.get(f"/admin/returns/return/{rma['id']}/change/")
    assert page.status_code == 200 and b"damaged" in page.content
    order_page = admin_client.get(f"/admin/orders/order/{shipped.order.id}/change/")
    assert order_page.status_code == 200 and rma["rma_number"].encode() in order_page.content
    items = admin_client.get("/admin/returns/returnitem/")
    assert items.status_code == 200


# --- the order page's "Create a return" and the return page's moves (SPEC §5) --------------------


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def return_move(rma, name: str) -> str:
    return f"/admin/returns/return/{rma.id}/move/{name}/"


def as_requested(rma) -> dict[str, str]:
    """The receive form as it comes, submitted unchanged."""
    data = {}
    for line in rma.items.all():
        data[f"condition_{line.id}"] = line.condition
        data[f"location_{line.id}"] = str(line.location_id or "")
        if line.restock:
            data[f"restock_{line.id}"] = "on"
    return data


def state(rma) -> tuple:
    row = Return.objects.get(id=rma.id)
    return row.status, row.version, list(row.items.order_by("id").values_list(
        "condition", "restock", "location_id"))


def test_create_a_return_from_the_order_page_in_two_conditions(admin_client, make_product,
                                                               shipped_order, location):
    shipped = shipped_order((make_product(sku="A"), 3))
    order, item = shipped.order, shipped.items["A"]
    page = admin_client.get(f"/admin/orders/order/{order.id}/change/").content.decode()
    assert 'id="move-return"' in page
    form = admin_client.get(f"/admin/orders/order/{order.id}/move/return/")
    assert form.status_code == 200 and b"3 unit(s) returnable" in form.content
    response = admin_client.post(f"/admin/orders/order/{order.id}/move/return/", {
        "reason": "too big", f"resellable_{item.id}": "1", f"damaged_{item.id}": "1",
        f"defective_{item.id}": "0", f"restock_{item.id}": "on",
        f"location_{item.id}": str(location.id)}, follow=True)
    rma = Return.objects.get()
    assert (f"{order.order_number}: return {rma.rma_number} requested for 2 unit(s)."
            in texts(response))
    assert sorted(rma.items.values_list("condition", "quantity")) == [("damaged", 1),
                                                                       ("resellable", 1)]
    assert rma.reason == "too big"


def test_a_return_beyond_what_shipped_is_refused_and_nothing_is_written(admin_client,
                                                                        make_product,
                                                                        shipped_order):
    shipped = shipped_order((make_product(sku="A"), 2))
    item = shipped.items["A"]
    ReturnFactory(order=shipped.order, lines=[(item, 1, "resellable")])
    url = f"/admin/orders/order/{shipped.order.id}/move/return/"
    # The form was read when 2 were returnable; another return took one since.
    response = admin_client.post(url, {f"resellable_{item.id}": "2", f"damaged_{item.id}": "0",
                                       f"defective_{item.id}": "0"})
    assert response.status_code == 200 and b"errornote" in response.content
    assert Return.objects.count() == 1
    ReturnFactory(order=shipped.order, lines=[(item, 1, "damaged")])
    response = admin_client.post(url, {f"resellable_{item.id}": "1"}, follow=True)
    assert "Create a return: not possible now (it is delivered)." in texts(response)
    assert Return.objects.count() == 2


def test_creating_a_return_needs_add_return(make_product, shipped_order):
    shipped = shipped_order((make_product(sku="A"), 1))
    item = shipped.items["A"]
    clerk = staff_client("orders.view_order", "orders.change_order", "returns.view_return")
    page = clerk.get(f"/admin/orders/order/{shipped.order.id}/change/").content.decode()
    assert 'id="move-return"' not in page
    response = clerk.post(f"/admin/orders/order/{shipped.order.id}/move/return/", {
        f"resellable_{item.id}": "1", f"damaged_{item.id}": "0", f"defective_{item.id}": "0"})
    assert response.status_code == 403 and not Return.objects.exists()


def test_approve_receive_per_line_refund_and_close_from_the_return_page(
        admin_client, make_product, shipped_order, location):
    product = make_product(sku="A", stock=10)
    shipped = shipped_order((product, 2))
    item = shipped.items["A"]
    east = inventory_services.location_create(code="EAST", name="East", priority=5)
    rma = ReturnFactory(order=shipped.order, lines=[(item, 2, "resellable")])
    page = admin_client.get(f"/admin/returns/return/{rma.id}/change/").content.decode()
    assert all(f'id="move-{name}"' in page for name in ("approve", "reject", "cancel"))
    assert 'id="move-receive"' not in page and 'id="move-refund"' not in page
    response = admin_client.post(return_move(rma, "approve"), {"approve-note": "ok"},
                                 follow=True)
    assert f"{shipped.order.order_number}: {rma.rma_number} approved." in texts(response)
    line = rma.items.get()
    form = admin_client.get(return_move(rma, "receive"))
    assert form.status_code == 200 and b"EAST" in form.content
    response = admin_client.post(return_move(rma, "receive"), {
        f"condition_{line.id}": "resellable", f"restock_{line.id}": "on",
        f"location_{line.id}": str(east.id), "note": "checked"}, follow=True)
    assert (f"{shipped.order.order_number}: {rma.rma_number} received; 2 unit(s) back on hand."
            in texts(response))
    assert InventoryItem.objects.get(product_id=product.id, location_id=east.id).on_hand == 2
    assert rma.items.get().location_id == east.id
    response = admin_client.post(return_move(rma, "refund"), follow=True)
    assert f"{shipped.order.order_number}: {rma.rma_number} refunded (20.00 USD)." in texts(
        response)
    assert Payment.objects.filter(order_id=shipped.order.id, kind="refund").count() == 1
    admin_client.post(return_move(rma, "close"))
    assert Return.objects.get(id=rma.id).status == "closed"


def test_receive_records_what_the_warehouse_found(admin_client, make_product, shipped_order,
                                                  location):
    product = make_product(sku="A", stock=10)
    shipped = shipped_order((product, 1))
    rma = ReturnFactory(order=shipped.order, lines=[(shipped.items["A"], 1, "resellable")])
    admin_client.post(return_move(rma, "approve"))
    line = rma.items.get()
    on_hand = InventoryItem.objects.get(product_id=product.id).on_hand
    response = admin_client.post(return_move(rma, "receive"), {
        f"condition_{line.id}": "damaged", f"location_{line.id}": ""}, follow=True)
    assert "0 unit(s) back on hand" in texts(response)[-1]
    line.refresh_from_db()
    assert (line.condition, line.restock) == ("damaged", False)
    assert InventoryItem.objects.get(product_id=product.id).on_hand == on_hand
    assert not StockMovement.objects.filter(kind="return").exists()


def test_return_moves_not_legal_now_and_service_refusals_write_nothing(
        admin_client, make_product, shipped_order):
    shipped = shipped_order((make_product(sku="A"), 1), paid=False)
    rma = ReturnFactory(order=shipped.order, lines=[(shipped.items["A"], 1, "resellable")])
    before = state(rma)
    response = admin_client.post(return_move(rma, "refund"), follow=True)
    assert "Refund: not possible now (it is requested)." in texts(response)
    response = admin_client.post(return_move(rma, "close"), follow=True)
    assert "Close: not possible now (it is requested)." in texts(response)
    assert state(rma) == before
    admin_client.post(return_move(rma, "approve"))
    admin_client.post(return_move(rma, "receive"), as_requested(rma))
    received = state(rma)
    assert received[0] == "received"
    # Nothing was captured: the refund is capped at nothing, and no payment is recorded.
    admin_client.post(return_move(rma, "refund"), follow=True)
    assert Return.objects.get(id=rma.id).status == "refunded"
    assert not Payment.objects.filter(order_id=shipped.order.id).exists()


def test_reject_and_cancel(admin_client, make_product, shipped_order):
    shipped = shipped_order((make_product(sku="A"), 2))
    item = shipped.items["A"]
    first = ReturnFactory(order=shipped.order, lines=[(item, 1, "resellable")])
    second = ReturnFactory(order=shipped.order, lines=[(item, 1, "damaged")])
    admin_client.post(return_move(first, "reject"), {"reject-note": "worn"})
    admin_client.post(return_move(second, "cancel"), {"cancel-note": "customer kept it"})
    assert Return.objects.get(id=first.id).status == "rejected"
    assert Return.objects.get(id=first.id).notes.endswith("rejected: worn")
    assert Return.objects.get(id=second.id).status == "cancelled"


def test_each_return_move_needs_its_permission(make_product, shipped_order):
    shipped = shipped_order((make_product(sku="A"), 1))
    rma = ReturnFactory(order=shipped.order, lines=[(shipped.items["A"], 1, "resellable")])
    warehouse = staff_client("returns.view_return", "returns.receive_return")
    page = warehouse.get(f"/admin/returns/return/{rma.id}/change/").content.decode()
    assert 'id="moves"' not in page  # requested: only approve, reject, cancel — not theirs
    for move in ("approve", "reject", "cancel", "refund", "close"):
        assert warehouse.post(return_move(rma, move)).status_code == 403, move
    assert state(rma)[0] == "requested"
    support = staff_client("returns.view_return", "returns.change_return")
    support.post(return_move(rma, "approve"))
    assert support.post(return_move(rma, "receive"), as_requested(rma)).status_code == 403
    assert support.get(return_move(rma, "receive")).status_code == 403
    assert Return.objects.get(id=rma.id).status == "approved"
    page = warehouse.get(f"/admin/returns/return/{rma.id}/change/").content.decode()
    assert 'id="move-receive"' in page and 'id="move-cancel"' not in page
    warehouse.post(return_move(rma, "receive"), as_requested(rma))
    assert Return.objects.get(id=rma.id).status == "received"
    assert warehouse.post(return_move(rma, "refund")).status_code == 403
    # The bulk actions ask for the same permissions.
    response = support.post("/admin/returns/return/", {"action": "refund_returns",
                                                      "_selected_action": [str(rma.id)]})
    assert response.status_code in (200, 302)
    assert Return.objects.get(id=rma.id).status == "received"
    assert not Order.objects.get(id=shipped.order.id).payments.filter(kind="refund").exists()
    assert ReturnItem.objects.get(rma_id=rma.id).refund_amount is None
