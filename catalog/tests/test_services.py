"""catalog.services: the only writes to products."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection
from django.db import transaction as db_transaction

from catalog import selectors, services
from catalog.models import Product
from catalog.tests.factories import ProductFactory
from stateset.errors import NotFound, PreconditionFailed, ValidationFailed

pytestmark = pytest.mark.django_db


def test_create_stores_normalised_values():
    product = services.product_create(sku=" ab-1 ", name="A", price=Decimal("3"), currency="usd")
    product.refresh_from_db()
    assert (product.sku, product.currency, product.price, product.version) == ("ab-1", "USD",
                                                                               Decimal("3.00"), 1)


@pytest.mark.parametrize("sku", ["AB-1", "ab-1", "Ab-1"])
def test_create_refuses_a_sku_that_exists_in_any_case(sku):
    ProductFactory(sku="ab-1")
    with pytest.raises(services.DuplicateSku):
        services.product_create(sku=sku, name="B", price=Decimal("1"))
    assert Product.objects.count() == 1


def test_database_checks_become_validation_errors():
    with pytest.raises(ValidationFailed):
        services.product_create(sku="N-1", name="Negative", price=Decimal("-1"))
    with pytest.raises(ValidationFailed):
        services.product_create(sku="C-1", name="Currency", price=Decimal("1"), currency="US1")
    assert not Product.objects.exists()


def test_update_bumps_version_and_checks_the_expected_one_in_the_update():
    product = ProductFactory(name="v1")
    updated = services.product_update(product_id=product.id, fields={"name": "v2"},
                                      expected_version=1)
    assert (updated.name, updated.version) == ("v2", 2)
    assert updated.updated_at > product.updated_at
    with pytest.raises(PreconditionFailed):
        services.product_update(product_id=product.id, fields={"name": "v3"}, expected_version=1)
    product.refresh_from_db()
    assert (product.name, product.version) == ("v2", 2)


def test_update_of_a_missing_product_is_not_found():
    with pytest.raises(NotFound):
        services.product_update(product_id="00000000-0000-0000-0000-000000000000",
                                fields={"name": "x"})


def test_update_refuses_fields_it_does_not_own():
    product = ProductFactory()
    with pytest.raises(ValidationFailed):
        services.product_update(product_id=product.id, fields={"version": 10})
    with pytest.raises(ValidationFailed):
        services.product_update(product_id=product.id, fields={})
    product.refresh_from_db()
    assert product.version == 1


def test_delete_removes_an_unreferenced_product():
    product = ProductFactory()
    result = services.product_delete(product_id=product.id)
    assert result.deleted is True and result.product is None
    assert not Product.objects.exists()


@pytest.mark.parametrize("deferrable", [True, False])
def test_delete_deactivates_a_product_other_rows_reference(deferrable):
    """Order items and stock rows reference products with PROTECT; a database-level reference the
    ORM does not know about (deferred or not) must be caught in the same way."""
    product, other = ProductFactory(), ProductFactory()
    clause = "DEFERRABLE INITIALLY DEFERRED" if deferrable else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE test_ref (product_id uuid REFERENCES catalog_product(id) {clause})")
        cursor.execute("INSERT INTO test_ref VALUES (%s)", [product.id])
    result = services.product_delete(product_id=product.id)
    assert result.deleted is False
    assert result.product.is_active is False and result.product.version == 2
    product.refresh_from_db()
    assert product.is_active is False and product.version == 2
    # The rest of the transaction still works and constraints are deferred again.
    assert services.product_delete(product_id=other.id).deleted is True
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM test_ref")
        assert cursor.fetchone()[0] == 1


def test_delete_deactivates_on_protected_error(monkeypatch):
    from django.db.models import ProtectedError

    product = ProductFactory()

    def refuse(self, *args, **kwargs):
        raise ProtectedError("referenced by order items", set())

    monkeypatch.setattr(Product, "delete", refuse)
    result = services.product_delete(product_id=product.id)
    assert result.deleted is False
    product.refresh_from_db()
    assert product.is_active is False and product.version == 2


def test_set_active_changes_only_rows_that_differ():
    on, off = ProductFactory(is_active=True), ProductFactory(is_active=False)
    assert services.products_set_active(product_ids=[on.id, off.id], is_active=False) == 1
    on.refresh_from_db()
    off.refresh_from_db()
    assert (on.is_active, on.version) == (False, 2)
    assert (off.is_active, off.version) == (False, 1)


def test_writes_invalidate_the_cached_detail_after_commit(django_capture_on_commit_callbacks):
    product = ProductFactory(name="cached")
    assert selectors.product_detail(product_id=product.id)["name"] == "cached"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.product_update(product_id=product.id, fields={"name": "fresh"})
    assert callbacks, "invalidation runs on commit"
    assert selectors.product_detail(product_id=product.id)["name"] == "fresh"
    with django_capture_on_commit_callbacks(execute=True):
        services.products_set_active(product_ids=[product.id], is_active=False)
    assert selectors.product_detail(product_id=product.id)["is_active"] is False


def test_a_rolled_back_write_does_not_invalidate(django_capture_on_commit_callbacks):
    product = ProductFactory(name="kept")
    taken = ProductFactory().sku.lower()
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(services.DuplicateSku):
        services.product_update(product_id=product.id, fields={"sku": taken})
    assert callbacks == []


def test_bulk_create_skips_existing_rows():
    rows = [{"id": f"00000000-0000-0000-0000-00000000000{i}", "sku": f"B-{i}", "name": f"B {i}",
             "price": Decimal("1.00")} for i in range(1, 4)]
    assert services.products_bulk_create(rows=rows) == 3
    assert services.products_bulk_create(rows=rows) == 0
    assert Product.objects.count() == 3


def test_ensure_creates_then_restores_the_wanted_values():
    fixed = "550e8400-e29b-41d4-a716-446655440099"
    product, created = services.product_ensure(id=fixed, sku="FIX-1", name="Fixed",
                                               price=Decimal("9.99"))
    assert created and product.version == 1
    services.product_update(product_id=fixed, fields={"price": Decimal("1.00"), "is_active": False})
    product, created = services.product_ensure(id=fixed, sku="FIX-1", name="Fixed",
                                               price=Decimal("9.99"))
    assert not created and product.price == Decimal(
        "9.99") and product.is_active and product.version == 3
    _, created = services.product_ensure(id=fixed, sku="FIX-1", name="Fixed", price=Decimal("9.99"))
    assert Product.objects.get(pk=fixed).version == 3


def test_the_database_refuses_a_case_variant_sku_even_without_the_service():
    ProductFactory(sku="DB-1")
    with pytest.raises(IntegrityError), db_transaction.atomic():
        Product.objects.create(sku="db-1", name="x", price=Decimal("1"))
