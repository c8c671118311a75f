"""Reads and the API's edges: lists with a fixed query count, detail with ETag, the order detail
embedding returns, scopes, idempotent POST."""

import uuid

import pytest

from returns.models import Return
from returns.tests.factories import act
from stateset.testing import data_of, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def returns_of(api, make_product, shipped_order):
    """returns_of(n) → (shipped order, n one-unit returns of it, oldest first)."""

    def build(count):
        shipped = shipped_order((make_product(sku="A"), count), (make_product(sku="B"), count))
        made = []
        for _ in range(count):
            made.append(
                data_of(api.post("/api/v1/returns", {"order_id": str(shipped.order.id), "items": [
                {"order_item_id": str(shipped.items["A"].id), "quantity": 1,
                 "condition": "resellable"},
                {"order_item_id": str(shipped.items["B"].id), "quantity": 1,
                 "condition": "damaged"}]},
                format="json"), 201))
        return shipped, made

    return build


def warm(api):
    # key lookup and last_used_at happen once, outside the measured block
    api.get("/api/v1/returns?limit=1")


@pytest.mark.parametrize("count", [1, 20])
def test_list_query_count_is_fixed(api, returns_of, django_assert_num_queries, count):
    shipped, made = returns_of(count)
    warm(api)
    with django_assert_num_queries(2):  # one page (the whole list: no count), the page's items
        response = api.get("/api/v1/returns?limit=100")
    data = data_of(response)
    assert data["total"] == count and len(data["items"]) == count
    assert all(len(r["items"]) == 2 for r in data["items"])
    with django_assert_num_queries(2):
        filtered = data_of(api.get(f"/api/v1/returns?order_id={shipped.order.id}&status=requested"))
    assert filtered["total"] == count


def test_list_filters_sort_and_cursor(api, returns_of):
    shipped, made = returns_of(3)
    act(api, made[0], "approve")
    assert [r["id"]
            for r in data_of(api.get("/api/v1/returns?status=approved"))["items"]] == [
                made[0]["id"]]
    assert data_of(api.get(f"/api/v1/returns?order_id={uuid.uuid4()}"))["total"] == 0
    by_number = data_of(api.get(f"/api/v1/returns?order_id={shipped.order.order_number}"))
    assert by_number["total"] == 3  # an order is named by its number too
    assert data_of(api.get("/api/v1/returns?order_id=ORD-999999"))["total"] == 0
    by_number = data_of(api.get("/api/v1/returns?sort_by=rma_number&sort_order=asc"))["items"]
    assert [r["rma_number"] for r in by_number] == sorted(r["rma_number"] for r in made)
    page = data_of(api.get("/api/v1/returns?limit=2"))
    assert set(page) == {"items", "page", "limit", "total", "total_pages", "total_is_estimate",
                         "next_cursor"}
    rest = data_of(api.get(f"/api/v1/returns?limit=2&cursor={page['next_cursor']}"))
    seen = [r["id"] for r in page["items"] + rest["items"]]
    assert seen == [r["id"] for r in reversed(made)] and rest["next_cursor"] is None


@pytest.mark.parametrize("query",
                         ["bogus=1", "status=lost", "order_id=nope", "sort_by=reason", "limit=0"])
def test_bad_list_parameters_are_422(api, query):
    error_of(api.get(f"/api/v1/returns?{query}"), 422)


def test_detail_carries_items_and_an_etag(api, returns_of, django_assert_num_queries):
    _, [made] = returns_of(1)
    warm(api)
    with django_assert_num_queries(2):  # the return, its items
        response = api.get(f"/api/v1/returns/{made['id']}")
    data = data_of(response)
    assert data == made and response["ETag"] == '"1"'
    assert {i["sku"]: i["unit_price"] for i in data["items"]} == {"A": "10.00", "B": "10.00"}
    assert api.get(f"/api/v1/returns/{made['id']}", HTTP_IF_NONE_MATCH='"1"').status_code == 304
    approved = api.post(f"/api/v1/returns/{made['id']}/approve", format="json")
    assert approved["ETag"] == '"2"'


def test_a_stale_if_match_is_412(api, returns_of):
    _, [made] = returns_of(1)
    response = api.post(f"/api/v1/returns/{made['id']}/approve", format="json", HTTP_IF_MATCH='"7"')
    assert error_of(response, 412)["details"] == {"current_version": 1}
    assert Return.objects.get(id=made["id"]).status == "requested"


