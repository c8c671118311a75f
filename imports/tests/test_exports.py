"""Exports: formula-safe, streamed in keyset chunks, with the list filters, and re-importable."""

import csv
import io
from decimal import Decimal

import pytest

from catalog.models import Product
from catalog.tests.factories import ProductFactory
from customers import services as customer_services
from customers.models import Customer
from inventory import services as inventory_services
from inventory.models import InventoryItem, StockMovement
from inventory.selectors import movement_export_rows
from inventory.tests.factories import LocationFactory
from orders import services as order_services
from stateset.csvio import keyset_rows, safe_cell, unescape_cell
from stateset.pagination import Sort
from stateset.testing import client_for, error_of

pytestmark = pytest.mark.django_db

HYPERLINK = '=HYPERLINK("http://evil.example/x","Click me")'


def download(client, path: str) -> tuple[bytes, list[list[str]]]:
    response = client.get(path)
    assert response.status_code == 200, response.content
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    raw = b"".join(response.streaming_content)
    return raw, list(csv.reader(io.StringIO(raw.decode())))


@pytest.mark.parametrize("text",
                         ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "'=x", "''@x", "plain",
                          "'plain",
                                  "", "a=b"])
def test_every_text_survives_the_round_trip_through_the_quote(text):
    cell = safe_cell(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unescape_cell(cell) == text


def test_numbers_the_exports_write_stay_numbers():
    assert safe_cell(-3) == -3 and safe_cell(Decimal("-1.50")) == Decimal("-1.50")
    assert safe_cell(True) == "true" and safe_cell(None) == "" and safe_cell({"a": 1}) == '{"a":1}'


def test_a_customer_named_like_a_formula_exports_as_a_harmless_text_cell(api):
    customer_services.customer_create(email="mallory@example.com", first_name=HYPERLINK,
                                      last_name="@cmd", phone="+1 555 0100")
    raw, rows = download(api, "/api/v1/customers/export.csv")
    assert rows[0][:4] == ["email", "first_name", "last_name", "phone"]
    assert rows[1][:4] == ["mallory@example.com", "'" + HYPERLINK, "'@cmd", "'+1 555 0100"]
    assert b"\n=HYPERLINK" not in raw and b",=HYPERLINK" not in raw and b'"=HYPERLINK' not in raw


def test_a_products_export_reimports_unchanged(api, run_import):
    ProductFactory(sku="P-1", name="=cmd|' /C calc'!A0",
                   description="line one\nline two, with comma",
                   price=Decimal("1.50"), attributes={"nested": {"list": [1, "-x"]}})
    ProductFactory(sku="P-2", name="Plain", description="", price=Decimal("0.00"), currency="EUR",
                   is_active=False)
    ProductFactory(sku="P-3", name="+plus", description="'quoted", price=Decimal("99.99"))
    before = list(Product.objects.order_by("sku").values_list("sku", "name", "description", "price",
                                                              "currency",
                                                              "is_active", "attributes", "version"))
    raw, rows = download(api, "/api/v1/products/export.csv")
    assert rows[0] == ["sku", "name", "description", "price", "currency", "is_active", "attributes"]
    assert [row[0] for row in rows[1:]] == ["P-1", "P-2", "P-3"]
    assert rows[1][1] == "'=cmd|' /C calc'!A0"
    result = run_import(raw)
    assert (result["unchanged"], result["created"], result["updated"], result["failed"]) == (3, 0,
                                                                                             0, 0)
    assert list(Product.objects.order_by("sku").values_list("sku", "name", "description", "price",
                                                            "currency",
                                                            "is_active", "attributes",
                                                            "version")) == before


def test_a_customers_export_reimports_unchanged(api, run_import):
    ann = customer_services.customer_create(email="ann@example.com", first_name=HYPERLINK,
                                            last_name="Doe", phone="(555) 0100")
    customer_services.address_create(customer_id=ann.id, kind="shipping", name="Ann",
                                     line1="-1 Minus St",
                                     line2="Apt 2", city="Oslo", region="", postal_code="0150",
                                     country="NO", phone="+47 1")
    customer_services.address_create(customer_id=ann.id, kind="billing", line1="2 Bill St",
                                     city="Bergen", country="NO")
    customer_services.customer_create(email="bob@example.com")
    before = list(Customer.objects.order_by("email").values_list("email", "first_name", "version"))
    raw, rows = download(api, "/api/v1/customers/export.csv")
    assert len(rows) == 3
    result = run_import(raw, kind="customers")
    assert (result["unchanged"], result["created"], result["updated"], result["failed"]) == (2, 0,
                                                                                             0, 0)
    assert list(Customer.objects.order_by("email").values_list("email", "first_name",
                                                               "version")) == before


def test_an_inventory_export_reimports_unchanged(api, run_import):
    main, east = LocationFactory(code="MAIN"), LocationFactory(code="EAST")
    for n, location in enumerate([main, east, main]):
        product = ProductFactory(sku=f"S-{n}")
        inventory_services.stock_receive(product_id=product.id, location_id=location.id,
                                         quantity=5 + n, reason="x")
    inventory_services.stock_reserve(lines=[inventory_services.ReserveLine(quantity=2, sku="S-0")],
                                     reference_type="cart", reference_id="c-1")
    movements = StockMovement.objects.count()
    raw, rows = download(api, "/api/v1/inventory/export.csv")
    assert rows[0] == ["sku", "location_code", "on_hand", "reserved", "available"]
    assert sorted(rows[1:]) == [["S-0", "MAIN", "5", "2", "3"], ["S-1", "EAST", "6", "0", "6"],
                                ["S-2", "MAIN", "7", "0", "7"]]
    result = run_import(raw, kind="inventory")
    assert (result["unchanged"], result["failed"]) == (3, 0)
    assert StockMovement.objects.count() == movements


def test_exports_honour_the_list_filters(api, make_key):
    main, east = LocationFactory(code="MAIN"), LocationFactory(code="EAST")
    ProductFactory(sku="ON-1", is_active=True)
    off = ProductFactory(sku="OFF-1", is_active=False)
    inventory_services.stock_receive(product_id=off.id, location_id=main.id, quantity=4, reason="x")
    inventory_services.stock_receive(product_id=off.id, location_id=east.id, quantity=3, reason="x")
    inventory_services.stock_adjust(product_id=off.id, location_id=east.id, delta=-1,
                                    reason="count")
    customer_services.customer_create(email="zed@example.com", first_name="Zed")
    customer_services.customer_create(email="amy@example.com", first_name="Amy")

    assert [r[0]
            for r in download(api,
                              "/api/v1/products/export.csv?is_active=false")[1][1:]] == ["OFF-1"]
    assert [r[0]
            for r in download(api,
                              "/api/v1/customers/export.csv?search=ze")[1][1:]] == [
                                  "zed@example.com"]
    assert [r[1]
            for r in download(api,
                              f"/api/v1/inventory/export.csv?location_id={east.id}")[1][1:]] == [
                                  "EAST"]
    _, movements = download(api, "/api/v1/inventory/movements/export.csv?kind=adjust")
    assert movements[0][:5] == ["created_at", "id", "sku", "location_code", "kind"]
    assert [(r[2], r[3], r[4], r[5], r[9])
            for r in movements[1:]] == [("OFF-1", "EAST", "adjust", "-1", "count")]
    for path in ("/api/v1/products/export.csv?colour=red", "/api/v1/customers/export.csv?bogus=1",
                 "/api/v1/inventory/export.csv?nope=1",
                 "/api/v1/inventory/movements/export.csv?kind=teleport"):
        assert error_of(api.get(path), 422)["code"] in ("invalid_parameter", "validation_error")
    reader = client_for(make_key("catalog:read"))
    assert reader.get("/api/v1/products/export.csv").status_code == 200
    assert reader.get("/api/v1/inventory/export.csv").status_code == 403
    assert reader.get("/api/v1/customers/export.csv").status_code == 403


def test_the_orders_export_gives_a_row_per_line_with_include_items(api):
    customer = customer_services.customer_create(email="buyer@example.com", first_name="@buyer")
    location = LocationFactory(code="MAIN")
    products = [ProductFactory(sku=f"OI-{n}", name=f"-Item {n}", price=Decimal("2.00"))
                for n in range(3)]
    for product in products:
        inventory_services.stock_receive(product_id=product.id, location_id=location.id,
                                         quantity=10, reason="x")
    two = order_services.order_create(customer_id=customer.id, items=[
        order_services.OrderLineInput(product_id=products[0].id, quantity=1),
        order_services.OrderLineInput(product_id=products[1].id, quantity=3)]).order
    one = order_services.order_create(customer_id=customer.id, items=[
        order_services.OrderLineInput(product_id=products[2].id, quantity=2)]).order
    _, headers = download(api, "/api/v1/orders/export.csv")
    assert len(headers) == 3 and "item_sku" not in headers[0]
    _, rows = download(api, "/api/v1/orders/export.csv?include_items=true")
    columns = rows[0]
    assert columns[-11:] == ["item_id", "item_sku", "item_name", "item_quantity", "item_unit_price",
                             "item_total_price", "item_discount_total", "item_net_total",
                             "item_tax_total", "item_quantity_fulfilled", "item_quantity_returned"]
    lines = [dict(zip(columns, row, strict=True)) for row in rows[1:]]
    assert [(r["order_number"], r["item_sku"], r["item_name"], r["item_quantity"],
             r["item_total_price"])
            for r in lines] == [
        (one.order_number, "OI-2", "'-Item 2", "2", "4.00"),
        (two.order_number, "OI-0", "'-Item 0", "1", "2.00"),
        (two.order_number, "OI-1", "'-Item 1", "3", "6.00"),
    ]
    assert {r["customer_email"] for r in lines} == {"buyer@example.com"}


def test_keyset_chunks_return_every_row_once_across_chunks_and_ties():
    location = LocationFactory(code="MAIN")
    products = [ProductFactory(sku=f"K-{n:03d}") for n in range(23)]
    lines = [inventory_services.StockLine(location_id=location.id, quantity=1, product_id=p.id)
             for p in products]
    inventory_services.stock_receive_many(lines=lines, reason="one batch, one timestamp")
    assert StockMovement.objects.values("created_at").distinct().count() == 1  # 23 ties
    ledger = list(movement_export_rows(StockMovement.objects.all()))
    assert len(ledger) == 23
    chunked = list(keyset_rows(StockMovement.objects.all(), fields=("created_at", "id"),
                               sort=Sort(field="created_at", descending=True), chunk_size=5))
    assert [row[1] for row in chunked] == [row[1] for row in ledger]
    assert len({row[1] for row in chunked}) == 23
    skus = [row[1] for row in keyset_rows(Product.objects.all(), fields=("id", "sku"),
                                          sort=Sort(field="sku", descending=False), chunk_size=4)]
    assert skus == sorted(p.sku for p in products)
    assert InventoryItem.objects.count() == 23
