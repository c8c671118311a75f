"""``/api/v1/customers`` and addresses: CRUD, ETags, validation, lists, scopes, caching."""

import pytest
from django.db import connection

from customers import selectors, services
from customers.models import Address, Customer
from customers.tests.factories import AddressFactory, CustomerFactory
from stateset.testing import data_of, error_of

pytestmark = pytest.mark.django_db
URL = "/api/v1/customers"


def address_body(**overrides):
    return {"kind": "shipping", "name": "Jane Doe", "line1": "1 Main Street", "city": "Austin",
            "region": "TX", "postal_code": "78701", "country": "us", **overrides}


# --- customers -----------------------------------------------------------------------------------


def test_create_returns_201_with_etag(api):
    response = api.post(URL, {"email": "Jane@Example.com", "first_name": "Jane", "last_name": "Doe",
                              "phone": "+1 (555) 010-0000", "metadata": {"tier": "gold"}},
                        format="json")
    data = data_of(response, 201)
    assert response["ETag"] == '"1"'
    assert data["email"] == "Jane@example.com" and data["metadata"] == {"tier": "gold"}
    assert data["addresses"] == [] and data["version"] == 1
    assert Customer.objects.filter(pk=data["id"]).exists()


def test_detail_includes_addresses_and_an_etag(api):
    customer = CustomerFactory()
    address = AddressFactory(customer=customer, is_default=True)
    response = api.get(f"{URL}/{customer.id}")
    data = data_of(response)
    assert response["ETag"] == '"1"'
    assert [a["id"] for a in data["addresses"]] == [str(address.id)]
    assert data["addresses"][0]["customer_id"] == str(customer.id)


@pytest.mark.parametrize("path", ["00000000-0000-0000-0000-000000000000", "nope"])
def test_unknown_customer_is_404(api, path):
    assert error_of(api.get(f"{URL}/{path}"), 404)["code"] == "customer_not_found"
    assert error_of(api.get(f"{URL}/{path}/addresses"), 404)["code"] == "customer_not_found"
    error_of(api.post(f"{URL}/{path}/addresses", address_body(), format="json"), 404)
    assert not Address.objects.exists()


@pytest.mark.parametrize("email", ["jane@example.com", "JANE@example.com", "Jane@EXAMPLE.com"])
def test_duplicate_email_in_any_case_is_409_and_writes_nothing(api, email):
    CustomerFactory(email="jane@example.com", first_name="Original")
    error = error_of(api.post(URL, {"email": email, "first_name": "Copy"}, format="json"), 409)
    assert error["code"] == "duplicate_email"
    assert list(Customer.objects.values_list("first_name", flat=True)) == ["Original"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"email": 12}, "email"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
        ({"email": "x@example.com", "first_name": "f" * 101}, "first_name"),
        ({"email": "x@example.com", "last_name": ["x"]}, "last_name"),
        ({"email": "x@example.com", "phone": "call me"}, "phone"),
        ({"email": "x@example.com", "phone": "1" * 40}, "phone"),
        ({"email": "x@example.com", "metadata": "text"}, "metadata"),
        ({"email": "x@example.com", "version": 3}, "version"),
        ({"first_name": "No email"}, "email"),
    ],
)
def test_invalid_customer_is_422_and_writes_nothing(api, body, field):
    error = error_of(api.post(URL, body, format="json"), 422)
    assert field in error["details"]
    assert not Customer.objects.exists()


def test_patch_with_if_match(api):
    customer = CustomerFactory(first_name="Old")
    response = api.patch(f"{URL}/{customer.id}", {"first_name": "New"}, format="json",
                         HTTP_IF_MATCH='"1"')
    assert data_of(response)["first_name"] == "New" and response["ETag"] == '"2"'
    error = error_of(api.patch(f"{URL}/{customer.id}", {"first_name": "Stale"}, format="json",
                               HTTP_IF_MATCH='"1"'), 412)
    assert error["code"] == "precondition_failed"
    customer.refresh_from_db()
    assert (customer.first_name, customer.version) == ("New", 2)


def test_patch_to_a_taken_email_is_409_and_changes_nothing(api):
    CustomerFactory(email="taken@example.com")
    customer = CustomerFactory(first_name="Kept")
    error = error_of(api.patch(f"{URL}/{customer.id}",
                               {"email": "TAKEN@example.com", "first_name": "X"},
                               format="json"), 409)
    assert error["code"] == "duplicate_email"
    customer.refresh_from_db()
    assert (customer.first_name, customer.version) == ("Kept", 1)


def test_patch_rejects_bad_fields_and_empty_bodies(api):
    customer = CustomerFactory()
    for body in ({"email": "bad"}, {"id": "x"}, {}, []):
        assert api.patch(f"{URL}/{customer.id}", body, format="json").status_code == 422, body
    customer.refresh_from_db()
    assert customer.version == 1


