"""Races real threads can cause: one SKU in any case, one winner per If-Match version."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from catalog import services
from catalog.models import Product
from catalog.tests.factories import ProductFactory
from stateset.testing import run_threads_cleanly

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 8


def test_concurrent_creates_of_one_sku_in_any_case_leave_one_row():
    def create(index):
        try:
            services.product_create(sku="race-x" if index % 2 else "RACE-X", name=f"r{index}",
                                    price=Decimal("1"))
            return "created"
        except services.DuplicateSku:
            return "duplicate"

    assert sorted(run_threads_cleanly(THREADS,
                                      create)) == ["created"] + ["duplicate"] * (THREADS - 1)
    assert Product.objects.filter(sku__iexact="race-x").count() == 1


def test_concurrent_patches_with_the_same_if_match_have_one_winner(make_key):
    product = ProductFactory(name="v1")
    key = make_key("catalog:write")

    def patch(index):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=key)
        response = client.patch(f"/api/v1/products/{product.id}", {"name": f"writer {index}"},
                                format="json", HTTP_IF_MATCH='"1"')
        return response.status_code

    results = run_threads_cleanly(THREADS, patch)
    assert sorted(results) == [200] + [412] * (THREADS - 1)
    product.refresh_from_db()
    assert product.version == 2 and product.name.startswith("writer ")
