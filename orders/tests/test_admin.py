"""The order's page in the back office (SPEC §5): everything above the fold in a fixed number of
queries, the moves legal now that the user may make, and draft orders taken by staff — each through
the same service as the API, refusals shown as messages with nothing written."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.tests.factories import AddressFactory
from inventory.models import InventoryItem, Reservation
from orders import services
from orders.models import Order, OrderEvent, Payment
from orders.tests.factories import OrderFactory
from stateset.testing import staff_client

pytestmark = pytest.mark.django_db


def page_url(order) -> str:
    return f"/admin/orders/order/{order.id}/change/"


def move_url(order, name: str) -> str:
    return f"/admin/orders/order/{order.id}/move/{name}/"


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def count_queries(client, url: str) -> int:
    client.get(url)  # the session, the user and their permissions
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def test_order_page_shows_everything_above_the_fold_in_the_same_queries_at_1_and_50_lines(
        admin_client, customer, make_product):
    small = OrderFactory(customer=customer, lines=[(make_product(sku="ONE-1"), 2)])
    big = OrderFactory(customer=customer,
                       lines=[(make_product(sku=f"MANY-{n:02d}"), 1) for n in range(50)])
    for order in (small, big):
        services.payment_record(order_id=order.id, act="authorize")
        services.payment_record(order_id=order.id, act="capture")
    page = admin_client.get(page_url(big)).content.decode()
    for expected in (big.order_number, "MANY-00", "MANY-49", customer.email, "authorization",
                     "capture", "paid", 'id="order-timeline"', 'id="order-shipments"',
                     'id="order-returns"', "Record a payment", "Confirm"):
        assert expected in page, expected
    assert page.count('class="order-line"') == 50
    assert count_queries(admin_client, page_url(small)) == count_queries(admin_client,
                                                                         page_url(big))


def test_order_page_of_an_unknown_order_redirects_as_django_does(admin_client):
    response = admin_client.get("/admin/orders/order/00000000-0000-0000-0000-000000000000/change/")
    assert response.status_code == 302


def test_record_a_payment_captures_and_says_so(admin_client, make_order):
    order = make_order(quantity=2)
    page = admin_client.get(move_url(order, "payment"))
    assert page.status_code == 200 and b"act" in page.content
    response = admin_client.post(move_url(order, "payment"), {
        "act": "capture", "amount": "", "provider": "stripe", "reference": "ch_1",
        "version": order.version}, follow=True)
    payment = Payment.objects.get(order_id=order.id)
    assert (payment.kind, payment.amount, payment.reference) == ("capture", Decimal("59.98"),
                                                                 "ch_1")
    assert Order.objects.get(id=order.id).payment_status == "paid"
    assert f"{order.order_number}: capture of 59.98 USD recorded; payment status paid." in texts(
        response)
    assert payment.order.events.filter(kind=OrderEvent.Kind.PAYMENT,
                                       actor="admin:admin").exists()


def test_a_payment_beyond_its_bound_is_an_error_message_and_nothing_is_written(admin_client,
                                                                               make_order):
    order = make_order()
    response = admin_client.post(move_url(order, "payment"), {
        "act": "refund", "amount": "5.00", "version": order.version}, follow=True)
    assert response.status_code == 200
    assert any(text.startswith("Record a payment:") for text in texts(response))
    assert not Payment.objects.filter(order_id=order.id).exists()
    assert Order.objects.get(id=order.id).version == order.version


def test_a_stale_payment_form_is_refused(admin_client, make_order):
    order = make_order()
    services.order_update(order_id=order.id, changes={"notes": "moved"})
    response = admin_client.post(move_url(order, "payment"), {
        "act": "capture", "version": order.version}, follow=True)
    assert any("If-Match" in text or "version" in text for text in texts(response))
    assert not Payment.objects.filter(order_id=order.id).exists()


def test_a_user_without_record_payment_sees_no_button_and_a_forged_post_is_refused(make_order):
    order = make_order()
    clerk = staff_client("orders.view_order", "orders.change_order")
    page = clerk.get(page_url(order)).content.decode()
    assert "Confirm" in page and "Record a payment" not in page
    response = clerk.post(move_url(order, "payment"), {"act": "capture",
                                                       "version": order.version})
    assert response.status_code == 403
    assert clerk.get(move_url(order, "payment")).status_code == 403
    assert not Payment.objects.filter(order_id=order.id).exists()
    # The bulk action asks for the same permission.
    changelist = clerk.get("/admin/orders/order/").content.decode()
    assert 'value="mark_paid"' not in changelist
    response = clerk.post("/admin/orders/order/", {"action": "mark_paid",
                                                   "_selected_action": [str(order.id)]})
    assert not Payment.objects.filter(order_id=order.id).exists()


def test_a_view_only_user_sees_the_page_without_buttons(make_order):
    order = make_order()
    viewer = staff_client("orders.view_order")
    page = viewer.get(page_url(order)).content.decode()
    assert order.order_number in page and 'id="moves"' not in page


# --- draft orders -------------------------------------------------------------------------------


def draft(client, customer, *lines, **fields):
    data = {"customer": str(customer.id), "shipping_method": "", "shipping_amount": "",
            "notes": "phone order", "lines-TOTAL_FORMS": "5", "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "1", "lines-MAX_NUM_FORMS": "100", **fields}
    for index, (product, quantity, *price) in enumerate(lines):
        data[f"lines-{index}-product"] = str(product.id)
        data[f"lines-{index}-quantity"] = str(quantity)
        if price:
            data[f"lines-{index}-unit_price"] = price[0]
    return client.post("/admin/orders/order/add/", data, follow=True)


def test_staff_take_a_draft_order_through_the_service_and_it_reserves_stock(customer,
                                                                            make_product):
    AddressFactory(customer=customer, is_default=True, country="US", region="TX")
    widget, gadget = make_product(stock=10), make_product(stock=5, price="5.00")
    clerk = staff_client("orders.view_order", "orders.add_order", "customers.view_customer",
                         "catalog.view_product")
    form = clerk.get("/admin/orders/order/add/")
    assert form.status_code == 200 and b"autocomplete" in form.content
    assert b"unit_price" not in form.content  # catalog prices: the user may not set them
    response = draft(clerk, customer, (widget, 3, "1.00"), (gadget, 2),
                     shipping_method="ground", shipping_amount="4.50")
    order = Order.objects.get()
    assert response.redirect_chain[-1][0] == page_url(order)
    assert (order.channel, order.total_amount, order.notes) == ("admin", Decimal("104.47"),
                                                                "phone order")
    assert order.shipping_address["region"] == "TX"
    prices = dict(order.items.values_list("sku", "unit_price"))
    assert prices == {widget.sku: Decimal("29.99"), gadget.sku: Decimal("5.00")}
    assert InventoryItem.objects.get(product_id=widget.id).reserved == 3
    assert Reservation.objects.filter(reference_id=str(order.id), status="active").count() == 2
    assert f"{order.order_number}: created for {customer.email}, 5 unit(s)" in texts(response)[0]
    assert order.events.get(kind="created").actor.startswith("admin:")


def test_a_user_who_may_set_prices_prices_the_draft(customer, make_product):
    widget = make_product(stock=10)
    pricer = staff_client("orders.view_order", "orders.add_order", "orders.set_prices")
    assert b"unit_price" in pricer.get("/admin/orders/order/add/").content
    draft(pricer, customer, (widget, 1, "10.00"))
    item = Order.objects.get().items.get()
    assert (item.unit_price, item.list_price) == (Decimal("10.00"), Decimal("29.99"))


def test_a_draft_beyond_the_stock_is_an_error_and_nothing_is_written(admin_client, customer,
                                                                     make_product):
    widget = make_product(stock=2)
    response = draft(admin_client, customer, (widget, 3))
    assert response.status_code == 200
    assert any(text.startswith("Not created:") for text in texts(response))
    assert not Order.objects.exists()
    assert InventoryItem.objects.get(product_id=widget.id).reserved == 0


def test_a_draft_needs_a_line_and_a_customer(admin_client, customer):
    response = admin_client.post("/admin/orders/order/add/", {
        "customer": "", "lines-TOTAL_FORMS": "5", "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "1", "lines-MAX_NUM_FORMS": "100"})
    assert response.status_code == 200 and b"errornote" in response.content
    assert not Order.objects.exists()


def test_a_user_without_add_order_may_not_take_a_draft(customer, make_product):
    widget = make_product(stock=10)
    clerk = staff_client("orders.view_order", "orders.change_order")
    assert clerk.get("/admin/orders/order/add/").status_code == 403
    assert draft(clerk, customer, (widget, 1)).status_code == 403
    assert not Order.objects.exists()
    assert InventoryItem.objects.get(product_id=widget.id).reserved == 0


def test_products_and_customers_are_found_by_autocomplete(customer, make_product):
    widget = make_product(sku="AUTO-1", name="Autocompleted")
    clerk = staff_client("orders.add_order", "customers.view_customer", "catalog.view_product")
    found = clerk.get("/admin/autocomplete/", {"app_label": "orders", "model_name": "orderitem",
                                               "field_name": "product", "term": "AUTO"}).json()
    assert [row["id"] for row in found["results"]] == [str(widget.id)]
    found = clerk.get("/admin/autocomplete/", {"app_label": "orders", "model_name": "order",
                                               "field_name": "customer",
                                               "term": customer.email}).json()
    assert [row["id"] for row in found["results"]] == [str(customer.id)]


def test_the_channel_filter_offers_every_channel_without_a_distinct_scan(admin_client, customer,
                                                                          make_product):
    product = make_product(sku="CHAN-1")
    for channel in ("shopify", "api", "amazon", "shopify"):
        OrderFactory(customer=customer, lines=[(product, 1)], channel=channel)
    with CaptureQueriesContext(connection) as captured:
        page = admin_client.get("/admin/orders/order/").content.decode()
    assert not any("DISTINCT" in q["sql"] for q in captured)
    for channel in ("amazon", "api", "shopify"):
        assert f"?channel={channel}" in page
    filtered = admin_client.get("/admin/orders/order/?channel=shopify")
    assert filtered.status_code == 200
    assert len(filtered.context["cl"].result_list) == 2
