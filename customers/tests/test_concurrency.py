"""Races real threads can cause: one email, one default address per kind."""


import pytest
from rest_framework.test import APIClient

from customers.models import Address, Customer
from customers.tests.factories import CustomerFactory
from stateset.testing import run_threads_cleanly

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 8


def test_concurrent_signups_with_one_email_create_one_customer(make_key):
    key = make_key("customers:write")

    def sign_up(index):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=key)
        email = "race@example.com" if index % 2 else "RACE@Example.com"
        response = client.post("/api/v1/customers", {"email": email, "first_name": f"n{index}"},
                               format="json")
        return response.status_code, response.json().get("error", {}).get("code")

    results = run_threads_cleanly(THREADS, sign_up)
    assert sorted(results,
                  key=str) == sorted([(201, None)] + [(409, "duplicate_email")] * (THREADS - 1),
                                     key=str)
    assert Customer.objects.filter(email__iexact="race@example.com").count() == 1


def test_concurrent_default_addresses_leave_exactly_one_default(make_key):
    customer = CustomerFactory()
    key = make_key("customers:write")

    def add_default(index):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=key)
        response = client.post(f"/api/v1/customers/{customer.id}/addresses", {
            "kind": "shipping", "line1": f"{index} Race St", "city": "Austin", "country": "US",
            "is_default": True,
        }, format="json")
        return response.status_code

    assert run_threads_cleanly(THREADS, add_default) == [201] * THREADS
    assert Address.objects.filter(customer=customer).count() == THREADS
    assert Address.objects.filter(customer=customer, kind="shipping", is_default=True).count() == 1
    customer.refresh_from_db()
    assert customer.version == 1 + THREADS


def test_concurrent_updates_to_default_leave_exactly_one_default(make_key):
    customer = CustomerFactory()
    addresses = [Address.objects.create(customer=customer, kind="shipping", line1=f"{i} Race St",
                                        city="Austin",
                                        country="US", is_default=i == 0) for i in range(THREADS)]
    key = make_key("customers:write")

    def make_default(index):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=key)
        method = client.patch if index % 2 else client.put
        response = method(f"/api/v1/customers/{customer.id}/addresses/{addresses[index].id}",
                          {"is_default": True}, format="json")
        return response.status_code

    assert run_threads_cleanly(THREADS, make_default) == [200] * THREADS
    assert Address.objects.filter(customer=customer, kind="shipping", is_default=True).count() == 1
    customer.refresh_from_db()
    assert customer.version == 1 + THREADS


def test_concurrent_delete_and_update_of_one_address_never_500(make_key):
    customer = CustomerFactory()
    address = Address.objects.create(customer=customer, kind="shipping", line1="1 Race St",
                                     city="Austin", country="US", is_default=True)
    key = make_key("customers:write")
    url = f"/api/v1/customers/{customer.id}/addresses/{address.id}"

    def work(index):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=key)
        if index == 0:
            return client.delete(url).status_code
        return client.patch(url, {"city": f"City {index}"}, format="json").status_code

    results = run_threads_cleanly(THREADS, work)
    assert results[0] == 204 and set(results[1:]) <= {200, 404}
    assert not Address.objects.filter(pk=address.pk).exists()