def test_get_after_patch_shows_the_new_value(api, django_capture_on_commit_callbacks):
    customer = CustomerFactory(last_name="Before")
    assert data_of(api.get(f"{URL}/{customer.id}"))["last_name"] == "Before"  # cached
    with django_capture_on_commit_callbacks(execute=True):
        data_of(api.patch(f"{URL}/{customer.id}", {"last_name": "After"}, format="json"))
    response = api.get(f"{URL}/{customer.id}")
    assert data_of(response)["last_name"] == "After" and response["ETag"] == '"2"'


def test_patch_answers_the_new_state_even_when_the_detail_was_cached(api):
    customer = CustomerFactory(last_name="Before")
    data_of(api.get(f"{URL}/{customer.id}"))
    assert data_of(api.patch(f"{URL}/{customer.id}", {"last_name": "After"},
                             format="json"))["last_name"] == "After"


# --- lists ---------------------------------------------------------------------------------------


def test_list_items_match_the_detail_without_addresses(api):
    customer = CustomerFactory()
    page = data_of(api.get(URL))
    detail = data_of(api.get(f"{URL}/{customer.id}"))
    detail.pop("addresses")
    assert page["items"] == [detail]
    assert page["total"] == 1 and page["next_cursor"] is None


def test_list_filters_by_email_and_search(api):
    CustomerFactory(email="olivia.smith@example.com", first_name="Olivia", last_name="Smith")
    CustomerFactory(email="liam.jones@example.org", first_name="Liam", last_name="Jones")
    CustomerFactory(email="o.brien@example.net", first_name="Sean", last_name="O'Brien")

    def emails(query):
        return sorted(item["email"] for item in data_of(api.get(URL, query))["items"])

    assert emails({"email": "OLIVIA.SMITH@example.com"}) == ["olivia.smith@example.com"]
    assert emails({"search": "oli"}) == ["olivia.smith@example.com"]
    assert emails({"search": "o"}) == ["o.brien@example.net", "olivia.smith@example.com"]
    assert emails({"search": "JON"}) == ["liam.jones@example.org"]
    assert emails({"search": "liam j"}) == ["liam.jones@example.org"]
    assert emails({"search": "liam.jones@"}) == ["liam.jones@example.org"]
    assert emails({"search": "o'br"}) == ["o.brien@example.net"]
    assert emails({"search": "100%_"}) == []


@pytest.mark.parametrize("query", [{"colour": "x"}, {"sort_by": "first_name"}, {"limit": 1000},
                                   {"search": "x" * 101}, {"email": "nul\x00"}])
def test_bad_list_parameters_are_422(api, query):
    assert error_of(api.get(URL, query), 422)["code"] == "invalid_parameter"


def test_sort_by_email_with_cursor_pages(api):
    for index in (3, 1, 4, 0, 2):
        CustomerFactory(email=f"user{index}@example.com")
    seen, cursor = [], None
    while True:
        query = {"sort_by": "email", "sort_order": "asc", "limit": 2,
                 **({"cursor": cursor} if cursor else {})}
        page = data_of(api.get(URL, query))
        seen += [item["email"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"user{i}@example.com" for i in range(5)]


@pytest.mark.parametrize("rows", [1, 50])
def test_list_query_count_is_fixed(api, django_assert_num_queries, rows):
    CustomerFactory.create_batch(rows, last_name="Jones")
    data_of(api.get(URL))  # authenticates the key once
    with django_assert_num_queries(1):  # the whole result fits the page: no count
        page = data_of(api.get(URL, {"limit": 100, "search": "jon", "sort_by": "email"}))
    assert len(page["items"]) == rows


def test_search_uses_the_prefix_indexes():
    services.customers_bulk_create(rows=[
        {"id": f"00000000-0000-0000-0000-{i:012d}", "email": f"user{i}@example.com",
         "first_name": f"First{i}", "last_name": f"Last{i}"} for i in range(5000)
    ])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
    plan = selectors.customer_list(filters={"search": "user4999"}).explain()
    assert "customer_email_prefix_idx" in plan, plan
    plan = selectors.customer_list(filters={"search": "first12 last1"}).explain()
    assert "customer_first_prefix_idx" in plan and "customer_last_prefix_idx" in plan, plan


# --- addresses -----------------------------------------------------------------------------------


def test_create_address_upper_cases_the_country_and_defaults_the_first(api):
    customer = CustomerFactory()
    data = data_of(api.post(f"{URL}/{customer.id}/addresses", address_body(), format="json"), 201)
    assert data["country"] == "US" and data["is_default"] is True and data["kind"] == "shipping"
    assert data["customer_id"] == str(customer.id)


def test_a_new_default_address_undefaults_the_previous_one(api):
    customer = CustomerFactory()
    first = data_of(api.post(f"{URL}/{customer.id}/addresses", address_body(), format="json"), 201)
    second = data_of(api.post(f"{URL}/{customer.id}/addresses",
                              address_body(line1="2 Side St", is_default=True), format="json"), 201)
    defaults = list(Address.objects.filter(customer=customer, is_default=True).values_list("id",
                                                                                           flat=True))
    assert [str(pk) for pk in defaults] == [second["id"]]
    listed = data_of(api.get(f"{URL}/{customer.id}/addresses"))["items"]
    assert [(a["id"], a["is_default"]) for a in listed] == [(first["id"], False),
                                                            (second["id"], True)]


def test_address_writes_move_the_customer_etag(api, django_capture_on_commit_callbacks):
    customer = CustomerFactory()
    assert api.get(f"{URL}/{customer.id}")["ETag"] == '"1"'
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"{URL}/{customer.id}/addresses", address_body(), format="json")
    response = api.get(f"{URL}/{customer.id}")
    assert response["ETag"] == '"2"' and len(data_of(response)["addresses"]) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"kind": "pickup"}, "kind"),
        ({"kind": None}, "kind"),
        ({"country": "USA"}, "country"),
        ({"country": "U"}, "country"),
        ({"country": "ZZ"}, "country"),
        ({"country": "1A"}, "country"),
        ({"country": 12}, "country"),
        ({"line1": ""}, "line1"),
        ({"line1": "l" * 201}, "line1"),
        ({"city": "c" * 101}, "city"),
        ({"postal_code": "p" * 21}, "postal_code"),
        ({"is_default": "sometimes"}, "is_default"),
        ({"customer_id": "00000000-0000-0000-0000-000000000000"}, "customer_id"),
    ],
)
def test_invalid_address_is_422_and_writes_nothing(api, overrides, field):
    customer = CustomerFactory()
    error = error_of(api.post(f"{URL}/{customer.id}/addresses", address_body(**overrides),
                              format="json"), 422)
    assert field in error["details"]
    assert not Address.objects.exists()
    customer.refresh_from_db()
    assert customer.version == 1


