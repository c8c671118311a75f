"""Customers imports: fields, default addresses, re-imports."""

import pytest

from customers import services
from customers.models import Address, Customer

from .helpers import triples

pytestmark = pytest.mark.django_db

HEADER = (
    "email,first_name,last_name,phone,shipping_line1,shipping_city,shipping_postal_code,shipping_country,"
          "billing_line1,billing_city,billing_country\n")


def addresses(email: str) -> list[tuple]:
    return list(Address.objects.filter(customer__email__iexact=email).order_by("kind")
                .values_list("kind", "line1", "city", "region", "postal_code", "country",
                             "is_default"))


def test_customers_with_default_addresses_are_created_changed_and_left_alone(run_import):
    existing = services.customer_create(email="ann@example.com", first_name="Ann", last_name="Old")
    services.address_create(customer_id=existing.id, kind="shipping", line1="1 Old St",
                            city="Paris", region="IDF", country="FR", postal_code="75001")
    kept = services.customer_create(email="kim@example.com", first_name="Kim")
    body = HEADER + (
        "new@example.com,New,Person,+1 555 0100,5 Main St,New York,10001,us,,,\n"
        "ANN@example.com,Ann,New,,2 New St,Lyon,,FR,9 Bill Rd,Lyon,FR\n"
        "kim@example.com,Kim,,,,,,,,,\n"
        "broken,X,,,,,,,,,\n"
        "bad@example.com,Bad,,+1 555 0199 ext. 4,1 St,Rome,,ZZ,,,\n"
        "half@example.com,Half,,,1 Half St,,,,,,\n"
    )
    result = run_import(body, kind="customers")
    assert (result["created"], result["updated"], result["unchanged"], result["failed"]) == (1, 1,
                                                                                             1, 3)
    assert triples(result) == [(4, "email", "invalid_email"), (5, "phone", "invalid_phone"),
                               (5, "shipping_country", "invalid_country"),
                               (6, "shipping_city", "required"),
                               (6, "shipping_country", "required")]
    new = Customer.objects.get(email="new@example.com")
    assert (new.first_name, new.last_name, new.phone) == ("New", "Person", "+1 555 0100")
    assert addresses("new@example.com") == [("shipping", "5 Main St", "New York", "", "10001", "US",
                                             True)]
    existing.refresh_from_db()
    # 2 after the address it had, then the import
    assert (existing.last_name, existing.version) == ("New", 3)
    # The default shipping address changed in place (an empty cell blanks its field, a column the
    # file lacks keeps it), and a default billing address was added.
    assert addresses("ann@example.com") == [("billing", "9 Bill Rd", "Lyon", "", "", "FR", True),
                                            ("shipping", "2 New St", "Lyon", "IDF", "", "FR", True)]
    assert Address.objects.filter(customer=existing).count() == 2
    kept.refresh_from_db()
    assert kept.version == 1
    assert not Customer.objects.filter(email__in=["broken", "bad@example.com",
                                                  "half@example.com"]).exists()


def test_reimporting_customers_changes_nothing(run_import):
    body = (
        HEADER + "a@example.com,A,B,,1 St,Oslo,0150,NO,,,\n"
        "c@example.com,C,,,,,,,2 Bill St,Bergen,NO\n")
    run_import(body, kind="customers")
    state = list(Customer.objects.order_by("email").values_list("email", "version", "updated_at"))
    again = run_import(body, kind="customers")
    assert (again["unchanged"], again["updated"], again["created"]) == (2, 0, 0)
    assert list(Customer.objects.order_by("email").values_list("email", "version",
                                                               "updated_at")) == state


def test_an_email_repeated_in_any_case_and_mode_create(run_import):
    services.customer_create(email="old@example.com")
    body = "email,first_name\nold@example.com,Old\nx@example.com,X\nX@Example.com,Again\n"
    result = run_import(body, kind="customers", mode="create")
    assert triples(result) == [(1, "email", "already_exists"), (3, "email", "duplicate_in_file")]
    assert Customer.objects.get(email="x@example.com").first_name == "X"
    assert Customer.objects.get(email="old@example.com").first_name == ""


def test_a_dry_run_of_customers_writes_nothing(run_import):
    services.customer_create(email="ann@example.com", first_name="Ann")
    before = list(Customer.objects.values_list("email", "first_name", "version"))
    result = run_import(
        HEADER + "ann@example.com,Anne,,,1 St,Oslo,,NO,,,\nz@example.com,Z,,,,,,,,,\n",
                        kind="customers", dry_run="true")
    assert (result["updated"], result["created"]) == (1, 1)
    assert list(Customer.objects.values_list("email", "first_name", "version")) == before
    assert not Address.objects.exists()
