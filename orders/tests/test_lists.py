"""Lists: fixed query counts, filters, sorting, cursors, customer orders."""

import datetime as dt

import pytest
from django.utils import timezone

from orders.models import Order

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(make_order, make_product):
    def build(count):
        product = make_product(stock=count * 3)
        return [make_order(product=product) for _ in range(count)]

    return build


def warm(api):
    # key lookup and last_used_at happen once, outside the measured block
    api.get("/api/v1/orders?limit=1")


@pytest.mark.parametrize("count", [1, 50])
def test_list_query_count_is_fixed(api, orders, django_assert_num_queries, count):
    orders(count)
    warm(api)
    with django_assert_num_queries(1):  # the whole list fits one page: its length is the total
        response = api.get("/api/v1/orders?limit=100")
    assert response.json()["data"]["total"] == count
    with django_assert_num_queries(2):  # + items of the whole page in one query
        response = api.get("/api/v1/orders?limit=100&include_items=true")
    assert all(len(o["items"]) == 1 for o in response.json()["data"]["items"])
    if count > 1:
        with django_assert_num_queries(2):  # a page with more after it: + the bounded total
            response = api.get("/api/v1/orders?limit=1&page=1")
        assert response.json()["data"]["total"] == count
    with django_assert_num_queries(1):  # the last page, read in full: offset + its rows
        response = api.get(f"/api/v1/orders?limit=1&page={count}")
    assert response.json()["data"]["total"] == count


@pytest.mark.parametrize("count", [1, 30])
def test_detail_and_customer_orders_query_counts_are_fixed(api, orders, customer,
                                                           django_assert_num_queries, count):
    made = orders(count)
    warm(api)
    # order+customer, items, shipping lines, payments, timeline, shipments with items, returns with
    # items
    with django_assert_num_queries(7):
        api.get(f"/api/v1/orders/{made[-1].id}")
    with django_assert_num_queries(0):  # cached
        api.get(f"/api/v1/orders/{made[-1].id}")
    with django_assert_num_queries(2):  # customer exists, page (a short list counts itself)
        response = api.get(f"/api/v1/customers/{customer.id}/orders?limit=100")
    assert response.json()["data"]["total"] == count


def test_list_shape_and_summary_fields(api, orders):
    orders(3)
    data = api.get("/api/v1/orders?page=1&limit=2").json()["data"]
    assert set(data) == {"items", "page", "limit", "total", "total_pages", "total_is_estimate",
                         "next_cursor"}
    assert (data["page"], data["limit"], data["total"], data["total_pages"]) == (1, 2, 3, 2)
    assert data["total_is_estimate"] is False and data["next_cursor"]
    assert "items" not in data["items"][0] and data["items"][0]["total_amount"] == "29.99"
    per_page = api.get("/api/v1/orders?per_page=1").json()["data"]
    assert per_page["limit"] == 1


def test_cursor_walks_every_order_once_in_order(api, orders):
    made = orders(7)
    seen, url = [], "/api/v1/orders?limit=3"
    while url:
        data = api.get(url).json()["data"]
        seen += [row["id"] for row in data["items"]]
        url = (f"/api/v1/orders?limit=3&cursor={data['next_cursor']}" if data["next_cursor"]
               else None)
    assert seen == [str(o.id)
                    for o in sorted(made, key=lambda o: (o.created_at, o.id), reverse=True)]


def test_cursor_for_other_sorts(api, orders):
    orders(5)
    first = api.get("/api/v1/orders?limit=2&sort_by=order_number&sort_order=asc").json()["data"]
    second = api.get(
        f"/api/v1/orders?limit=2&sort_by=order_number&sort_order=asc&cursor={first['next_cursor']}").json()["data"]
    numbers = [r["order_number"] for r in first["items"] + second["items"]]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4


@pytest.mark.parametrize("query",
                         ["colour=red", "sort_by=customer", "limit=101", "limit=0", "page=0",
                                  "status=lost", "customer_id=nope", "created_from=yesterday",
                          "cursor=%%%"])
def test_bad_list_parameters_are_422(api, query):
    response = api.get(f"/api/v1/orders?{query}")
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] in {"invalid_parameter", "invalid_cursor"}


def test_filters_and_search(api, orders, customer):
    made = orders(4)
    Order.objects.filter(id=made[0].id).update(status="cancelled")
    Order.objects.filter(id=made[1].id).update(created_at=made[1].created_at)  # untouched
    assert api.get("/api/v1/orders?status=cancelled").json()["data"]["total"] == 1
    made[2].refresh_from_db()
    by_number = api.get(f"/api/v1/orders?search={made[2].order_number.lower()}").json()["data"][
        "items"]
    assert [o["id"] for o in by_number] == [str(made[2].id)]
    by_email = api.get("/api/v1/orders?search=LOADTEST@example.COM").json()["data"]
    assert by_email["total"] == 4
    future = (timezone.now() + dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert api.get("/api/v1/orders", {"created_from": future}).json()["data"]["total"] == 0
    assert api.get("/api/v1/orders", {"created_to": future}).json()["data"]["total"] == 4


def test_sort_by_total(api, make_order, make_product):
    cheap, dear = make_product(price="1.00"), make_product(price="100.00")
    make_order(product=cheap)
    make_order(product=dear)
    items = api.get("/api/v1/orders?sort_by=total_amount&sort_order=desc").json()["data"]["items"]
    assert [o["total_amount"] for o in items] == ["100.00", "1.00"]


def test_total_becomes_an_estimate_beyond_the_exact_limit(api, orders, settings):
    settings.API_EXACT_COUNT_LIMIT = 5
    orders(8)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    data = api.get("/api/v1/orders?limit=2").json()["data"]
    assert data["total_is_estimate"] is True and data["total"] >= 6


def test_an_estimated_total_is_read_from_the_shared_cache_once_per_process(api, orders, settings,
                                                                             monkeypatch):
    from django.db import connection

    from stateset import pagination

    settings.API_EXACT_COUNT_LIMIT = 5
    orders(8)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    first = api.get("/api/v1/orders?limit=2").json()["data"]
    assert first["total_is_estimate"] is True
    reads = []
    monkeypatch.setattr(pagination.cache, "get", lambda *a, **k: reads.append(a) or None)
    again = api.get("/api/v1/orders?limit=2").json()["data"]
    assert again["total"] == first["total"] and again["total_is_estimate"] is True
    assert not [a for a in reads if str(a[0]).startswith("count-estimate:")]
    pagination.estimates.clear()  # another process: reads the shared cache
    monkeypatch.undo()
    assert api.get("/api/v1/orders?limit=2").json()["data"]["total"] == first["total"]


def test_customer_orders_cache_drops_when_an_order_is_added(api, customer, make_order):
    make_order()
    assert api.get(f"/api/v1/customers/{customer.id}/orders").json()["data"]["total"] == 1
    make_order()
    assert api.get(f"/api/v1/customers/{customer.id}/orders").json()["data"]["total"] == 2


def test_unknown_customer_orders_is_404(api):
    import uuid

    response = api.get(f"/api/v1/customers/{uuid.uuid4()}/orders")
    assert response.status_code == 404 and response.json()["error"]["code"] == "customer_not_found"
