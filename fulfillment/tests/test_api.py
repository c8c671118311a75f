"""Shipments over REST (SPEC §3, §4.5, §10): answers, errors, scopes, fixed query counts."""

import uuid

import pytest

from fulfillment.models import Shipment, ShipmentItem
from inventory.models import InventoryItem, StockMovement
from orders.models import Order, OrderEvent, OrderItem
from stateset.testing import data_of, error_of

pytestmark = pytest.mark.django_db


def warm(api):
    # key lookup and last_used_at happen once, outside the measured block
    api.get("/api/v1/shipments?limit=1")


def create(api, order, headers=None, **body):
    body.setdefault("carrier", "ups")
    return api.post("/api/v1/shipments", {"order_id": str(order.id), **body}, format="json",
                    **(headers or {}))


def test_create_ship_deliver_through_the_api(api, make_product, make_order):
    widget = make_product(stock=10)
    order = make_order(quantity=3, product=widget)
    item = OrderItem.objects.get(order_id=order.id)
    created = data_of(create(api, order, service="ground", tracking_number="1Z-A",
                             items=[{"order_item_id": str(item.id), "quantity": 2}]), 201)
    assert (created["status"], created["carrier"], created["service"],
            created["tracking_number"]) == \
        ("pending", "ups", "ground", "1Z-A")
    assert [(i["sku"], i["quantity"], i["order_item_id"])
            for i in created["items"]] == [(widget.sku, 2, str(item.id))]
    detail = api.get(f"/api/v1/shipments/{created['id']}")
    assert data_of(detail) == created and detail["ETag"] == '"1"'
    assert data_of(api.get("/api/v1/shipments/track/1Z-A"))["id"] == created["id"]

    shipped = data_of(api.post(f"/api/v1/shipments/{created['id']}/ship"))
    assert shipped["status"] == "shipped" and shipped["shipped_at"] and shipped["version"] == 2
    again = error_of(api.post(f"/api/v1/shipments/{created['id']}/ship"), 409)
    assert again["code"] == "invalid_transition"
    assert StockMovement.objects.filter(kind="ship", reference_id=created["id"]).count() == 1
    item_row = InventoryItem.objects.get(product_id=widget.id)
    assert (item_row.on_hand, item_row.reserved) == (8, 1)

    delivered = data_of(api.post(f"/api/v1/shipments/{created['id']}/deliver"))
    assert delivered["status"] == "delivered" and delivered["delivered_at"]
    order.refresh_from_db()
    assert order.status == "processing"  # one unit has not shipped yet: the order is not delivered
    assert error_of(api.post(f"/api/v1/shipments/{created['id']}/cancel", {}, format="json"),
                    409)["code"] == \
        "invalid_transition"


@pytest.mark.parametrize("count", [1, 4])
def test_order_detail_shows_its_shipments_with_a_fixed_query_count(api, make_product, make_order,
                                                                   django_assert_num_queries,
                                                                   count):
    order = make_order(quantity=4, product=make_product(stock=10))
    item = OrderItem.objects.get(order_id=order.id)
    for _ in range(count):
        create(api, order, items=[{"order_item_id": str(item.id), "quantity": 1}])
    warm(api)
    # order+customer, items, shipping lines, payments, timeline, shipments with items, returns with
    # items
    with django_assert_num_queries(7):
        response = api.get(f"/api/v1/orders/{order.id}")
    data = data_of(response)
    assert len(data["shipments"]) == count and all(len(s["items"]) == 1 for s in data["shipments"])
    first = data["shipments"][0]
    assert data_of(api.get(f"/api/v1/shipments/{first['id']}")) == first  # one shape everywhere
    etag = response["ETag"]
    api.post(f"/api/v1/shipments/{first['id']}/ship")
    fresh = api.get(f"/api/v1/orders/{order.id}", HTTP_IF_NONE_MATCH=etag)  # the cache was dropped
    assert fresh.status_code == 200 and data_of(fresh)["shipments"][0]["status"] == "shipped"


