"""Products imports: counts, per-row errors, dry runs, re-imports, modes and duplicate keys."""

from decimal import Decimal

import pytest
from django.test import override_settings

from catalog.models import Product
from catalog.tests.factories import ProductFactory
from imports.models import Import
from imports.tests.helpers import run_service, triples
from webhooks.models import Event

pytestmark = pytest.mark.django_db

FIELDS = ("sku", "name", "description", "price", "currency", "is_active", "attributes", "version")


def snapshot() -> list[tuple]:
    return list(Product.objects.order_by("sku").values_list(*FIELDS))


@pytest.fixture
def existing(db):
    changed = ProductFactory(sku="OLD-1", name="Old one", price=Decimal("10.00"), description="")
    same = ProductFactory(sku="OLD-2", name="Kept", price=Decimal("5.50"), description="As is",
                          attributes={"color": "red"})
    return changed, same


MIXED = (
    "sku,name,description,price,currency,is_active,attributes\n"
    'NEW-1,Widget,A widget,19.99,USD,true,"{""size"": ""L""}"\n'
    "NEW-2,Gadget,,5,EUR,false,\n"
    "old-1,Old one renamed,,10.00,USD,true,\n"        # changed (name), matched in any case
    "bad sku,Broken,,1.00,USD,true,\n"                # row 4: invalid SKU
    "NEW-3,Gizmo,Small,0.99,,,\n"                     # currency and is_active default
    'OLD-2,Kept,As is,5.5,USD,true,"{""color"": ""red""}"\n'  # unchanged (5.5 == 5.50)
    "NEW-4,Costly,,12.345,XXX,true,\n"                # row 7: a bad currency (the price's
                                                      # digits need a known one)
)


def test_a_file_of_new_changed_unchanged_and_bad_rows_gives_exactly_those_counts(run_import,
                                                                                 existing):
    changed, same = existing
    result = run_import(MIXED)
    assert result["status"] == "succeeded"
    assert (result["rows_total"], result["rows_done"]) == (7, 7)
    assert {k: result[k] for k in ("created", "updated", "unchanged", "failed")} == \
        {"created": 3, "updated": 1, "unchanged": 1, "failed": 2}
    assert triples(result) == [(4, "sku", "invalid_sku"), (7, "currency", "invalid_currency")]
    # Only the good rows are written.
    assert set(Product.objects.values_list("sku", flat=True)) == {"old-1", "OLD-2", "NEW-1",
                                                                  "NEW-2", "NEW-3"}
    new1 = Product.objects.get(sku="NEW-1")
    assert (new1.name, new1.description, new1.price, new1.currency, new1.is_active,
            new1.attributes) == \
        ("Widget", "A widget", Decimal("19.99"), "USD", True, {"size": "L"})
    new2, new3 = Product.objects.get(sku="NEW-2"), Product.objects.get(sku="NEW-3")
    assert (new2.price, new2.currency, new2.is_active, new2.description) == (Decimal("5.00"), "EUR",
                                                                             False, "")
    assert (new3.currency, new3.is_active) == ("USD", True)
    changed.refresh_from_db()
    same.refresh_from_db()
    assert (changed.name, changed.sku, changed.version) == ("Old one renamed", "old-1", 2)
    assert same.version == 1


def test_a_dry_run_counts_the_same_and_writes_nothing(run_import, existing):
    before = snapshot()
    result = run_import(MIXED, dry_run="true")
    assert result["dry_run"] is True and result["status"] == "succeeded"
    assert {k: result[k] for k in ("created", "updated", "unchanged", "failed")} == \
        {"created": 3, "updated": 1, "unchanged": 1, "failed": 2}
    assert triples(result) == [(4, "sku", "invalid_sku"), (7, "currency", "invalid_currency")]
    assert snapshot() == before
    assert list(Event.objects.values_list("type", flat=True)) == ["import.finished"]


def test_reimporting_the_same_file_changes_nothing(run_import, existing):
    first = run_import(MIXED)
    after_first = snapshot()
    again = run_import(MIXED)
    assert (again["created"], again["updated"], again["unchanged"], again["failed"]) == (0, 0, 5, 2)
    assert snapshot() == after_first
    assert first["id"] != again["id"]


def test_mode_create_fails_the_rows_whose_sku_exists(run_import, existing):
    before = snapshot()
    result = run_import("sku,name,price\nOLD-1,Other,1.00\nBRAND-NEW,New,2.00\n", mode="create")
    assert (result["created"], result["failed"]) == (1, 1)
    assert triples(result) == [(1, "sku", "already_exists")]
    assert [row for row in snapshot() if row[0] != "BRAND-NEW"] == before


@pytest.mark.parametrize("batch_size", [1000, 2])
def test_a_sku_repeated_in_the_file_fails_its_later_rows(run_import, batch_size):
    body = (
        "sku,name,price\nA-1,First,1.00\nB-1,Other,2.00\na-1,Second,3.00\nC-1,Third,4.00\nA-1,Third,5.00\n")
    with override_settings(IMPORTS_BATCH_SIZE=batch_size):
        result = run_import(body)
    assert (result["created"], result["failed"]) == (3, 2)
    assert triples(result) == [(3, "sku", "duplicate_in_file"), (5, "sku", "duplicate_in_file")]
    assert Product.objects.get(sku="A-1").name == "First"


