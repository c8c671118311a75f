"""What stock rows do to the products they hold: a product with stock rows is deactivated, not
deleted; a SKU change reaches the rows (the copy the trigger keeps)."""

import pytest

from catalog.models import Product
from inventory.models import InventoryItem
from inventory.tests.factories import ProductFactory, stock

pytestmark = pytest.mark.django_db


def test_deleting_a_product_with_stock_rows_deactivates_it_and_a_bare_one_is_deleted(api, main):
    stocked, bare = ProductFactory(), ProductFactory()
    stock(stocked, main, 5)
    assert api.delete(f"/api/v1/products/{stocked.id}").json()["data"]["deactivated"] is True
    assert Product.objects.get(id=stocked.id).is_active is False
    assert api.delete(f"/api/v1/products/{bare.id}").status_code == 204
    assert not Product.objects.filter(id=bare.id).exists()


def test_a_sku_change_reaches_the_stock_rows(api, main):
    product = ProductFactory(sku="OLD-SKU")
    stock(product, main, 5)
    response = api.patch(f"/api/v1/products/{product.id}", {"sku": "NEW-SKU"}, format="json")
    assert response.status_code == 200, response.content
    assert set(InventoryItem.objects.filter(product_id=product.id).values_list("sku",
                                                                               flat=True)) == {
                                                                                   "NEW-SKU"}
    assert api.get("/api/v1/inventory?sku=new-sku").json()["data"]["total"] == 1