@pytest.mark.parametrize("count", [1, 20])
def test_list_query_count_is_fixed(api, make_product, make_order, django_assert_num_queries, count):
    product = make_product(stock=count)
    for _ in range(count):
        create(api, make_order(product=product))
    warm(api)
    # One page holding the whole list is its own total (no COUNT), then the items of the page.
    with django_assert_num_queries(2):
        response = api.get("/api/v1/shipments?limit=100")
    data = data_of(response)
    assert data["total"] == count and all(len(s["items"]) == 1 for s in data["items"])


def test_list_filters_sort_and_pages(api, make_product, make_order):
    product = make_product(stock=10)
    orders = [make_order(product=product) for _ in range(3)]
    ids = [data_of(create(api, o, carrier=c), 201)["id"] for o,
           c in zip(orders, ["ups", "dhl", "ups"], strict=True)]
    api.post(f"/api/v1/shipments/{ids[0]}/ship")
    def listed(query):
        return [s["id"] for s in data_of(api.get(f"/api/v1/shipments?{query}"))["items"]]

    assert listed("") == ids[::-1]
    assert listed("sort_by=created_at&sort_order=asc") == ids
    assert listed(f"order_id={orders[1].id}") == [ids[1]]
    assert listed("carrier=ups") == [ids[2], ids[0]]
    assert listed("status=shipped") == [ids[0]] and listed("status=pending&carrier=ups") == [ids[2]]
    page = data_of(api.get("/api/v1/shipments?limit=2"))
    assert page["next_cursor"] and page["total"] == 3
    assert [s["id"]
            for s in data_of(api.get(f"/api/v1/shipments?limit=2&cursor={page['next_cursor']}"))[
                "items"]] \
        == [ids[0]]
    for bad in ("bogus=1", "status=lost", "sort_by=carrier", "order_id=nope"):
        assert error_of(api.get(f"/api/v1/shipments?{bad}"), 422)["code"] == "invalid_parameter"


def test_patch_tracking_with_if_match(api, make_order):
    shipment = data_of(create(api, make_order()), 201)
    url = f"/api/v1/shipments/{shipment['id']}"
    assert error_of(api.patch(url, {"tracking_number": "T-1"}, format="json", HTTP_IF_MATCH='"7"'),
                    412)
    assert Shipment.objects.get(id=shipment["id"]).tracking_number is None
    patched = api.patch(url, {"tracking_number": "T-1", "carrier": "fedex"}, format="json",
                        HTTP_IF_MATCH='"1"')
    assert data_of(patched)["tracking_number"] == "T-1" and patched["ETag"] == '"2"'
    assert error_of(api.patch(url, {"status": "in_transit"}, format="json"),
                    409)["code"] == "invalid_transition"
    assert error_of(api.patch(url, {"status": "delivered"}, format="json"),
                    422)["code"] == "validation_error"
    assert error_of(api.patch(url, {"order_id": str(uuid.uuid4())}, format="json"), 422)
    other = data_of(create(api, make_order()), 201)
    taken = api.patch(f"/api/v1/shipments/{other['id']}", {"tracking_number": "T-1"}, format="json")
    assert error_of(taken, 409)["code"] == "tracking_number_taken"
    api.post(f"{url}/ship")
    assert data_of(api.patch(url, {"status": "in_transit"},
                             format="json"))["status"] == "in_transit"


def _counts():
    return (Shipment.objects.count(), ShipmentItem.objects.count(), OrderEvent.objects.count(),
            list(Order.objects.values_list("status", "version")))


