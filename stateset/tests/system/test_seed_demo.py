"""``seed_demo``: the guide's load-test rows plus a realistic catalog and customers; re-runnable."""

import uuid
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from catalog.models import Product
from catalog.seed import demo_product_rows
from customers.models import Address, Customer

pytestmark = pytest.mark.django_db
PRODUCT_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440002")
CUSTOMER_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440001")


def counts():
    return Product.objects.count(), Customer.objects.count(), Address.objects.count()


def test_seed_demo_loads_the_load_test_rows_and_is_idempotent():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    product = Product.objects.get(pk=PRODUCT_ID)
    assert (product.sku, product.price, product.currency, product.is_active) == (
        "TEST-001", Decimal("29.99"), "USD", True)
    customer = Customer.objects.get(pk=CUSTOMER_ID)
    assert customer.email == "loadtest@example.com"
    assert set(customer.addresses.filter(is_default=True).values_list("kind",
                                                                      flat=True)) == {"shipping",
                                                                                      "billing"}
    first = counts()
    assert first[0] == 301 and first[1] == 201 and first[2] >= 202
    assert "[catalog]" in out.getvalue() and "[customers]" in out.getvalue()

    # Someone edits the load-test product; a re-run restores it and adds nothing.
    Product.objects.filter(pk=PRODUCT_ID).update(price=Decimal("1.00"), is_active=False)
    call_command("seed_demo", stdout=StringIO())
    assert counts() == first
    product.refresh_from_db()
    assert product.price == Decimal("29.99") and product.is_active


def test_demo_data_is_deterministic_and_realistic():
    rows = demo_product_rows(300, seed=42)
    assert rows == demo_product_rows(300, seed=42)
    assert rows != demo_product_rows(300, seed=43)
    assert len({row["sku"] for row in rows}) == 300
    assert all(Decimal("0") < row["price"] < Decimal("1000") for row in rows)
    assert all(len(row["name"]) <= 255 and row["name"][0].isupper() for row in rows)
    assert {row["attributes"]["category"] for row in rows} >= {"Kitchen", "Apparel", "Outdoor"}


def test_seed_demo_can_run_one_section_with_other_sizes():
    call_command("seed_demo", "--only", "catalog", "--products", "10", stdout=StringIO())
    assert Product.objects.count() == 11
    assert not Customer.objects.exists()


def test_seed_demo_stocks_its_own_products_only():
    from inventory.models import InventoryItem

    shops_own = Product.objects.create(sku="SHOP-1", name="The shop's own", price=Decimal("5.00"))
    call_command("seed_demo", "--products", "5", "--customers", "0", stdout=StringIO())
    call_command("seed_demo", "--only", "inventory", "--products", "5", stdout=StringIO())
    assert not InventoryItem.objects.filter(product=shops_own).exists()
    stocked = set(InventoryItem.objects.values_list("product_id", flat=True))
    assert stocked == set(Product.objects.exclude(pk=shops_own.pk).values_list("id", flat=True))
