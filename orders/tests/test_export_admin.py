"""CSV export in constant memory, and the orders back office."""

import csv
import io
import tracemalloc
from unittest import mock

import pytest
from django.db import connection

from orders import services
from orders.models import Order
from stateset.errors import Conflict

pytestmark = pytest.mark.django_db


def bulk_orders(customer, count: int) -> None:
    """``count`` orders in one INSERT (numbers from the real sequence), for volume tests."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO orders_order (id, created_at, customer_id, status, payment_status,
                fulfillment_status, currency, subtotal, tax_total, shipping_total, discount_total,
                total_amount, notes, metadata, version, updated_at)
            SELECT gen_random_uuid(), now() - (n || ' seconds')::interval, %s, 'pending', 'pending',
                'unfulfilled', 'USD', 10.00, 0, 0, 0, 10.00, '', '{}', 1, now()
            FROM generate_series(1, %s) AS n
            """,
            [customer.id, count],
        )


def test_export_streams_50k_orders_in_constant_memory(api, customer):
    bulk_orders(customer, 50_000)
    api.get("/api/v1/health")
    response = api.get("/api/v1/orders/export.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.streaming
    tracemalloc.start()
    size, lines, first = 0, 0, None
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
        if first is None:
            first = chunk
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert lines == 50_001  # header + every order
    assert size > 5_000_000
    # Holding all 50k rows as Python tuples takes over 30 MB; streaming peaks at one chunk of rows.
    assert peak < 8_000_000, f"peak {peak} bytes while streaming {size} bytes"
    header = next(csv.reader(io.StringIO(first.decode())))
    assert header[:3] == ["order_number", "id", "created_at"]


def test_export_applies_the_list_filters(api, make_order):
    kept = make_order()
    gone = make_order()
    Order.objects.filter(id=gone.id).update(status="cancelled")
    rows = list(
        csv.reader(
            io.StringIO(
                b"".join(
                    api.get(
                        "/api/v1/orders/export.csv?status=pending").streaming_content).decode())))
    assert [r[1] for r in rows[1:]] == [str(kept.id)]
    assert api.get("/api/v1/orders/export.csv?bogus=1").status_code == 422


@pytest.mark.parametrize("count", [1, 50])
def test_admin_changelist_query_count_is_fixed(admin_client, make_order, make_product,
                                               django_assert_max_num_queries, count):
    product = make_product(stock=200)
    for _ in range(count):
        make_order(product=product)
    admin_client.get("/admin/orders/order/")  # session and permission caches
    with django_assert_max_num_queries(9) as captured:
        response = admin_client.get("/admin/orders/order/")
    assert response.status_code == 200
    assert response.content.count(b'class="field-order_number"') == count
    fixed = len(captured)
    with django_assert_max_num_queries(fixed):
        admin_client.get("/admin/orders/order/?status__exact=pending&created_at__year=2026")


def test_admin_search_by_number_and_email(admin_client, make_order):
    order = make_order()
    order.refresh_from_db()
    hit = admin_client.get("/admin/orders/order/", {"q": order.order_number})
    assert order.order_number.encode() in hit.content
    by_email = admin_client.get("/admin/orders/order/", {"q": "loadtest@example.com"})
    assert order.order_number.encode() in by_email.content
    miss = admin_client.get("/admin/orders/order/", {"q": "nobody@example.com"})
    assert order.order_number.encode() not in miss.content


def test_admin_change_page_shows_items_and_timeline(admin_client, make_order,
                                                    django_assert_max_num_queries):
    order = make_order()
    response = admin_client.get(f"/admin/orders/order/{order.id}/change/")
    assert response.status_code == 200
    assert b"Widget" in response.content and b"reserved" in response.content


def test_admin_date_hierarchy_does_not_scan_distinct_dates(admin_client, make_order,
                                                           django_assert_max_num_queries):
    make_order()
    with django_assert_max_num_queries(12) as captured:
        admin_client.get("/admin/orders/order/")
    assert not any("DISTINCT" in q["sql"] and "DATE_TRUNC" in q["sql"].upper()
                   for q in captured.captured_queries)


def test_admin_index_shows_todays_orders_revenue_and_low_stock(admin_client, make_order,
                                                               make_product):
    from inventory.models import InventoryItem

    cheap = make_product(price="10.00", stock=3)
    make_order(quantity=2, product=cheap)
    cancelled = make_order(quantity=1, product=make_product(price="99.00"))
    Order.objects.filter(id=cancelled.id).update(status="cancelled")
    InventoryItem.objects.filter(product_id=cheap.id).update(reorder_point=5)
    response = admin_client.get("/admin/")
    html = response.content.decode()
    assert '<td id="orders-today"><a href="/admin/orders/order/?created_at__gte=' in html
    assert '">2</a></td>' in html.split('id="orders-today"')[1]
    assert "20.00 USD" in html and "99.00" not in html.split('id="revenue-today"')[1].split(
        "</td>")[0]
    assert cheap.sku in html.split('id="low-stock"')[1]


def change_form_data(page) -> dict[str, str]:
    """What the browser would post back from a change page: the inline formsets' management forms
    and rows as rendered."""
    data: dict[str, str] = {}
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, field in formset.management_form.fields.items():
            initial = formset.management_form.initial.get(name, field.initial)
            data[f"{formset.prefix}-{name}"] = str(initial or 0)
        for form in formset.forms:
            data[form.add_prefix("id")] = str(form.instance.pk)
            data[form.add_prefix(formset.fk.name)] = str(formset.instance.pk)
    return data


def test_admin_saves_notes_through_the_service_and_shows_a_refusal(admin_client, make_order):
    order = make_order()
    path = f"/admin/orders/order/{order.id}/change/"
    page = admin_client.get(path)
    response = admin_client.post(path, {**change_form_data(page), "notes": "call before delivery"})
    assert response.status_code == 302, response.content[:2000]
    order.refresh_from_db()
    assert (order.notes, order.version) == ("call before delivery", 2)
    assert order.events.filter(kind="updated").count() == 1

    def refuse(**kwargs):
        raise Conflict("The order changed meanwhile.")

    with mock.patch.object(services, "order_update", refuse):
        refused = admin_client.post(path,
                                    {**change_form_data(admin_client.get(path)), "notes": "other"},
                                    follow=True)
    shown = [str(message) for message in refused.context["messages"]]
    assert shown == ["Not saved: The order changed meanwhile."]
    order.refresh_from_db()
    assert order.notes == "call before delivery"