@pytest.mark.parametrize("body, status, code", [
    ({"carrier": ""}, 422, "validation_error"),
    ({"carrier": 5}, 422, "validation_error"),
    ({"carrier": "x" * 65}, 422, "validation_error"),
    ({"items": []}, 422, "validation_error"),
    ({"items": [{"order_item_id": "ITEM", "quantity": 0}]}, 422, "validation_error"),
    ({"items": [{"order_item_id": "ITEM", "quantity": -1}]}, 422, "validation_error"),
    ({"items": [{"order_item_id": "ITEM", "quantity": "1"}]}, 422, "validation_error"),
    ({"items": [{"order_item_id": "ITEM", "quantity": 1.5}]}, 422, "validation_error"),
    ({"items": [{"order_item_id": "ITEM", "quantity": 10**30}]}, 422, "validation_error"),
    ({"items": [{"order_item_id": "ITEM", "quantity": 3}]}, 422, "exceeds_unfulfilled"),
    ({"items": [{"order_item_id": str(uuid.uuid4()), "quantity": 1}]}, 422, "validation_error"),
    ({"items": [{"order_item_id": "ITEM", "quantity": 1},
                {"order_item_id": "ITEM", "quantity": 1}]}, 422,
     "validation_error"),
    ({"order_id": str(uuid.uuid4())}, 422, "order_not_found"),
    ({"order_id": "ORD-999999"}, 422, "order_not_found"),  # a number no order has
    ({"order_id": "not-a-uuid"}, 422, "validation_error"),
    ({"order_id": 12}, 422, "validation_error"),
    ({"location_id": str(uuid.uuid4())}, 422, "location_not_found"),
    ({"surprise": 1}, 422, "validation_error"),
])
def test_bad_input_is_4xx_and_writes_nothing(api, make_order, body, status, code):
    order = make_order(quantity=2)
    item_id = str(OrderItem.objects.get(order_id=order.id).id)
    for entry in body.get("items", []):
        if entry["order_item_id"] == "ITEM":
            entry["order_item_id"] = item_id
    before = _counts()
    assert error_of(create(api, order, **body), status)["code"] == code
    assert _counts() == before


def test_malformed_requests(api, make_order):
    assert error_of(api.post("/api/v1/shipments", b"{nope", content_type="application/json"),
                    400)["code"] == \
        "malformed_json"
    assert error_of(api.post("/api/v1/shipments", b"\xff\xfe", content_type="application/json"),
                    400)
    assert error_of(api.get(f"/api/v1/shipments/{uuid.uuid4()}"),
                    404)["code"] == "shipment_not_found"
    assert error_of(api.get("/api/v1/shipments/not-an-id"), 404)["code"] == "shipment_not_found"
    assert error_of(api.post(f"/api/v1/shipments/{uuid.uuid4()}/ship"),
                    404)["code"] == "shipment_not_found"
    assert error_of(api.get("/api/v1/shipments/track/NOPE"), 404)["code"] == "shipment_not_found"
    assert error_of(api.delete(f"/api/v1/shipments/{uuid.uuid4()}"), 405)


def test_idempotent_create_is_replayed(api, make_order):
    order = make_order(quantity=2)
    first = create(api, order, headers={"HTTP_IDEMPOTENCY_KEY": "ship-1"})
    second = create(api, order, headers={"HTTP_IDEMPOTENCY_KEY": "ship-1"})
    assert data_of(second, 201) == data_of(first, 201) and second["Idempotent-Replayed"] == "true"
    assert Shipment.objects.count() == 1


def test_scopes(anon_client, client_with, make_order):
    order = make_order()
    writer = client_with("fulfillment:write", "fulfillment:read")
    shipment = data_of(create(writer, order), 201)
    assert error_of(anon_client.get("/api/v1/shipments"), 401)
    assert error_of(anon_client.post("/api/v1/shipments", {}, format="json"), 401)
    reader = client_with("fulfillment:read")
    assert reader.get(f"/api/v1/shipments/{shipment['id']}").status_code == 200
    assert reader.get("/api/v1/shipments/track/none").status_code == 404  # allowed, just not found
    assert error_of(reader.post(f"/api/v1/shipments/{shipment['id']}/ship"), 403)
    assert error_of(create(reader, order), 403)
    assert error_of(client_with("orders:*").get("/api/v1/shipments"), 403)
    assert Shipment.objects.get(id=shipment["id"]).status == "pending"


def test_an_order_is_named_by_its_number_in_a_body_and_a_filter(api, make_order):
    order = make_order(quantity=2)
    created = data_of(api.post("/api/v1/shipments", {"order_id": order.order_number.lower(),
                                                     "carrier": "UPS"}, format="json"), 201)
    assert created["order_id"] == str(order.id)
    listed = data_of(api.get("/api/v1/shipments", {"order_id": order.order_number}))["items"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert data_of(api.get("/api/v1/shipments", {"order_id": "ORD-999999"}))["items"] == []
