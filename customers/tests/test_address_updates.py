"""``PATCH``/``PUT``/``DELETE /customers/{id}/addresses/{address_id}`` (SPEC §4.2), ``PUT`` on a
customer, and the ``customer.*`` events: the default-address rules, ETags, 404 for another
customer's address, nothing written on any error."""

import json

import pytest

from customers import selectors
from customers.models import Address, Customer
from customers.tests.factories import AddressFactory, CustomerFactory
from stateset.testing import data_of, error_of
from webhooks.models import Event

pytestmark = pytest.mark.django_db
URL = "/api/v1/customers"


def address_url(address, customer=None):
    return f"{URL}/{(customer or address.customer).id}/addresses/{address.id}"


def snapshot():
    """Every customer, address and event row, as one string: compared before and after an error."""
    return json.dumps([list(Customer.objects.order_by("pk").values()),
                       list(Address.objects.order_by("pk").values()),
                       list(Event.objects.order_by("pk").values())], default=str)


def events(kind="customer.updated"):
    return [event.payload for event in Event.objects.filter(type=kind).order_by("created_at")]


def defaults(customer, kind="shipping"):
    return list(Address.objects.filter(customer=customer, kind=kind,
                                       is_default=True).values_list("pk", flat=True))


@pytest.fixture
def customer():
    return CustomerFactory()


@pytest.fixture
def home(customer):
    return AddressFactory(customer=customer, kind="shipping", is_default=True, line1="1 Home St")


@pytest.fixture
def work(customer):
    return AddressFactory(customer=customer, kind="shipping", is_default=False, line1="2 Work Ave")


# --- PATCH / PUT ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["patch", "put"])
def test_update_changes_only_the_fields_sent_and_moves_both_etags(api, customer, home, method,
                                                                   django_capture_on_commit_callbacks):
    cached = data_of(api.get(f"{URL}/{customer.id}"))  # the customer's detail is now cached
    assert cached["addresses"][0]["line1"] == "1 Home St"
    with django_capture_on_commit_callbacks(execute=True):
        response = getattr(api, method)(address_url(home),
                                        {"line1": "10 New Road", "country": "gb"},
                                        format="json", HTTP_IF_MATCH='"1"')
    data = data_of(response)
    assert response["ETag"] == '"2"' and data["version"] == 2
    assert (data["line1"], data["country"], data["city"], data["is_default"]) == ("10 New Road",
                                                                                  "GB", "Austin",
                                                                                  True)
    home.refresh_from_db()
    assert (home.line1, home.version) == ("10 New Road", 2)
    detail = api.get(f"{URL}/{customer.id}")
    assert detail["ETag"] == '"2"'  # the customer's version moved too
    # the cached detail was dropped
    assert data_of(detail)["addresses"][0]["line1"] == "10 New Road"
    assert events() == [{"customer_id": str(customer.id), "email": customer.email, "version": 2,
                         "changed": ["addresses"], "address_id": str(home.id),
                         "address_change": "updated"}]


def test_making_an_address_default_unsets_the_other_in_the_same_change(api, customer, home, work):
    billing = AddressFactory(customer=customer, kind="billing", is_default=True)
    data = data_of(api.patch(address_url(work), {"is_default": True}, format="json"))
    assert data["is_default"] is True
    assert defaults(customer) == [work.id]
    assert defaults(customer, "billing") == [billing.id]  # the other kind is untouched
    home.refresh_from_db()
    assert (home.is_default, home.version) == (False, 2)  # its representation changed: new ETag
    assert len(events()) == 1


def test_unsetting_the_default_leaves_the_kind_without_one(api, customer, home, work):
    data_of(api.patch(address_url(home), {"is_default": False}, format="json"))
    assert defaults(customer) == []
    work.refresh_from_db()
    assert work.is_default is False


def test_moving_the_default_to_another_kind(api, customer, home):
    old_billing = AddressFactory(customer=customer, kind="billing", is_default=True)
    data = data_of(api.patch(address_url(home), {"kind": "billing"}, format="json"))
    assert (data["kind"], data["is_default"]) == ("billing", True)
    assert defaults(customer, "billing") == [home.id]
    assert defaults(customer, "shipping") == []
    old_billing.refresh_from_db()
    assert old_billing.is_default is False


def test_get_address_has_its_etag_and_if_none_match(api, home):
    response = api.get(address_url(home))
    assert data_of(response)["id"] == str(home.id) and response["ETag"] == '"1"'
    assert api.get(address_url(home), HTTP_IF_NONE_MATCH='"1"').status_code == 304


# --- DELETE ---------------------------------------------------------------------------------------


def test_deleting_the_default_leaves_the_kind_without_one(api, customer, home, work,
                                                          django_capture_on_commit_callbacks):
    data_of(api.get(f"{URL}/{customer.id}"))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(address_url(home), HTTP_IF_MATCH='"1"')
    assert response.status_code == 204
    assert not Address.objects.filter(pk=home.pk).exists()
    assert defaults(customer) == []  # the other address is not promoted
    detail = api.get(f"{URL}/{customer.id}")
    assert detail["ETag"] == '"2"'
    assert [a["id"] for a in data_of(detail)["addresses"]] == [str(work.id)]
    assert [(e["address_id"], e["address_change"]) for e in events()] == [(str(home.id), "deleted")]
    assert error_of(api.delete(address_url(home)), 404)["code"] == "address_not_found"


