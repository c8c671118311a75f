"""``GET /products/search``: prefix matching, ranking, filters, hostile input, the GIN index."""

from decimal import Decimal

import pytest
from django.db import connection

from catalog import selectors, services
from catalog.seed import demo_product_rows
from catalog.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/products/search"


def search(api, query, status=200):
    response = api.get(URL, query)
    assert response.status_code == status, response.content
    return response.json()["data"] if status == 200 else response.json()["error"]


def skus(data):
    return [item["sku"] for item in data["items"]]


def test_the_last_word_is_a_prefix(api):
    ProductFactory(sku="W-1", name="Widget")
    ProductFactory(sku="G-1", name="Gadget")
    assert skus(search(api, {"q": "wid"})) == ["W-1"]
    assert skus(search(api, {"q": "WIDG"})) == ["W-1"]
    assert skus(search(api, {"q": "widgets"})) == ["W-1"]  # stemmed


def test_every_word_is_required_and_only_the_last_is_a_prefix(api):
    ProductFactory(sku="BW-1", name="Blue Widget")
    ProductFactory(sku="RW-1", name="Red Widget")
    ProductFactory(sku="BG-1", name="Blue Gadget")
    assert skus(search(api, {"q": "blue wid"})) == ["BW-1"]
    assert skus(search(api, {"q": "blu widget"})) == []


def test_description_and_sku_are_searched(api):
    ProductFactory(sku="KIT-00042", name="Chef's Knife", description="Forged from carbon steel.")
    assert skus(search(api, {"q": "carbon"})) == ["KIT-00042"]
    assert skus(search(api, {"q": "kit-0004"})) == ["KIT-00042"]  # SKU prefix
    assert skus(search(api, {"q": "Kit-00042"})) == ["KIT-00042"]


def test_exact_sku_ranks_first_then_name_above_description(api):
    ProductFactory(sku="ORG-2", name="Desk organiser", description="Goes well with a lamp.")
    ProductFactory(sku="TL-1", name="Table lamp", description="Warm light.")
    ProductFactory(sku="lamp", name="Bulb", description="A spare bulb.")
    assert skus(search(api, {"q": "LAMP"})) == ["lamp", "TL-1", "ORG-2"]


def test_filters_limit_and_offset(api):
    for index in range(5):
        ProductFactory(sku=f"TENT-{index}", name=f"Tent model {index}",
                       price=Decimal(100 + index * 10), is_active=index != 4)
    assert sorted(skus(search(api, {"q": "tent", "is_active": "false"}))) == ["TENT-4"]
    assert sorted(skus(search(api, {"q": "tent", "min_price": "110", "max_price": "130"}))) == [
        "TENT-1", "TENT-2", "TENT-3"]
    first = search(api, {"q": "tent", "limit": 2})
    assert len(first["items"]) == 2 and first["has_more"] is True and first["next_offset"] == 2
    rest = search(api, {"q": "tent", "limit": 2, "offset": 2})
    last = search(api, {"q": "tent", "limit": 2, "offset": 4})
    assert last["has_more"] is False and last["next_offset"] is None
    everything = skus(first) + skus(rest) + skus(last)
    assert sorted(everything) == [f"TENT-{i}" for i in range(5)]


def test_hits_have_the_product_shape(api):
    product = ProductFactory(name="Hammock")
    item = search(api, {"q": "hamm"})["items"][0]
    detail = api.get(f"/api/v1/products/{product.id}").json()["data"]
    assert item == detail


@pytest.mark.parametrize(
    "q",
    ["", "   ", "'", "''", '"', "\\", "&", "|", "!", "(", ")", ":", "*", ":*", "a:*", "a & | b",
     "!(a|b)", "a <-> b", "'; DROP TABLE catalog_product; --", "%", "_", "100%", "😀", "東京",
     "Ünïcödé wíd", "x" * 200, "a " * 100, "wid:*B", "-1", "1e400"],
)
def test_any_input_is_answered_without_error(api, q):
    ProductFactory(name="Widget")
    data = search(api, {"q": q})
    assert isinstance(data["items"], list)


def test_prefix_with_punctuation_still_finds(api):
    ProductFactory(sku="W-9", name="Widget")
    assert skus(search(api, {"q": "'wid'"})) == ["W-9"]
    assert skus(search(api, {"q": "(wid)!"})) == ["W-9"]


@pytest.mark.parametrize(
    "query",
    [{}, {"q": "x" * 201}, {"q": "a", "limit": 0}, {"q": "a", "limit": 101},
     {"q": "a", "offset": -1},
     {"q": "a", "limit": "ten"}, {"q": "a", "min_price": "abc"}, {"q": "a", "is_active": "perhaps"},
     {"q": "a", "unknown": "1"}, {"q": "nul\x00byte"}],
)
def test_bad_parameters_are_422(api, query):
    assert search(api, query, status=422)["code"] == "invalid_parameter"


def test_the_parameters_of_one_search_never_leak_into_the_next(api):
    """Query parameters are validated with one serializer per thread (``validated``): a search
    after a bad one, and a bad one after a good one, answer as if each were the first."""
    ProductFactory(sku="W-1", name="Widget")
    bad = search(api, {"q": "a", "limit": 0}, status=422)
    assert skus(search(api, {"q": "wid", "limit": 5})) == ["W-1"]
    assert search(api, {"q": "a", "limit": 0}, status=422) == bad
    assert bad["details"] == {"limit": ["Ensure this value is greater than or equal to 1."]}
    other = search(api, {"q": "a", "min_price": "abc"}, status=422)
    assert set(other["details"]) == {"min_price"}


def test_tsquery_text_keeps_only_words():
    assert selectors.tsquery_text("blue wid") == "'blue' & 'wid':*"
    assert selectors.tsquery_text("it's (a) |test|!") == "'it' & 's' & 'a' & 'test':*"
    assert selectors.tsquery_text("&|!():*'") is None


def test_search_uses_the_gin_index():
    """With a realistic table and fresh statistics the planner picks product_search_gin."""
    services.products_bulk_create(rows=demo_product_rows(5_000, seed=7))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_product")
    rows = selectors.product_search_queryset(q="heritage walnut skil")
    plan = rows.explain()
    assert "product_search_gin" in plan, plan
    hits = list(rows[:20])
    assert hits and all("Heritage Walnut Skillet" in row["name"] for row in hits)
    # One word: full text OR SKU prefix, two index scans combined.
    plan = selectors.product_search_queryset(q="skillet").explain()
    assert "product_search_gin" in plan and "product_sku_prefix_idx" in plan, plan


def test_search_pages_are_cached_and_every_product_write_moves_them_on(api,
                                                                       django_assert_num_queries):
    def skus(q):
        return [p["sku"] for p in api.get(f"/api/v1/products/search?q={q}").json()["data"]["items"]]

    assert skus("zeb") == []
    created = api.post("/api/v1/products", {"sku": "LMP-1", "name": "Zebra lamp", "price": "10.00"},
                       format="json")
    assert created.status_code == 201
    assert skus("zeb") == ["LMP-1"]  # the create moved the search namespace on
    with django_assert_num_queries(0):
        assert skus("zeb") == ["LMP-1"]  # served from the cache
    product_id = created.json()["data"]["id"]
    assert api.patch(f"/api/v1/products/{product_id}", {"name": "Okapi lamp"},
                     format="json").status_code == 200
    assert skus("zeb") == [] and skus("oka") == ["LMP-1"]
    api.delete(f"/api/v1/products/{product_id}")
    assert skus("oka") == []
