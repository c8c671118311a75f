"""``/api/v1/products``: CRUD, ETags, validation, lists, scopes, caching (SPEC §3, §4.1, §7,
§10)."""

from decimal import Decimal

import pytest
from django.db import connection

from catalog.models import Product
from catalog.tests.factories import ProductFactory
from stateset.testing import data_of, error_of

pytestmark = pytest.mark.django_db
URL = "/api/v1/products"


def valid_body(**overrides):
    return {"sku": "WID-001", "name": "Blue Widget", "description": "A sturdy widget.",
            "price": "29.99", "currency": "USD", **overrides}


# --- create / read -------------------------------------------------------------------------------


def test_create_returns_201_with_the_product_and_an_etag(api):
    response = api.post(URL, valid_body(attributes={"color": "blue"}), format="json")
    data = data_of(response, 201)
    assert response["ETag"] == '"1"'
    assert data["sku"] == "WID-001" and data["price"] == "29.99" and data["currency"] == "USD"
    assert data["is_active"] is True and data["attributes"] == {"color": "blue"} and data[
        "version"] == 1
    assert data["created_at"].endswith("Z")
    product = Product.objects.get(pk=data["id"])
    assert product.price == Decimal("29.99") and product.description == "A sturdy widget."


def test_create_applies_defaults_and_normalises_currency(api):
    data = data_of(api.post(URL, {"sku": "A-1", "name": "A", "price": 5, "currency": "eur"},
                            format="json"), 201)
    assert data["price"] == "5.00" and data["currency"] == "EUR" and data["description"] == ""
    assert data["is_active"] is True and data["attributes"] == {}


def test_detail_has_etag_and_honours_if_none_match(api):
    product = ProductFactory(price=Decimal("10.50"))
    response = api.get(f"{URL}/{product.id}")
    data = data_of(response)
    assert response["ETag"] == '"1"'
    assert data["id"] == str(product.id) and data["price"] == "10.50"
    assert api.get(f"{URL}/{product.id}", HTTP_IF_NONE_MATCH='"1"').status_code == 304


@pytest.mark.parametrize("path", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "12345"])
def test_unknown_or_malformed_id_is_404(api, path):
    assert error_of(api.get(f"{URL}/{path}"), 404)["code"] == "product_not_found"
    assert error_of(api.patch(f"{URL}/{path}", {"name": "x"}, format="json"),
                    404)["code"] == "product_not_found"
    assert error_of(api.delete(f"{URL}/{path}"), 404)["code"] == "product_not_found"


def test_by_sku_matches_in_any_case(api):
    product = ProductFactory(sku="Kit-00042")
    response = api.get(f"{URL}/by-sku/kIT-00042")
    assert data_of(response)["id"] == str(product.id)
    assert response["ETag"] == '"1"'
    assert error_of(api.get(f"{URL}/by-sku/NOPE-1"), 404)["code"] == "product_not_found"
    assert error_of(api.get(f"{URL}/by-sku/{'x' * 300}"), 404)["code"] == "product_not_found"


def test_by_sku_follows_a_sku_change(api, django_capture_on_commit_callbacks):
    product = ProductFactory(sku="OLD-1")
    assert data_of(api.get(f"{URL}/by-sku/OLD-1"))["id"] == str(product.id)  # cached now
    with django_capture_on_commit_callbacks(execute=True):
        data_of(api.patch(f"{URL}/{product.id}", {"sku": "NEW-1"}, format="json"))
    assert data_of(api.get(f"{URL}/by-sku/new-1"))["sku"] == "NEW-1"
    error_of(api.get(f"{URL}/by-sku/OLD-1"), 404)
    # A new product takes the old SKU: the stale SKU → id mapping must not answer with the old one.
    newcomer = ProductFactory(sku="OLD-1")
    assert data_of(api.get(f"{URL}/by-sku/OLD-1"))["id"] == str(newcomer.id)