@pytest.mark.parametrize("path", [f"/api/v1/returns/{uuid.uuid4()}", "/api/v1/returns/not-a-uuid"])
def test_unknown_return_is_404(api, path):
    assert error_of(api.get(path), 404)["code"] == "return_not_found"
    assert error_of(api.post(f"{path}/approve", format="json"), 404)["code"] == "return_not_found"


def test_action_bodies_are_strict_and_notes_are_kept(api, returns_of):
    _, [made] = returns_of(1)
    assert error_of(api.post(f"/api/v1/returns/{made['id']}/reject", {"bogus": 1}, format="json"),
                    422)
    rejected = data_of(api.post(f"/api/v1/returns/{made['id']}/reject", {"note": "worn"},
                                format="json"))
    assert rejected["status"] == "rejected" and rejected["notes"] == "rejected: worn"


@pytest.mark.parametrize("count", [1, 5])
def test_order_detail_embeds_returns_with_a_fixed_query_count(api, returns_of,
                                                              django_assert_num_queries, count):
    shipped, made = returns_of(count)
    act(api, made[0], "approve")
    api.get("/api/v1/returns?limit=1")
    # order+customer, items, shipping lines, payments, timeline, shipments with items, returns with
    # items
    with django_assert_num_queries(7):
        response = api.get(f"/api/v1/orders/{shipped.order.id}")
    returns = data_of(response)["returns"]
    assert [r["id"] for r in returns] == [r["id"] for r in made]
    assert returns[0]["status"] == "approved" and all(len(r["items"]) == 2 for r in returns)
    assert returns[0] == data_of(api.get(f"/api/v1/returns/{made[0]['id']}"))


def test_a_return_write_moves_the_orders_etag_and_drops_its_cache(api, returns_of):
    shipped, [made] = returns_of(1)
    first = api.get(f"/api/v1/orders/{shipped.order.id}")
    act(api, made, "approve")
    second = api.get(f"/api/v1/orders/{shipped.order.id}", HTTP_IF_NONE_MATCH=first["ETag"])
    assert second.status_code == 200 and second["ETag"] != first["ETag"]
    assert data_of(second)["returns"][0]["status"] == "approved"


def test_a_new_order_answers_no_returns(api, customer, make_product):
    product = make_product()
    response = api.post("/api/v1/orders", {"customer_id": str(customer.id), "items": [
        {"product_id": str(product.id), "quantity": 1}]}, format="json")
    assert data_of(response, 201)["returns"] == []


def test_scopes(client_with, anon_client, returns_of):
    shipped, [made] = returns_of(1)
    body = {"order_id": str(shipped.order.id), "items": [
        {"order_item_id": str(shipped.items["A"].id), "quantity": 1, "condition": "resellable"}]}
    assert error_of(anon_client.get("/api/v1/returns"), 401)
    assert error_of(anon_client.post("/api/v1/returns", body, format="json"), 401)
    orders_only = client_with("orders:read", "orders:write")
    assert error_of(orders_only.get("/api/v1/returns"), 403)
    assert error_of(orders_only.get(f"/api/v1/returns/{made['id']}"), 403)
    reader = client_with("returns:read")
    assert reader.get("/api/v1/returns").status_code == 200
    assert reader.get(f"/api/v1/returns/{made['id']}").status_code == 200
    assert error_of(reader.post("/api/v1/returns", body, format="json"), 403)
    assert error_of(reader.post(f"/api/v1/returns/{made['id']}/approve", format="json"), 403)
    writer = client_with("returns:write")
    assert error_of(writer.get("/api/v1/returns"), 403)
    assert writer.post(f"/api/v1/returns/{made['id']}/approve", format="json").status_code == 200
    assert Return.objects.get(id=made["id"]).status == "approved"


def test_replaying_an_idempotency_key_creates_nothing_new(api, make_product, shipped_order):
    shipped = shipped_order((make_product(sku="A"), 2))
    body = {"order_id": str(shipped.order.id), "items": [
        {"order_item_id": str(shipped.items["A"].id), "quantity": 1, "condition": "resellable"}]}
    first = api.post("/api/v1/returns", body, format="json", HTTP_IDEMPOTENCY_KEY="ret-1")
    again = api.post("/api/v1/returns", body, format="json", HTTP_IDEMPOTENCY_KEY="ret-1")
    assert data_of(first, 201) == data_of(again, 201) and again["Idempotent-Replayed"] == "true"
    assert Return.objects.count() == 1
