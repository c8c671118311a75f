"""Inventory imports: counts set through one adjust movement per changed row, receipts, the
ledger."""

import pytest

from inventory import services
from inventory.models import InventoryItem, StockMovement
from inventory.tests.factories import LocationFactory, ProductFactory
from webhooks.models import Event

from .helpers import triples

pytestmark = pytest.mark.django_db


@pytest.fixture
def stock(db):
    """Three products at MAIN: A 10 on hand, B 5, C 6 with 3 reserved; EAST has nothing yet."""
    main, east = LocationFactory(code="MAIN", priority=0), LocationFactory(code="EAST", priority=10)
    a, b, c = ProductFactory(sku="A-1"), ProductFactory(sku="B-1"), ProductFactory(sku="C-1")
    for product, quantity in ((a, 10), (b, 5), (c, 6)):
        services.stock_receive(product_id=product.id, location_id=main.id, quantity=quantity,
                               reason="opening")
    services.stock_reserve(
        lines=[services.ReserveLine(quantity=3, product_id=c.id, location_id=main.id)],
                           reference_type="cart", reference_id="cart-1")
    return {"main": main, "east": east, "a": a, "b": b, "c": c}


def item(product, location) -> InventoryItem:
    return InventoryItem.objects.get(product=product, location=location)


def test_setting_counts_writes_one_adjust_per_changed_row_and_the_ledger_reproduces_them(run_import,
                                                                                         stock):
    movements_before = StockMovement.objects.count()
    body = ("sku,location_code,on_hand\n"
            "A-1,MAIN,12\n"      # +2
            "b-1,main,5\n"       # unchanged (codes and SKUs in any case)
            "C-1,MAIN,2\n"       # below the 3 reserved: refused
            "A-1,EAST,7\n"       # a new row
            "C-1,MAIN,4\n"       # a repeat of row 3's key
            "NOPE,MAIN,1\n"      # unknown SKU
            "B-1,MOON,1\n"       # unknown location
            "B-1,EAST,-1\n"      # out of range
            "C-1,EAST,x\n")      # not an integer
    result = run_import(body, kind="inventory")
    assert (result["created"], result["updated"], result["unchanged"], result["failed"]) == (1, 1,
                                                                                             1, 6)
    assert triples(result) == [(3, "on_hand", "insufficient_stock"), (5, None, "duplicate_in_file"),
                               (6, "sku", "product_not_found"),
                               (7, "location_code", "location_not_found"),
                               (8, "on_hand", "out_of_range"), (9, "on_hand", "invalid")]
    assert item(stock["a"], stock["main"]).on_hand == 12
    assert item(stock["b"], stock["main"]).on_hand == 5
    assert (item(stock["c"], stock["main"]).on_hand,
            item(stock["c"], stock["main"]).reserved) == (6, 3)
    assert item(stock["a"], stock["east"]).on_hand == 7
    new = StockMovement.objects.order_by("created_at", "id")[movements_before:]
    assert [(m.inventory_item.sku, m.inventory_item.location.code, m.kind, m.on_hand_delta,
             m.on_hand_after,
             m.reason, m.reference_type, m.reference_id, m.actor) for m in new] == [
        ("A-1", "MAIN", "adjust", 2, 12, "import", "import", result["id"], "api-key:test"),
        ("A-1", "EAST", "adjust", 7, 7, "import", "import", result["id"], "api-key:test"),
    ]
    assert services.inventory_ledger_drift() == []


def test_reimporting_the_counts_changes_nothing(run_import, stock):
    body = "sku,location_code,on_hand\nA-1,MAIN,3\nB-1,MAIN,9\n"
    run_import(body, kind="inventory")
    movements = StockMovement.objects.count()
    again = run_import(body, kind="inventory")
    assert (again["unchanged"], again["updated"], again["failed"]) == (2, 0, 0)
    assert StockMovement.objects.count() == movements


def test_quantities_are_received(run_import, stock):
    result = run_import("sku,location_code,quantity\nA-1,MAIN,5\nB-1,EAST,2\nC-1,MAIN,0\n",
                        kind="inventory")
    assert (result["updated"], result["created"], result["failed"]) == (1, 1, 1)
    assert triples(result) == [(3, "quantity", "out_of_range")]
    assert item(stock["a"], stock["main"]).on_hand == 15
    assert item(stock["b"], stock["east"]).on_hand == 2
    kinds = list(StockMovement.objects.filter(reference_id=result["id"]).values_list("kind",
                                                                                     "on_hand_delta"))
    assert sorted(kinds) == [("receive", 2), ("receive", 5)]
    assert services.inventory_ledger_drift() == []


def test_a_dry_run_of_counts_writes_nothing(run_import, stock):
    rows = list(InventoryItem.objects.order_by("id").values_list("id", "on_hand", "reserved",
                                                                 "version"))
    movements = StockMovement.objects.count()
    result = run_import("sku,location_code,on_hand\nA-1,MAIN,1\nA-1,EAST,4\nC-1,MAIN,1\n",
                        kind="inventory", dry_run="true")
    assert (result["updated"], result["created"], result["failed"]) == (1, 1, 1)
    assert list(InventoryItem.objects.order_by("id").values_list("id", "on_hand", "reserved",
                                                                 "version")) == rows
    assert StockMovement.objects.count() == movements


def test_mode_create_only_adds_rows_that_do_not_exist(run_import, stock):
    result = run_import("sku,location_code,on_hand\nA-1,MAIN,1\nA-1,EAST,4\n", kind="inventory",
                        mode="create")
    assert (result["created"], result["failed"]) == (1, 1)
    assert triples(result) == [(1, None, "already_exists")]
    assert item(stock["a"], stock["main"]).on_hand == 10


def test_a_file_needs_exactly_one_of_on_hand_and_quantity(run_import, stock):
    for header, code in (("sku,location_code", "missing_column"),
                         ("sku,location_code,on_hand,quantity", "ambiguous_columns")):
        result = run_import(f"{header}\nA-1,MAIN,1,1\n", kind="inventory")
        assert result["status"] == "failed" and result["errors"][0]["code"] == code
    assert item(stock["a"], stock["main"]).on_hand == 10


def test_counts_falling_to_the_reorder_point_publish_low_stock(run_import, stock):
    row = item(stock["a"], stock["main"])
    services.inventory_item_update(item_id=row.id, changes={"reorder_point": 4})
    run_import("sku,location_code,on_hand\nA-1,MAIN,4\n", kind="inventory")
    assert [p["sku"] for t,
            p in Event.objects.values_list("type", "payload")
            if t == "inventory.low_stock"] == ["A-1"]


def test_ndjson_counts_must_be_json_integers(run_import, stock):
    body = (
        '{"sku": "A-1", "location_code": "MAIN", "on_hand": "2"}\n'
        '{"sku": "B-1", "location_code": "MAIN", "on_hand": 8}\n')
    result = run_import(body, kind="inventory", content_type="application/x-ndjson")
    assert triples(result) == [(1, "on_hand", "invalid")]
    assert (item(stock["a"], stock["main"]).on_hand,
            item(stock["b"], stock["main"]).on_hand) == (10, 8)