# --- validation (SPEC §10): 4xx envelope, nothing written ----------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price": "-1"}, "price"),
        ({"price": "abc"}, "price"),
        ({"price": "1e400"}, "price"),
        ({"price": 9999999999999}, "price"),
        ({"price": "12.345"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": "Infinity"}, "price"),
        ({"price": True}, "price"),
        ({"price": None}, "price"),
        ({"price": ["1"]}, "price"),
        ({"sku": "x" * 65}, "sku"),
        ({"sku": ""}, "sku"),
        ({"sku": "has space"}, "sku"),
        ({"sku": "a/b"}, "sku"),
        ({"sku": 12}, "sku"),
        ({"sku": {"a": 1}}, "sku"),
        ({"name": "n" * 256}, "name"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"description": "d" * 20_001}, "description"),
        ({"currency": "US"}, "currency"),
        ({"currency": "USDX"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": 840}, "currency"),
        ({"is_active": "maybe"}, "is_active"),
        ({"attributes": "text"}, "attributes"),
        ({"attributes": [1, 2]}, "attributes"),
        ({"version": 7}, "version"),
        ({"id": "00000000-0000-0000-0000-000000000001"}, "id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_fields_are_422_and_write_nothing(api, overrides, field):
    error = error_of(api.post(URL, valid_body(**overrides), format="json"), 422)
    assert error["code"] == "validation_error"
    assert field in error["details"]
    assert not Product.objects.exists()


@pytest.mark.parametrize("missing", ["sku", "name", "price"])
def test_missing_required_fields_are_422(api, missing):
    body = valid_body()
    del body[missing]
    error = error_of(api.post(URL, body, format="json"), 422)
    assert missing in error["details"]
    assert not Product.objects.exists()


@pytest.mark.parametrize("body", [[], "text", 12, None, [valid_body()]])
def test_a_body_that_is_not_an_object_is_4xx(api, body):
    response = api.post(URL, body, format="json")
    assert 400 <= response.status_code < 500
    error_of(response, response.status_code)
    assert not Product.objects.exists()


@pytest.mark.parametrize("raw", [b'{"sku": ', b'{"sku": "\xff"}', b'{"price": NaN}'])
def test_malformed_json_is_400_and_writes_nothing(api, raw):
    assert error_of(api.post(URL, raw, content_type="application/json"),
                    400)["code"] == "malformed_json"
    assert not Product.objects.exists()


@pytest.mark.parametrize("sku", ["WID-001", "wid-001", "Wid-001"])
def test_duplicate_sku_in_any_case_is_409_and_writes_nothing(api, sku):
    ProductFactory(sku="WID-001", name="Original")
    error = error_of(api.post(URL, valid_body(sku=sku, name="Copy"), format="json"), 409)
    assert error["code"] == "duplicate_sku"
    assert list(Product.objects.values_list("name", flat=True)) == ["Original"]


def test_patch_to_another_products_sku_is_409_and_changes_nothing(api):
    ProductFactory(sku="TAKEN-1")
    product = ProductFactory(sku="MINE-1", name="Mine")
    error = error_of(api.patch(f"{URL}/{product.id}", {"sku": "taken-1", "name": "Renamed"},
                               format="json"), 409)
    assert error["code"] == "duplicate_sku"
    product.refresh_from_db()
    assert (product.sku, product.name, product.version) == ("MINE-1", "Mine", 1)


# --- update, If-Match, versions ------------------------------------------------------------------


def test_patch_changes_fields_and_bumps_version(api):
    product = ProductFactory(price=Decimal("10.00"))
    response = api.patch(f"{URL}/{product.id}", {"price": "12.50", "is_active": False},
                         format="json", HTTP_IF_MATCH='"1"')
    data = data_of(response)
    assert data["price"] == "12.50" and data["is_active"] is False and data["version"] == 2
    assert response["ETag"] == '"2"'
    product.refresh_from_db()
    assert product.price == Decimal("12.50") and product.version == 2


def test_if_match_mismatch_is_412_and_writes_nothing(api):
    product = ProductFactory(name="Before")
    api.patch(f"{URL}/{product.id}", {"name": "Second"}, format="json")  # version 2
    error = error_of(api.patch(f"{URL}/{product.id}", {"name": "Stale"}, format="json",
                               HTTP_IF_MATCH='"1"'), 412)
    assert error["code"] == "precondition_failed"
    assert error["details"]["current_version"] == 2
    product.refresh_from_db()
    assert (product.name, product.version) == ("Second", 2)


def test_if_match_that_is_not_an_etag_is_412(api):
    product = ProductFactory()
    error_of(api.patch(f"{URL}/{product.id}", {"name": "x"}, format="json",
                       HTTP_IF_MATCH="garbage"), 412)
    product.refresh_from_db()
    assert product.version == 1


def test_patch_validates_like_create_and_rejects_an_empty_body(api):
    product = ProductFactory()
    for body in ({"price": "-1"}, {"currency": "XXX"}, {"name": ""}, {"version": 9}, {}):
        response = api.patch(f"{URL}/{product.id}", body, format="json")
        assert response.status_code == 422, body
    product.refresh_from_db()
    assert product.version == 1


def test_get_after_patch_shows_the_new_value(api, django_capture_on_commit_callbacks):
    product = ProductFactory(name="Old name")
    assert data_of(api.get(f"{URL}/{product.id}"))["name"] == "Old name"  # now cached
    with django_capture_on_commit_callbacks(execute=True):
        data_of(api.patch(f"{URL}/{product.id}", {"name": "New name"}, format="json"))
    response = api.get(f"{URL}/{product.id}")
    assert data_of(response)["name"] == "New name"
    assert response["ETag"] == '"2"'


def test_detail_is_served_from_the_cache(api, django_assert_num_queries):
    product = ProductFactory()
    data_of(api.get(f"{URL}/{product.id}"))
    with django_assert_num_queries(0):
        data_of(api.get(f"{URL}/{product.id}"))


# --- delete --------------------------------------------------------------------------------------


def test_delete_of_an_unreferenced_product_is_204(api, django_capture_on_commit_callbacks):
    product = ProductFactory()
    data_of(api.get(f"{URL}/{product.id}"))  # cached
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"{URL}/{product.id}")
    assert response.status_code == 204 and response.content == b""
    assert not Product.objects.filter(pk=product.id).exists()
    error_of(api.get(f"{URL}/{product.id}"), 404)


def test_delete_of_a_referenced_product_deactivates_it(api):
    product = ProductFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE test_order_line (id serial PRIMARY KEY, product_id uuid NOT NULL "
                       "REFERENCES catalog_product(id) DEFERRABLE INITIALLY DEFERRED)")
        cursor.execute("INSERT INTO test_order_line (product_id) VALUES (%s)", [product.id])
    response = api.delete(f"{URL}/{product.id}")
    data = data_of(response)
    assert data["deactivated"] is True and data["is_active"] is False and data["version"] == 2
    assert response["ETag"] == '"2"'
    product.refresh_from_db()
    assert product.is_active is False


# --- lists ---------------------------------------------------------------------------------------


def test_list_shape_and_items_match_the_detail(api):
    product = ProductFactory()
    page = data_of(api.get(URL))
    assert set(page) == {"items", "page", "limit", "total", "total_pages", "total_is_estimate",
                         "next_cursor"}
    assert page["total"] == 1 and page["next_cursor"] is None
    assert page["items"] == [data_of(api.get(f"{URL}/{product.id}"))]


def test_list_filters(api):
    cheap = ProductFactory(sku="CHEAP-1", price=Decimal("5.00"))
    ProductFactory(sku="MID-1", price=Decimal("50.00"), is_active=False)
    dear = ProductFactory(sku="DEAR-1", price=Decimal("500.00"))

    def skus(query):
        return sorted(item["sku"] for item in data_of(api.get(f"{URL}?{query}"))["items"])

    assert skus("is_active=true") == ["CHEAP-1", "DEAR-1"]
    assert skus("is_active=false") == ["MID-1"]
    assert skus("min_price=10") == ["DEAR-1", "MID-1"]
    assert skus("max_price=50.00") == ["CHEAP-1", "MID-1"]
    assert skus("min_price=10&max_price=100") == ["MID-1"]
    assert skus("sku=dear-1") == [dear.sku]
    assert skus(f"sku={cheap.sku}&is_active=true") == ["CHEAP-1"]


@pytest.mark.parametrize("query",
                         ["colour=red", "sort_by=description", "min_price=abc", "max_price=-1",
                                   "min_price=10&max_price=5", "is_active=maybe", "limit=101",
                          "page=0",
                                   "cursor=garbage", "sku=" + "x" * 65])
def test_bad_list_parameters_are_422(api, query):
    ProductFactory()
    assert error_of(api.get(f"{URL}?{query}"), 422)["code"] in ("invalid_parameter",
                                                                "invalid_cursor")


@pytest.mark.parametrize(("sort", "key"), [("name", "name"), ("price", "price"), ("sku", "sku"),
                                           ("created_at", "created_at")])
def test_sorting_and_cursor_pages_cover_every_row_once(api, sort, key):
    for index in range(7):
        ProductFactory(sku=f"S-{(index * 3) % 7}", name=f"Name {(index * 5) % 7}",
                       price=Decimal(index % 3) + Decimal("0.99"))
    seen, cursor = [], None
    while True:
        query = f"sort_by={sort}&sort_order=asc&limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = data_of(api.get(f"{URL}?{query}"))
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len({item["id"] for item in seen}) == 7 == len(seen)
    values = [Decimal(item[key]) if key == "price" else item[key] for item in seen]
    assert values == sorted(values)


@pytest.mark.parametrize("rows", [1, 50])
def test_list_query_count_is_fixed(api, django_assert_num_queries, rows):
    ProductFactory.create_batch(rows)
    data_of(api.get(URL))  # authenticates the key once (then cached)
    with django_assert_num_queries(1):  # one page; all rows fit it, so its length is the total
        page = data_of(api.get(f"{URL}?limit=100&is_active=true&sort_by=price"))
    assert len(page["items"]) == rows


@pytest.mark.parametrize("rows", [1, 50])
def test_search_query_count_is_fixed(api, django_assert_num_queries, rows):
    ProductFactory.create_batch(rows, name="Garden hose")
    data_of(api.get(URL))
    with django_assert_num_queries(1):
        page = data_of(api.get(f"{URL}/search?q=hos&limit=100"))
    assert len(page["items"]) == rows


# --- scopes --------------------------------------------------------------------------------------


def test_missing_key_is_401(anon_client):
    assert error_of(anon_client.get(URL), 401)["code"] == "authentication_required"


def test_read_key_cannot_write(client_with):
    reader = client_with("catalog:read")
    product = ProductFactory(name="Kept")
    assert reader.get(URL).status_code == 200
    assert reader.get(f"{URL}/search?q=kept").status_code == 200
    assert reader.get(f"{URL}/by-sku/{product.sku}").status_code == 200
    assert error_of(reader.post(URL, valid_body(), format="json"),
                    403)["code"] == "insufficient_scope"
    assert error_of(reader.patch(f"{URL}/{product.id}", {"name": "x"}, format="json"),
                    403)["code"] == "insufficient_scope"
    assert error_of(reader.delete(f"{URL}/{product.id}"), 403)["code"] == "insufficient_scope"
    assert list(Product.objects.values_list("name", flat=True)) == ["Kept"]


def test_other_resources_scopes_do_not_grant_the_catalog(client_with):
    assert error_of(client_with("orders:*", "customers:write").get(URL),
                    403)["code"] == "insufficient_scope"


def test_catalog_write_key_can_write(client_with):
    writer = client_with("catalog:write")
    assert writer.post(URL, valid_body(), format="json").status_code == 201


def test_create_with_idempotency_key_is_performed_once(api):
    first = api.post(URL, valid_body(), format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    second = api.post(URL, valid_body(), format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert first.json()["data"] == second.json()["data"]
    assert Product.objects.count() == 1


def test_the_documented_shape_matches_what_is_rendered(api):
    from catalog.api import ProductOut

    product = ProductFactory()
    assert set(ProductOut().fields) == set(data_of(api.get(f"{URL}/{product.id}")))


@pytest.mark.parametrize("field,value", [("allow_backorder", "yes"), ("allow_backorder", 1),
                                         ("is_active", "true"), ("is_active", None)])
def test_booleans_are_json_booleans_and_a_bad_one_writes_nothing(api, field, value):
    error = error_of(api.post(URL, valid_body(**{field: value}), format="json"), 422)
    assert field in error["details"] and not Product.objects.exists()
    product = ProductFactory()
    error = error_of(api.patch(f"{URL}/{product.id}", {field: value}, format="json"), 422)
    assert field in error["details"]
    product.refresh_from_db()
    assert (product.version, product.allow_backorder, product.is_active) == (1, False, True)


def test_allow_backorder_is_set_at_creation_and_shown(api):
    data = data_of(api.post(URL, valid_body(allow_backorder=True), format="json"), 201)
    assert data["allow_backorder"] is True and Product.objects.get(pk=data["id"]).allow_backorder
