"""Back office for products: fixed query counts, indexed search, writes through the services."""

from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse

from catalog import selectors
from catalog.models import Product
from catalog.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:catalog_product_changelist")


@pytest.mark.parametrize("rows", [1, 50])
def test_changelist_query_count_is_fixed(admin_client, django_assert_num_queries, rows):
    ProductFactory.create_batch(rows)
    admin_client.get(CHANGELIST)  # session and user lookups warm up the same way every time
    with django_assert_num_queries(4):  # session, user, count, page
        response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows


@pytest.mark.parametrize("rows", [1, 50])
def test_filtered_and_searched_changelist_query_count_is_fixed(admin_client,
                                                               django_assert_num_queries, rows):
    ProductFactory.create_batch(rows, name="Garden hose")
    with django_assert_num_queries(4):  # session, user, count, page
        response = admin_client.get(CHANGELIST, {"q": "hose", "is_active__exact": "1"})
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows


def test_search_finds_by_word_prefix_and_sku_prefix(admin_client):
    ProductFactory(sku="KIT-00042", name="Cast Iron Skillet")
    ProductFactory(sku="OUT-00001", name="Tent")

    def found(term):
        response = admin_client.get(CHANGELIST, {"q": term})
        return sorted(p.sku for p in response.context["cl"].result_list)

    assert found("skil") == ["KIT-00042"]
    assert found("kit-000") == ["KIT-00042"]
    assert found("tent") == ["OUT-00001"]
    assert found("&|!") == []


def test_add_goes_through_the_service(admin_client):
    response = admin_client.post(reverse("admin:catalog_product_add"), {
        "sku": "ADM-1", "name": "From admin", "description": "", "price": "12.00",
        "currency": "USD", "is_active": "on", "attributes": "{}",
    })
    assert response.status_code == 302, response.context[
        "adminform"].form.errors if response.context else ""
    product = Product.objects.get(sku="ADM-1")
    assert product.version == 1 and product.price == Decimal("12.00")


def test_add_refuses_a_duplicate_sku_in_another_case_and_bad_currency(admin_client):
    ProductFactory(sku="ADM-2")
    response = admin_client.post(reverse("admin:catalog_product_add"), {
        "sku": "adm-2", "name": "Dup", "price": "1.00", "currency": "usd", "attributes": "{}",
    })
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "currency" in errors and errors.get("__all__")
    assert Product.objects.count() == 1


def test_change_bumps_version_and_invalidates_the_cache(admin_client,
                                                        django_capture_on_commit_callbacks):
    product = ProductFactory(name="Old", price=Decimal("5.00"))
    assert selectors.product_detail(product_id=product.id)["name"] == "Old"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:catalog_product_change", args=[product.id]), {
            "sku": product.sku, "name": "New", "description": product.description, "price": "5.00",
            "currency": "USD", "is_active": "on", "attributes": "{}",
        })
    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.name, product.version) == ("New", 2)
    assert selectors.product_detail(product_id=product.id)["name"] == "New"


def test_activate_and_deactivate_actions(admin_client):
    products = ProductFactory.create_batch(3, is_active=True)
    ids = [str(p.id) for p in products[:2]]
    response = admin_client.post(CHANGELIST, {"action": "deactivate", "_selected_action": ids})
    assert response.status_code == 302
    assert sorted(Product.objects.filter(is_active=False).values_list("version", flat=True)) == [2,
                                                                                                 2]
    admin_client.post(CHANGELIST, {"action": "activate", "_selected_action": ids})
    assert Product.objects.filter(is_active=True).count() == 3
    assert sorted(Product.objects.values_list("version", flat=True)) == [1, 3, 3]


def test_delete_of_a_referenced_product_deactivates_it(admin_client):
    product = ProductFactory()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE test_ref (product_id uuid REFERENCES catalog_product(id))")
        cursor.execute("INSERT INTO test_ref VALUES (%s)", [product.id])
    response = admin_client.post(CHANGELIST,
                                 {"action": "delete_selected",
                                  "_selected_action": [str(product.id)],
                                              "post": "yes"})
    assert response.status_code == 302
    product.refresh_from_db()
    assert product.is_active is False


def test_delete_removes_an_unreferenced_product(admin_client):
    product = ProductFactory()
    response = admin_client.post(reverse("admin:catalog_product_delete", args=[product.id]),
                                 {"post": "yes"})
    assert response.status_code == 302
    assert not Product.objects.exists()


def test_add_and_change_pages_render(admin_client):
    product = ProductFactory()
    assert admin_client.get(reverse("admin:catalog_product_add")).status_code == 200
    response = admin_client.get(reverse("admin:catalog_product_change", args=[product.id]))
    assert response.status_code == 200 and product.sku in response.content.decode()
