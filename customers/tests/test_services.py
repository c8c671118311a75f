"""customers.services: the only writes to customers and addresses."""

import pytest
from django.db import IntegrityError, transaction

from customers import selectors, services
from customers.models import Address, Customer
from customers.tests.factories import AddressFactory, CustomerFactory
from stateset.errors import NotFound, PreconditionFailed, ValidationFailed

pytestmark = pytest.mark.django_db


def test_create_normalises_the_email_domain():
    customer = services.customer_create(email="  Jane.Doe@Example.COM ", first_name="Jane")
    customer.refresh_from_db()
    assert customer.email == "Jane.Doe@example.com" and customer.version == 1


@pytest.mark.parametrize("email", ["jane@example.com", "JANE@EXAMPLE.COM", "Jane@example.com"])
def test_create_refuses_an_email_that_exists_in_any_case(email):
    CustomerFactory(email="jane@example.com")
    with pytest.raises(services.DuplicateEmail):
        services.customer_create(email=email)
    assert Customer.objects.count() == 1


def test_update_checks_the_expected_version_inside_the_update():
    customer = CustomerFactory(first_name="A")
    updated = services.customer_update(customer_id=customer.id, fields={"first_name": "B"},
                                       expected_version=1)
    assert (updated.first_name, updated.version) == ("B", 2)
    with pytest.raises(PreconditionFailed):
        services.customer_update(customer_id=customer.id, fields={"first_name": "C"},
                                 expected_version=1)
    customer.refresh_from_db()
    assert (customer.first_name, customer.version) == ("B", 2)
    with pytest.raises(NotFound):
        services.customer_update(customer_id="00000000-0000-0000-0000-000000000000",
                                 fields={"phone": "1"})


def test_update_to_a_taken_email_is_a_duplicate():
    CustomerFactory(email="taken@example.com")
    customer = CustomerFactory()
    with pytest.raises(services.DuplicateEmail):
        services.customer_update(customer_id=customer.id, fields={"email": "TAKEN@example.com"})
    customer.refresh_from_db()
    assert customer.version == 1


def test_the_first_address_of_a_kind_becomes_the_default():
    customer = CustomerFactory()
    first = services.address_create(customer_id=customer.id, kind="shipping", line1="1 A St",
                                    city="Austin", country="us")
    second = services.address_create(customer_id=customer.id, kind="shipping", line1="2 B St",
                                     city="Austin", country="US")
    billing = services.address_create(customer_id=customer.id, kind="billing", line1="3 C St",
                                      city="Austin", country="US", is_default=False)
    assert (first.is_default, second.is_default, billing.is_default) == (True, False, False)
    assert first.country == "US"


def test_a_new_default_undefaults_the_previous_one_of_its_kind_only():
    customer = CustomerFactory()
    old_ship = AddressFactory(customer=customer, kind="shipping", is_default=True)
    bill = AddressFactory(customer=customer, kind="billing", is_default=True)
    new_ship = services.address_create(customer_id=customer.id, kind="shipping", line1="9 New St",
                                       city="Austin", country="US", is_default=True)
    defaults = dict(Address.objects.filter(customer=customer, is_default=True).values_list("kind",
                                                                                           "id"))
    assert defaults == {"shipping": new_ship.id, "billing": bill.id}
    old_ship.refresh_from_db()
    assert old_ship.is_default is False


def test_address_writes_bump_the_customer_version():
    customer = CustomerFactory()
    address = services.address_create(customer_id=customer.id, kind="billing", line1="1 A St",
                                      city="Paris", country="FR")
    services.address_update(address_id=address.id, fields={"city": "Lyon"})
    services.address_delete(address_id=address.id)
    customer.refresh_from_db()
    assert customer.version == 4
    assert not Address.objects.exists()


def test_address_update_to_default_flips_the_previous_default():
    customer = CustomerFactory()
    first = AddressFactory(customer=customer, is_default=True)
    second = AddressFactory(customer=customer, is_default=False)
    services.address_update(address_id=second.id, fields={"is_default": True})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_default, second.is_default) == (False, True)


def test_address_for_a_missing_customer_is_not_found():
    with pytest.raises(NotFound):
        services.address_create(customer_id="00000000-0000-0000-0000-000000000000", kind="shipping",
                                line1="x", city="y", country="US")
    assert not Address.objects.exists()


def test_database_checks_become_validation_errors():
    customer = CustomerFactory()
    with pytest.raises(ValidationFailed):
        services.address_create(customer_id=customer.id, kind="shipping", line1="x", city="y",
                                country="U1")
    with pytest.raises(ValidationFailed):
        services.address_create(customer_id=customer.id, kind="pickup", line1="x", city="y",
                                country="US")
    assert not Address.objects.exists()


def test_the_database_allows_one_default_per_kind_even_without_the_service():
    customer = CustomerFactory()
    AddressFactory(customer=customer, kind="shipping", is_default=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        AddressFactory(customer=customer, kind="shipping", is_default=True)
    AddressFactory(customer=customer, kind="billing", is_default=True)  # the other kind is fine


def test_writes_invalidate_the_cached_detail(django_capture_on_commit_callbacks):
    customer = CustomerFactory(first_name="Old")
    assert selectors.customer_detail(customer_id=customer.id)["first_name"] == "Old"
    with django_capture_on_commit_callbacks(execute=True):
        services.customer_update(customer_id=customer.id, fields={"first_name": "New"})
    assert selectors.customer_detail(customer_id=customer.id)["first_name"] == "New"
    with django_capture_on_commit_callbacks(execute=True):
        services.address_create(customer_id=customer.id, kind="shipping", line1="1 A St",
                                city="Austin", country="US")
    assert len(selectors.customer_detail(customer_id=customer.id)["addresses"]) == 1


def test_ensure_and_bulk_create_are_rerunnable():
    fixed = "550e8400-e29b-41d4-a716-446655440098"
    _, created = services.customer_ensure(id=fixed, email="fixed@example.com", first_name="F")
    assert created
    _, created = services.customer_ensure(id=fixed, email="fixed@example.com", first_name="F")
    assert not created and Customer.objects.get(pk=fixed).version == 1
    rows = [{"id": f"00000000-0000-0000-0000-00000000000{i}", "email": f"b{i}@example.com"}
            for i in range(3)]
    assert services.customers_bulk_create(rows=rows) == 3
    assert services.customers_bulk_create(rows=rows) == 0