def test_a_new_product_needs_name_and_price_but_an_existing_one_keeps_them(run_import, existing):
    changed, _ = existing
    result = run_import("sku,name,price,description\nOLD-1,,,Now described\nNOPE-1,,,x\n")
    assert triples(result) == [(2, "name", "required"), (2, "price", "required")]
    changed.refresh_from_db()
    assert (changed.name, changed.price, changed.description) == ("Old one", Decimal("10.00"),
                                                                  "Now described")
    assert not Product.objects.filter(sku="NOPE-1").exists()


def test_values_are_checked_as_the_api_checks_them(run_import):
    body = ("sku,name,price,currency,attributes\n"
            "V-1,Fine,1.00,usd,{}\n"
            "V-2,Fine,-1,USD,\n"
            "V-3,Fine,1,XXX,\n"
            "V-4,Fine,1,USD,[1]\n"
            "V-5,Fine,1,USD,{nope\n"
            f"V-6,{'n' * 256},1,USD,\n"
            "V-7,Fine,99999999999,USD,\n"
            "V-8,Fine,1e400,USD,\n")
    result = run_import(body)
    assert triples(result) == [(2, "price", "min_value"), (3, "currency", "invalid_currency"),
                               (4, "attributes", "invalid"), (5, "attributes", "invalid_json"),
                               (6, "name", "max_length"), (7, "price", "max_digits"),
                               (8, "price", "invalid")]
    assert list(Product.objects.values_list("sku", "currency")) == [("V-1", "USD")]


def test_a_bom_and_the_quote_exports_add_are_understood(run_import):
    body = (
        "\ufeffsku,name,price,description\r\nQ-1,'=SUM(A1),1.00,'-minus\r\nQ-2,''+plus,2.00,'plain\r\n")
    result = run_import(body.encode("utf-8"))
    assert result["created"] == 2
    assert Product.objects.get(sku="Q-1").name == "=SUM(A1)"
    assert Product.objects.get(sku="Q-1").description == "-minus"
    assert Product.objects.get(sku="Q-2").name == "'+plus"
    assert Product.objects.get(sku="Q-2").description == "'plain"  # not an export's quote: kept


def test_ndjson_takes_json_values(run_import):
    body = (
        '{"sku": "J-1", "name": "Json", "price": "3.10", "is_active": false, '
        '"attributes": {"a": [1, 2]}}\n'
            "\n"
            '{"sku": "J-2", "name": "Json two", "price": 4}\n'
            '{"sku": "J-3", "name": "Bad", "price": "1", "is_active": "yes"}\n'
            "not json\n"
            '["a list"]\n')
    result = run_import(body, content_type="application/x-ndjson")
    assert (result["format"], result["created"], result["failed"]) == ("ndjson", 2, 3)
    assert triples(result) == [(3, "is_active", "invalid"), (4, None, "invalid_json"),
                               (5, None, "invalid_row")]
    j1 = Product.objects.get(sku="J-1")
    assert (j1.price, j1.is_active, j1.attributes) == (Decimal("3.10"), False, {"a": [1, 2]})


def test_the_service_alone_gives_the_same_answer_as_the_api(existing):
    record = run_service(MIXED)
    assert (record.created, record.updated, record.unchanged, record.failed) == (3, 1, 1, 2)
    assert Import.objects.get(pk=record.pk).status == "succeeded"


def test_a_sku_created_by_another_writer_after_the_batch_read_fails_only_its_row(run_import,
                                                                                 existing,
                                                                                 monkeypatch):
    from catalog import locks

    # The batch reads the existing products, then another writer inserts OLD-1 before the
    # batch's insert: the fast COPY fails on the unique index and the batch falls back to
    # INSERT ... ON CONFLICT DO NOTHING, answering that one row as a conflict.
    monkeypatch.setattr(locks, "lock_products_by_skus", lambda skus, fields: [])
    result = run_import("sku,name,price\nRACE-1,New,1.00\nOLD-1,Raced,2.00\nRACE-2,New,3.00\n")
    assert (result["created"], result["failed"]) == (2, 1)
    assert triples(result) == [(2, "sku", "conflict")]
    assert Product.objects.get(sku="OLD-1").name == "Old one"
    assert set(Product.objects.values_list("sku", flat=True)) == {"OLD-1", "OLD-2", "RACE-1",
                                                                  "RACE-2"}


def test_a_key_repeated_after_a_broken_row_is_still_a_repeat(run_import):
    result = run_import("sku,name,price,is_active\nK-1,First,1.00,maybe\nK-1,Second,2.00,true\n")
    assert triples(result) == [(1, "is_active", "invalid"), (2, "sku", "duplicate_in_file")]
    assert not Product.objects.exists()
