"""The inventory API (SPEC §4.3): every endpoint, its error codes, bad input, query counts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from inventory import selectors, services
from inventory.models import InventoryItem, Location, Reservation, StockMovement
from inventory.services import ReserveLine
from inventory.tests.factories import LocationFactory, ProductFactory, item, snapshot, stock

pytestmark = pytest.mark.django_db
BASE = "/api/v1"


def ok(response, status=200):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is True
    return body["data"]


def error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    return body["error"]


def warm(api):
    """Authenticate once, so the key lookup and its last-used touch are not counted below."""
    api.get(f"{BASE}/locations")


# --- scopes ---------------------------------------------------------------------------------------


def test_reading_needs_inventory_read_and_writing_inventory_write(client_with, anon_client, product,
                                                                  main):
    body = {"product_id": str(product.id), "location_id": str(main.id), "quantity": 1}
    error(anon_client.post(f"{BASE}/inventory/receive", body, format="json"), 401,
          "authentication_required")
    reader = client_with("inventory:read")
    ok(reader.get(f"{BASE}/inventory"))
    ok(reader.get(f"{BASE}/locations"))
    error(reader.post(f"{BASE}/inventory/receive", body, format="json"), 403, "insufficient_scope")
    error(client_with("orders:*").get(f"{BASE}/inventory/movements"), 403, "insufficient_scope")
    assert not InventoryItem.objects.exists()
    ok(client_with("inventory:write").post(f"{BASE}/inventory/receive", body, format="json"))


# --- locations ------------------------------------------------------------------------------------


def test_locations_create_list_detail_and_patch(api):
    created = api.post(f"{BASE}/locations", {"code": "NYC-1", "name": "New York", "priority": 5,
                                             "address": {"city": "New York", "country": "US"}},
                       format="json")
    data = ok(created, 201)
    assert (data["code"], data["priority"], data["is_active"], data["address"]["city"]) == ("NYC-1",
                                                                                            5, True,
                                                                                            "New "
                                                                                            "York")
    assert created["ETag"] == '"1"'
    error(api.post(f"{BASE}/locations", {"code": "nyc-1", "name": "Dup"}, format="json"), 409,
          "location_exists")
    error(api.post(f"{BASE}/locations", {"code": "bad code!", "name": "x"}, format="json"), 422,
          "validation_error")
    error(api.post(f"{BASE}/locations", {"code": "OK", "name": "x", "colour": "red"},
                   format="json"), 422,
          "validation_error")
    ok(api.post(f"{BASE}/locations", {"code": "LA", "name": "Los Angeles"}, format="json"), 201)
    page = ok(api.get(f"{BASE}/locations"))
    # by priority: 5, then the default 100
    assert [row["code"] for row in page["items"]] == ["NYC-1", "LA"]
    detail = api.get(f"{BASE}/locations/{data['id']}")
    assert ok(detail)["name"] == "New York" and detail["ETag"] == '"1"'
    error(api.patch(f"{BASE}/locations/{data['id']}", {"priority": 1}, format="json",
                    HTTP_IF_MATCH='"9"'), 412,
          "precondition_failed")
    patched = ok(api.patch(f"{BASE}/locations/{data['id']}", {"is_active": False}, format="json",
                           HTTP_IF_MATCH='"1"'))
    assert (patched["is_active"], patched["version"]) == (False, 2)
    assert [row["code"]
            for row in ok(api.get(f"{BASE}/locations?is_active=false"))["items"]] == ["NYC-1"]
    error(api.get(f"{BASE}/locations/{uuid.uuid4()}"), 404, "location_not_found")
    error(api.get(f"{BASE}/locations?colour=red"), 422, "invalid_parameter")


# --- inventory rows -------------------------------------------------------------------------------


def test_create_a_row_with_opening_stock_and_409_when_it_exists(api, product, main):
    body = {"sku": product.sku, "location_id": str(main.id), "on_hand": 12, "reorder_point": 3}
    data = ok(api.post(f"{BASE}/inventory", body, format="json"), 201)
    assert (data["on_hand"], data["available"], data["reorder_point"], data["low_stock"]) == (12,
                                                                                              12, 3,
                                                                                              False)
    assert (data["location_code"], data["product_id"]) == ("MAIN", str(product.id))
    err = error(api.post(f"{BASE}/inventory", body, format="json"), 409, "inventory_exists")
    assert err["details"]["id"] == data["id"]
    assert StockMovement.objects.filter(kind="receive", on_hand_delta=12).count() == 1


def test_list_filters_and_low_stock(api, product, main, east):
    other = ProductFactory()
    stock(product, main, 50)
    stock(product, east, 2)
    stock(other, main, 7)
    InventoryItem.objects.filter(location=east).update(reorder_point=5)

    def skus(query):
        return sorted((r["sku"], r["location_code"])
                      for r in ok(api.get(f"{BASE}/inventory{query}"))["items"])

    assert skus(f"?sku={product.sku.lower()}") == [(product.sku, "EAST"), (product.sku, "MAIN")]
    assert skus(f"?product_id={other.id}") == [(other.sku, "MAIN")]
    assert skus(f"?location_id={east.id}") == [(product.sku, "EAST")]
    assert skus("?low_stock=true") == [(product.sku, "EAST")]
    assert len(skus("?low_stock=false")) == 2
    low = ok(api.get(f"{BASE}/inventory/low-stock?location_id={east.id}"))
    assert [(r["sku"], r["available"], r["low_stock"])
            for r in low["items"]] == [(product.sku, 2, True)]
    error(api.get(f"{BASE}/inventory?warehouse=1"), 422, "invalid_parameter")
    error(api.get(f"{BASE}/inventory?product_id=nope"), 422, "invalid_parameter")
    error(api.get(f"{BASE}/inventory?sort_by=sku"), 422, "invalid_parameter")


def test_list_pages_with_a_cursor(api, main):
    for product in ProductFactory.create_batch(5):
        stock(product, main, 1)
    first = ok(api.get(f"{BASE}/inventory?limit=2"))
    assert (first["total"], first["total_pages"], len(first["items"])) == (5, 3, 2)
    seen = [r["id"] for r in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = ok(api.get(f"{BASE}/inventory?limit=2&cursor={cursor}"))
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(str(i)
                                  for i in InventoryItem.objects.values_list("id", flat=True))


def test_detail_has_an_etag_is_cached_and_invalidated_after_commit(api, product, main,
                                                                   django_assert_num_queries,
                                                                    django_capture_on_commit_callbacks):
    row = stock(product, main, 5)
    cache.delete(selectors.item_cache_key(row.id))  # as if the write's short tombstone had lapsed
    url = f"{BASE}/inventory/{row.id}"
    first = api.get(url)
    assert ok(first)["on_hand"] == 5 and first["ETag"] == f'"{row.version}"'
    assert api.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    with django_assert_num_queries(0):  # served from the cache
        assert ok(api.get(url))["on_hand"] == 5
    with django_capture_on_commit_callbacks(execute=True):
        ok(api.post(f"{BASE}/inventory/receive",
                    {"product_id": str(product.id), "location_id": str(main.id),
                                                 "quantity": 3}, format="json"))
    fresh = api.get(url)
    assert ok(fresh)["on_hand"] == 8 and fresh["ETag"] == f'"{row.version + 1}"'
    error(api.get(f"{BASE}/inventory/{uuid.uuid4()}"), 404, "inventory_not_found")
    assert api.get(f"{BASE}/inventory/not-a-uuid").status_code == 404


def test_patch_reorder_point_with_if_match(api, product, main):
    row = stock(product, main, 5)
    url = f"{BASE}/inventory/{row.id}"
    error(api.patch(url, {"reorder_point": 9}, format="json", HTTP_IF_MATCH='"999"'), 412,
          "precondition_failed")
    # counters move by stock moves
    error(api.patch(url, {"on_hand": 900}, format="json"), 422, "validation_error")
    data = ok(api.patch(url, {"reorder_point": 9}, format="json", HTTP_IF_MATCH=f'"{row.version}"'))
    assert (data["reorder_point"], data["low_stock"], data["on_hand"]) == (9, True, 5)


# --- stock moves ----------------------------------------------------------------------------------


def test_receive_adjust_and_transfer_answer_the_changed_rows(api, product, main, east):
    ref = {"sku": product.sku, "location_id": str(main.id)}
    data = ok(api.post(f"{BASE}/inventory/receive",
                       {**ref, "quantity": 10, "reason": "PO", "reference_type": "po",
                                                    "reference_id": "PO-7"}, format="json"))
    assert (data["on_hand"], data["available"]) == (10, 10)
    data = ok(api.post(f"{BASE}/inventory/adjust", {**ref, "delta": -2, "reason": "damaged"},
                       format="json"))
    assert data["on_hand"] == 8
    moved = ok(api.post(f"{BASE}/inventory/transfer",
                        {"product_id": str(product.id), "from_location_id": str(main.id),
                                                      "to_location_id": str(east.id),
                         "quantity": 3},
                        format="json"))
    assert (moved["from"]["on_hand"], moved["to"]["on_hand"], moved["to"]["location_code"]) == (5,
                                                                                                3,
                                                                                                "EAST")
    err = error(api.post(f"{BASE}/inventory/adjust", {**ref, "delta": -6, "reason": "count"},
                         format="json"), 409,
                "insufficient_stock")
    assert (err["details"]["on_hand"], err["details"]["delta"]) == (5, -6)
    err = error(api.post(f"{BASE}/inventory/transfer", {"product_id": str(product.id),
                                                        "from_location_id": str(east.id),
                                                        "to_location_id": str(main.id),
                                                        "quantity": 4},
                         format="json"), 409, "insufficient_stock")
    assert err["details"]["lines"][0]["available"] == 3
    error(api.post(f"{BASE}/inventory/adjust", {**ref, "delta": 1}, format="json"), 422,
          "validation_error")
    error(api.post(f"{BASE}/inventory/receive",
                   {"sku": "NOPE", "location_id": str(main.id), "quantity": 1},
                   format="json"), 404, "product_not_found")
    error(api.post(f"{BASE}/inventory/receive",
                   {"sku": product.sku, "location_id": str(uuid.uuid4()),
                                                 "quantity": 1}, format="json"), 404,
          "location_not_found")


BAD_QUANTITIES = [0, -1, 1_000_001, 9_007_199_254_740_993, 1.5, 2.0, "5", True, None, [], {}]


@pytest.mark.parametrize("quantity", BAD_QUANTITIES)
def test_bad_quantities_are_422_and_write_nothing(api, product, main, quantity):
    stock(product, main, 5)
    before = snapshot()
    ref = {"product_id": str(product.id), "location_id": str(main.id)}
    for url, body in [
        ("receive", {**ref, "quantity": quantity}),
        ("adjust",
         {**ref, "delta": quantity if quantity not in (1.5, 2.0) else 0.5, "reason": "x"}),
        ("reserve",
         {"items": [{**ref, "quantity": quantity}], "reference_type": "cart", "reference_id": "c"}),
        ("transfer", {"product_id": str(product.id), "from_location_id": str(main.id),
                      "to_location_id": str(uuid.uuid4()), "quantity": quantity}),
        ("", {**ref, "on_hand": quantity if quantity != 0 else -1}),
    ]:
        if url == "adjust" and quantity in (-1, 1):
            continue  # a valid delta
        response = api.post(f"{BASE}/inventory{'/' + url if url else ''}", body, format="json")
        error(response, 422, "validation_error")
    assert snapshot() == before


@pytest.mark.parametrize("body", [
    b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"null", b'{"quantity": 1e999}',
    b'{"quantity": 1' + b"0" * 30 + b"}",
])
def test_malformed_bodies_are_4xx_and_write_nothing(api, product, main, body):
    before = snapshot()
    response = api.generic("POST", f"{BASE}/inventory/receive", body,
                           content_type="application/json")
    assert response.status_code in (400, 422), response.content
    assert response.json()["success"] is False
    assert snapshot() == before


def test_wrong_types_long_strings_and_unknown_fields_are_422(api, product, main):
    before = snapshot()
    ref = {"product_id": str(product.id), "location_id": str(main.id), "quantity": 1}
    for body in [
        {**ref, "product_id": 12345},
        {**ref, "location_id": "not-a-uuid"},
        {**ref, "reason": "x" * 256},
        {**ref, "reason": "nul\x00byte"},
        {**ref, "reference_id": ["a"]},
        {**ref, "quantitty": 1},
        {"location_id": str(main.id), "quantity": 1},
        {"sku": "S" * 65, "location_id": str(main.id), "quantity": 1},
    ]:
        error(api.post(f"{BASE}/inventory/receive", body, format="json"), 422, "validation_error")
    response = api.post(f"{BASE}/inventory/receive", "quantity=1",
                        content_type="application/x-www-form-urlencoded")
    error(response, 415, "unsupported_media_type")
    assert snapshot() == before


# --- bulk adjust ----------------------------------------------------------------------------------


def test_bulk_adjust_per_row_results_and_dry_run(api, product, main):
    stock(product, main, 10)
    rows = [{"product_id": str(product.id), "location_id": str(main.id), "delta": -4,
             "reason": "count"},
            {"sku": "NOPE", "location_id": str(main.id), "delta": 1, "reason": "count"},
            {"sku": product.sku, "location_id": str(main.id), "delta": 1.5, "reason": "count"}]
    dry = ok(api.post(f"{BASE}/inventory/bulk-adjust?dry_run=true", {"adjustments": rows},
                      format="json"))
    assert [r["ok"] for r in dry["results"]] == [True, False, False]
    assert (dry["applied"], dry["valid"], dry["dry_run"]) == (0, 1, True)
    assert item(product, main).on_hand == 10
    done = ok(api.post(f"{BASE}/inventory/bulk-adjust", {"adjustments": rows}, format="json"))
    assert done["results"][1] == {"index": 1, "ok": False,
                                  "error": {"code": "product_not_found",
                                            "message": "No such product."}}
    assert done["results"][2]["error"]["code"] == "validation_error"
    assert done["applied"] == 1 and item(product, main).on_hand == 6
    before = snapshot()
    for body in [{"adjustments": []}, {"adjustments": {"a": 1}}, {"rows": rows},
                 {"adjustments": rows * 334}]:
        error(api.post(f"{BASE}/inventory/bulk-adjust", body, format="json"), 422,
              "validation_error")
    error(api.post(f"{BASE}/inventory/bulk-adjust?dryrun=1", {"adjustments": rows}, format="json"),
          422, "invalid_parameter")
    assert snapshot() == before


# --- reservations ---------------------------------------------------------------------------------


def test_reserve_answers_201_with_the_reservations(api, product, main, east):
    stock(product, main, 2)
    stock(product, east, 5)
    response = api.post(f"{BASE}/inventory/reserve", {
        "items": [{"sku": product.sku, "quantity": 4}], "reference_type": "cart",
        "reference_id": "cart-9", "expires_in": 900}, format="json")
    data = ok(response, 201)
    rows = data["reservations"]
    assert [(r["location_id"], r["quantity"], r["status"], r["sku"], r["line_index"])
            for r in rows] == [
        (str(main.id), 2, "active", product.sku, 0), (str(east.id), 2, "active", product.sku, 0)]
    expires = timezone.datetime.fromisoformat(rows[0]["expires_at"])
    assert timedelta(seconds=890) < expires - timezone.now() <= timedelta(seconds=900)
    assert set(rows[0]) >= {"id", "inventory_item_id", "sku", "location_id", "quantity", "status",
                            "expires_at"}


def test_reserve_409_names_every_short_line_and_writes_nothing(api, product, main):
    other = ProductFactory()
    stock(product, main, 3)
    stock(other, main, 1)
    before = snapshot()
    err = error(api.post(f"{BASE}/inventory/reserve", {
        "items": [{"product_id": str(product.id), "quantity": 5}, {"sku": other.sku, "quantity": 1},
                  {"sku": other.sku, "quantity": 2, "location_id": str(main.id)}],
        "reference_type": "order", "reference_id": "o-1"}, format="json"), 409,
                "insufficient_stock")
    # The line pinned to MAIN is served first and is short; line 1 then gets the one unit left.
    assert err["details"]["lines"] == [
        {"index": 0, "sku": product.sku, "product_id": str(product.id), "requested": 5,
         "available": 3},
        {"index": 2, "sku": other.sku, "product_id": str(other.id), "requested": 2, "available": 1,
         "location_id": str(main.id)},
    ]
    assert snapshot() == before
    error(api.post(f"{BASE}/inventory/reserve", {"items": [{"sku": product.sku, "quantity": 1}]},
                   format="json"),
          422, "validation_error")
    error(api.post(f"{BASE}/inventory/reserve",
                   {"items": [], "reference_type": "o", "reference_id": "1"},
                   format="json"), 422, "validation_error")
    error(api.post(f"{BASE}/inventory/reserve",
                   {"items": [{"sku": "NOPE", "quantity": 1}], "reference_type": "o",
                                                 "reference_id": "1"}, format="json"), 404,
          "product_not_found")
    error(api.post(f"{BASE}/inventory/reserve",
                   {"items": [{"sku": product.sku, "quantity": 1}], "reference_type": "o",
                                                 "reference_id": "1", "expires_in": 0},
                   format="json"),
          422, "validation_error")
    assert snapshot() == before


def test_reserve_is_idempotent_with_an_idempotency_key(api, product, main):
    stock(product, main, 10)
    body = {"items": [{"sku": product.sku, "quantity": 2}], "reference_type": "cart",
            "reference_id": "c"}
    first = api.post(f"{BASE}/inventory/reserve", body, format="json", HTTP_IDEMPOTENCY_KEY="res-1")
    again = api.post(f"{BASE}/inventory/reserve", body, format="json", HTTP_IDEMPOTENCY_KEY="res-1")
    assert ok(first, 201) == ok(again, 201) and again["Idempotent-Replayed"] == "true"
    assert Reservation.objects.count() == 1 and item(product, main).reserved == 2


def test_release_by_ids_or_reference(api, product, main):
    stock(product, main, 10)
    a = services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=2)],
                               reference_type="cart", reference_id="a")
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=3)],
                           reference_type="cart", reference_id="b")
    data = ok(api.post(f"{BASE}/inventory/release", {"reservation_ids": [str(a[0].id)]},
                       format="json"))
    assert (data["released"], data["reservations"][0]["status"]) == (1, "released")
    data = ok(api.post(f"{BASE}/inventory/release", {"reference_id": "b", "reason": "abandoned"},
                       format="json"))
    assert data["released"] == 1 and item(product, main).reserved == 0
    assert ok(api.post(f"{BASE}/inventory/release", {"reference_id": "b"},
                       format="json"))["released"] == 0
    error(api.post(f"{BASE}/inventory/release", {"reservation_ids": [str(uuid.uuid4())]},
                   format="json"), 404,
          "reservation_not_found")
    error(api.post(f"{BASE}/inventory/release", {}, format="json"), 422, "validation_error")
    error(api.post(f"{BASE}/inventory/release",
                   {"reservation_ids": [str(a[0].id)], "reference_id": "b"},
                   format="json"), 422, "validation_error")


def test_reservation_and_movement_lists_filter(api, product, main, east):
    stock(product, main, 10)
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=2)],
                           reference_type="order", reference_id="o-1")
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                           reference_type="cart", reference_id="c-1")
    services.stock_release(reference_id="c-1")
    services.stock_transfer(product_id=product.id, from_location_id=main.id, to_location_id=east.id,
                            quantity=1)

    def items(path):
        return ok(api.get(f"{BASE}/inventory/{path}"))["items"]

    assert [r["reference_id"] for r in items("reservations?status=active")] == ["o-1"]
    assert [r["status"] for r in items("reservations?reference_id=c-1")] == ["released"]
    assert len(items(f"reservations?sku={product.sku.lower()}")) == 2
    kinds = [m["kind"] for m in items("movements")]
    # newest first
    assert kinds == ["transfer_in", "transfer_out", "release", "reserve", "reserve", "receive"]
    assert [m["kind"] for m in items(f"movements?location_id={east.id}")] == ["transfer_in"]
    assert [m["reserved_delta"] for m in items("movements?kind=reserve&reference_id=o-1")] == [2]
    main_row = item(product, main)
    assert len(items(f"movements?inventory_item_id={main_row.id}&sku={product.sku}")) == 5
    future = (timezone.now() + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert items(f"movements?created_from={future}") == []
    assert len(items(f"movements?created_to={future}")) == 6
    error(api.get(f"{BASE}/inventory/movements?kind=teleport"), 422, "invalid_parameter")
    error(api.get(f"{BASE}/inventory/reservations?status=gone"), 422, "invalid_parameter")


# --- query counts ---------------------------------------------------------------------------------


def _fill(count: int, main: Location) -> None:
    for product in ProductFactory.create_batch(count):
        stock(product, main, 5)
        services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                               reference_type="cart", reference_id=str(product.id))
    InventoryItem.objects.update(reorder_point=10)


LIST_URLS = ["inventory", "inventory?low_stock=true", "inventory/low-stock",
             "inventory/reservations",
             "inventory/movements", "locations", "inventory/movements?sku=INV-00001",
             "inventory/reservations?status=active"]


@pytest.mark.parametrize("rows", [1, 50])
@pytest.mark.parametrize("path", LIST_URLS)
def test_list_endpoints_cost_fixed_queries_whatever_the_page_size(api, main,
                                                                  django_assert_num_queries, rows,
                                                                  path):
    _fill(rows, main)
    if path == "locations":
        LocationFactory.create_batch(rows - 1)
    warm(api)
    url = f"{BASE}/{path}{'&' if '?' in path else '?'}"
    with django_assert_num_queries(1):  # the page, holding the whole list: its length is the total
        page = ok(api.get(f"{url}limit=100"))
    assert len(page["items"]) >= (1 if "sku=" not in path else 0)
    if "sku=" not in path:
        assert len(page["items"]) == page["total"] >= rows
    if page["total"] > 1:
        with django_assert_num_queries(2):  # a page with more after it: + the bounded total
            first = ok(api.get(f"{url}limit=1"))
        assert first["total"] == page["total"] and first["next_cursor"]


def test_low_stock_pages_by_available_with_a_cursor(api, main):
    for n, product in enumerate(ProductFactory.create_batch(4)):
        stock(product, main, n + 1)
    InventoryItem.objects.update(reorder_point=10)
    first = ok(api.get(f"{BASE}/inventory/low-stock?limit=3"))
    assert [r["available"] for r in first["items"]] == [1, 2, 3]
    rest = ok(api.get(f"{BASE}/inventory/low-stock?limit=3&cursor={first['next_cursor']}"))
    assert [r["available"] for r in rest["items"]] == [4] and rest["next_cursor"] is None