def test_missing_address_fields_are_422(api):
    customer = CustomerFactory()
    error = error_of(api.post(f"{URL}/{customer.id}/addresses", {"kind": "billing"}, format="json"),
                     422)
    assert {"line1", "city", "country"} <= set(error["details"])


def test_address_list_filters(api):
    customer = CustomerFactory()
    AddressFactory(customer=customer, kind="shipping", is_default=True)
    AddressFactory(customer=customer, kind="billing")
    AddressFactory()  # someone else's
    assert len(data_of(api.get(f"{URL}/{customer.id}/addresses"))["items"]) == 2
    kinds = data_of(api.get(f"{URL}/{customer.id}/addresses", {"kind": "billing"}))["items"]
    assert [a["kind"] for a in kinds] == ["billing"]
    defaults = data_of(api.get(f"{URL}/{customer.id}/addresses", {"is_default": "true"}))["items"]
    assert [a["kind"] for a in defaults] == ["shipping"]
    error_of(api.get(f"{URL}/{customer.id}/addresses", {"kind": "pickup"}), 422)


@pytest.mark.parametrize("rows", [1, 50])
def test_address_list_query_count_is_fixed(api, django_assert_num_queries, rows):
    customer = CustomerFactory()
    AddressFactory.create_batch(rows, customer=customer)
    data_of(api.get(URL))
    with django_assert_num_queries(2):  # customer exists, page (it holds them all: no count)
        page = data_of(api.get(f"{URL}/{customer.id}/addresses", {"limit": 100}))
    assert len(page["items"]) == rows


# --- scopes --------------------------------------------------------------------------------------


def test_read_key_cannot_write(client_with):
    reader = client_with("customers:read")
    customer = CustomerFactory(first_name="Kept")
    assert reader.get(URL).status_code == 200
    assert reader.get(f"{URL}/{customer.id}/addresses").status_code == 200
    assert error_of(reader.post(URL, {"email": "new@example.com"}, format="json"),
                    403)["code"] == "insufficient_scope"
    error_of(reader.patch(f"{URL}/{customer.id}", {"first_name": "x"}, format="json"), 403)
    error_of(reader.post(f"{URL}/{customer.id}/addresses", address_body(), format="json"), 403)
    assert Customer.objects.count() == 1 and not Address.objects.exists()


def test_catalog_keys_do_not_reach_customers(client_with):
    assert error_of(client_with("catalog:*").get(URL), 403)["code"] == "insufficient_scope"


def test_address_post_is_idempotent_with_a_key(api):
    customer = CustomerFactory()
    url = f"{URL}/{customer.id}/addresses"
    first = api.post(url, address_body(), format="json", HTTP_IDEMPOTENCY_KEY="addr-1")
    second = api.post(url, address_body(), format="json", HTTP_IDEMPOTENCY_KEY="addr-1")
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert Address.objects.count() == 1


def test_the_documented_shapes_match_what_is_rendered(api):
    from customers.api import CustomerAddressOut, CustomerListItemOut, CustomerOut

    customer = CustomerFactory()
    AddressFactory(customer=customer)
    detail = data_of(api.get(f"{URL}/{customer.id}"))
    assert set(CustomerOut().fields) == set(detail)
    assert set(CustomerAddressOut().fields) == set(detail["addresses"][0])
    assert set(CustomerListItemOut().fields) == set(data_of(api.get(URL))["items"][0])