# --- errors write nothing -------------------------------------------------------------------------


def test_another_customers_address_is_404_and_nothing_is_written(api, customer, home):
    other = CustomerFactory()
    before = snapshot()
    for response in (api.get(address_url(home, other)),
                     api.patch(address_url(home, other), {"city": "Paris"}, format="json"),
                     api.put(address_url(home, other), {"city": "Paris"}, format="json"),
                     api.delete(address_url(home, other))):
        assert error_of(response, 404)["code"] == "address_not_found"
    assert snapshot() == before


@pytest.mark.parametrize("path", ["00000000-0000-0000-0000-000000000000", "nope"])
def test_unknown_customer_or_address_is_404_and_nothing_is_written(api, customer, home, path):
    before = snapshot()
    assert error_of(api.patch(f"{URL}/{path}/addresses/{home.id}", {"city": "X"}, format="json"),
                    404)["code"] == "customer_not_found"
    assert error_of(api.patch(f"{URL}/{customer.id}/addresses/{path}", {"city": "X"},
                              format="json"),
                    404)["code"] == "address_not_found"
    assert error_of(api.delete(f"{URL}/{customer.id}/addresses/{path}"),
                    404)["code"] == "address_not_found"
    assert snapshot() == before


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_a_stale_if_match_is_412_and_nothing_is_written(api, home, method):
    api.patch(address_url(home), {"city": "Dallas"}, format="json")  # version 2 now
    before = snapshot()
    response = getattr(api, method)(address_url(home), {"city": "Paris"}, format="json",
                                    HTTP_IF_MATCH='"1"')
    error = error_of(response, 412)
    assert error["code"] == "precondition_failed" and error["details"]["current_version"] == 2
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"country": "XX"}, "country"),
        ({"country": 12}, "country"),
        ({"kind": "pickup"}, "kind"),
        ({"line1": ""}, "line1"),
        ({"city": "x" * 101}, "city"),
        ({"phone": "call me"}, "phone"),
        ({"is_default": None}, "is_default"),
        ({"is_default": "yes please"}, "is_default"),
        ({"is_default": "true"}, "is_default"),
        ({"is_default": 1}, "is_default"),
        ({"customer_id": "00000000-0000-0000-0000-000000000000"}, "customer_id"),
        ({"version": 7}, "version"),
        ({"line2": "a\u0000b"}, "line2"),
    ],
)
def test_invalid_update_is_422_and_nothing_is_written(api, home, body, field):
    before = snapshot()
    error = error_of(api.patch(address_url(home), body, format="json"), 422)
    assert field in error["details"]
    assert snapshot() == before


def test_an_empty_update_is_422(api, home):
    before = snapshot()
    assert error_of(api.patch(address_url(home), {}, format="json"), 422)["code"] == "empty_update"
    assert snapshot() == before


def test_read_key_cannot_change_or_delete_an_address(client_with, home):
    reader = client_with("customers:read")
    assert data_of(reader.get(address_url(home)))["id"] == str(home.id)
    before = snapshot()
    assert error_of(reader.patch(address_url(home), {"city": "X"}, format="json"),
                    403)["code"] == "insufficient_scope"
    assert error_of(reader.delete(address_url(home)), 403)["code"] == "insufficient_scope"
    assert snapshot() == before


# --- PUT on the customer, and the customer events -------------------------------------------------


def test_put_on_a_customer_is_patch(api, customer):
    response = api.put(f"{URL}/{customer.id}", {"first_name": "Put"}, format="json",
                       HTTP_IF_MATCH='"1"')
    data = data_of(response)
    assert (data["first_name"], data["last_name"], data["version"]) == ("Put", customer.last_name,
                                                                        2)
    assert events() == [{"customer_id": str(customer.id), "email": customer.email, "version": 2,
                         "changed": ["first_name"]}]
    before = snapshot()
    error_of(api.put(f"{URL}/{customer.id}", {"first_name": "Late"}, format="json",
                     HTTP_IF_MATCH='"1"'), 412)
    error_of(api.put(f"{URL}/{customer.id}", {"email": "not-an-email"}, format="json"), 422)
    assert snapshot() == before


def test_customer_created_is_published_once_and_a_failed_create_publishes_nothing(api):
    data = data_of(api.post(URL, {"email": "new@example.com", "first_name": "New"}, format="json"),
                   201)
    assert events("customer.created") == [{"customer_id": data["id"], "email": "new@example.com",
                                           "first_name": "New", "last_name": ""}]
    before = snapshot()
    error_of(api.post(URL, {"email": "NEW@example.com"}, format="json"), 409)
    assert snapshot() == before


def test_address_create_publishes_customer_updated(api, customer):
    data = data_of(api.post(f"{URL}/{customer.id}/addresses", {"kind": "billing", "line1": "1 A St",
                                                               "city": "Austin", "country": "US"},
                            format="json"), 201)
    assert data["version"] == 1
    assert [(e["address_id"], e["address_change"]) for e in events()] == [(data["id"], "created")]


def test_customer_detail_caches_under_the_current_shape(api, customer, home):
    data_of(api.get(f"{URL}/{customer.id}"))
    assert selectors.detail_key(customer.id).startswith("customers:v2:")
    assert set(data_of(api.get(f"{URL}/{customer.id}"))["addresses"][0]) >= {"version",
                                                                             "updated_at"}
