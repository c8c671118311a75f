"""SPEC §3/§10 at the platform level: what the database refuses is the client's 422, not a 503;
crafted cursors, very long paths and NUL characters never reach it as a failure; a chunked body is
read, not silently taken as empty."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Callable

import orjson
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import InterfaceError, OperationalError
from django.test.client import RequestFactory

from customers.models import Customer
from stateset.api.errors import exception_to_payload
from stateset.models import ApiKey, IdempotencyRecord
from stateset.pagination import ListParams, Sort, paginate
from stateset.testing import data_of, error_of

pytestmark = [pytest.mark.django_db, pytest.mark.urls("stateset.tests.urls")]
RAW = "/api/v1/_test/raw"


@pytest.mark.parametrize("column, value", [
    ("rate_limit", "x" * 33),  # value too long for varchar(32)
    ("name", "nul\u0000inside"),  # psycopg refuses NUL in text
    ("response_status", 70000),  # smallint out of range
    ("response_body", {"note": "nul \u0000 in json"}),  # jsonb refuses \u0000
])
def test_a_value_the_database_refuses_is_422_invalid_value_naming_the_field(api, column, value):
    error = error_of(api.post(RAW, {"column": column, "value": value}, format="json"), 422)
    assert error["code"] == "invalid_value"
    assert list(error["details"]) == [column], error
    assert not ApiKey.objects.filter(name="raw").exists()
    assert not IdempotencyRecord.objects.filter(owner="raw").exists()


def test_an_overflowing_order_total_is_422_naming_the_field(api):
    from catalog.models import Product
    from inventory import services as inventory_services

    customer = Customer.objects.create(email="big@example.com")
    product = Product.objects.create(sku="BIG-1", name="Big", price="9999999999.99")
    location = inventory_services.location_create(code="MAIN", name="Main", priority=0)
    inventory_services.stock_receive(product_id=product.id, location_id=location.id,
                                     quantity=100_000, reason="test")
    response = api.post("/api/v1/orders", {"customer_id": str(customer.id), "items": [
        {"product_id": str(product.id), "quantity": 99_999}]}, format="json")
    assert response.status_code == 422, response.content
    error = error_of(response, 422)
    assert error["code"] in ("invalid_value", "validation_error")
    from orders.models import Order

    assert not Order.objects.exists()


@pytest.mark.parametrize("exc",
                         [OperationalError("server closed the connection"), InterfaceError("gone")])
def test_an_unavailable_database_is_still_503(exc):
    status, payload, _ = exception_to_payload(exc)
    assert (status, payload["code"]) == (503, "service_unavailable")


def cursor_of(value) -> str:
    import json

    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


CRAFTED = [
    "!!!not-base64!!!",
    "A" * 513,
    cursor_of({"a": 1}),
    cursor_of([1, 2, 3]),
    cursor_of([[[[["deep"]]]], str(uuid.uuid4())]),
    cursor_of(["nul\u0000@example.com", str(uuid.uuid4())]),
    cursor_of(["x" * 1200, str(uuid.uuid4())]),
    cursor_of(["a@example.com", "not-a-uuid"]),
    cursor_of(["a@example.com", 10**40]),
    cursor_of(["a@example.com", True]),
    cursor_of([None, str(uuid.uuid4())]),  # email is NOT NULL: no row has it
    base64.urlsafe_b64encode(b"\xff\xfe garbage").decode(),
]


@pytest.mark.parametrize("cursor", CRAFTED)
def test_a_crafted_cursor_is_422_invalid_cursor(api, cursor):
    Customer.objects.create(email="a@example.com")
    response = api.get("/api/v1/customers", {"cursor": cursor, "sort_by": "email"})
    assert error_of(response, 422)["code"] in ("invalid_cursor", "invalid_parameter")


@pytest.mark.parametrize("cursor", CRAFTED[2:])
def test_the_pagination_core_refuses_crafted_cursors_itself(cursor):
    from stateset.errors import ValidationFailed

    params = ListParams(page=1, limit=10, cursor=cursor, sort=Sort("email", False), filters={})
    with pytest.raises(ValidationFailed) as refused:
        paginate(Customer.objects.all(), params, render=list)
    assert refused.value.code == "invalid_cursor"


@pytest.mark.parametrize("value", [10**30, -(10**30), 1e308, "99999-01-01"])
def test_crafted_sort_values_for_numbers_and_dates_are_refused(value):
    from inventory.models import Location
    from stateset.errors import ValidationFailed

    for field in ("priority", "created_at"):
        params = ListParams(page=1, limit=10, cursor=cursor_of([value, str(uuid.uuid4())]),
                            sort=Sort(field, True), filters={})
        with pytest.raises(ValidationFailed):
            paginate(Location.objects.all(), params, render=list)


def test_a_cursor_this_module_wrote_still_works(api):
    for n in range(3):
        Customer.objects.create(email=f"c{n}@example.com")
    first = data_of(api.get("/api/v1/customers",
                            {"limit": 2, "sort_by": "email", "sort_order": "asc"}))
    rest = data_of(api.get("/api/v1/customers",
                           {"limit": 2, "sort_by": "email", "sort_order": "asc",
                                                 "cursor": first["next_cursor"]}))
    assert [c["email"] for c in first["items"] + rest["items"]] == [f"c{n}@example.com"
                                                                    for n in range(3)]


@pytest.mark.parametrize("other", [{"sort_by": "created_at", "sort_order": "asc"},
                                   {"sort_by": "email", "sort_order": "desc"}])
def test_a_cursor_passed_to_the_list_in_another_order_is_422(api, other):
    for n in range(3):
        Customer.objects.create(email=f"c{n}@example.com")
    first = data_of(api.get("/api/v1/customers",
                            {"limit": 2, "sort_by": "email", "sort_order": "asc"}))
    response = api.get("/api/v1/customers", {"limit": 2, **other, "cursor": first["next_cursor"]})
    assert error_of(response, 422)["code"] == "invalid_cursor"


def test_a_very_long_path_with_an_idempotency_key_is_stored_bounded_and_replayed(api):
    long_id = "x" * 3000
    path = f"/api/v1/orders/{long_id}/cancel"
    first = api.post(path, {}, format="json", HTTP_IDEMPOTENCY_KEY="long-path")
    assert first.status_code == 404, first.content
    record = IdempotencyRecord.objects.get(key="long-path")
    assert len(record.path) <= 512 and record.path.startswith("/api/v1/orders/xxx")
    again = api.post(path, {}, format="json", HTTP_IDEMPOTENCY_KEY="long-path")
    assert again.status_code == 404 and again["Idempotent-Replayed"] == "true"
    # Same prefix, another path: the hash tells them apart.
    other = api.post(f"/api/v1/orders/{long_id}y/cancel", {}, format="json",
                     HTTP_IDEMPOTENCY_KEY="long-path")
    assert error_of(other, 422)["code"] == "idempotency_key_reused"


def test_a_nul_in_the_path_or_the_key_never_breaks_the_insert(api):
    response = api.post("/api/v1/orders/a%00b/cancel", {}, format="json",
                        HTTP_IDEMPOTENCY_KEY="nul-path")
    assert response.status_code == 404, response.content
    assert IdempotencyRecord.objects.get(key="nul-path").path.isprintable()
    bad_key = api.post("/api/v1/_test/things", {"name": "k"}, format="json",
                       HTTP_IDEMPOTENCY_KEY="a\x00b")
    assert error_of(bad_key, 422)["code"] == "invalid_idempotency_key"
    assert not ApiKey.objects.filter(name="k").exists()


# --- chunked bodies, through the WSGI handler -----------------------------------------------------


def wsgi_post(path: str, body: bytes, *, terminated: bool = True, **headers) -> tuple[int, bytes]:
    base_environ = RequestFactory()._base_environ  # type: ignore[attr-defined]
    environ = base_environ(PATH_INFO=path, REQUEST_METHOD="POST", CONTENT_TYPE="application/json",
                           HTTP_TRANSFER_ENCODING="chunked", **headers)
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = io.BytesIO(body)
    if terminated:
        environ["wsgi.input_terminated"] = True
    status: list[str] = []
    def start_response(code: str, headers: object, exc_info: object = None) -> Callable[[bytes],
                                                                                        object]:
        status.append(code)
        return lambda chunk: None

    chunks = WSGIHandler()(environ, start_response)
    return int(status[0].split()[0]), b"".join(chunks)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_is_read_not_taken_as_empty(make_key):
    key = make_key("*")
    status, body = wsgi_post("/api/v1/_test/things", b'{"name": "chunky"}', HTTP_X_API_KEY=key)
    assert status == 201, body
    assert orjson.loads(body)["data"]["name"] == "chunky"
    assert ApiKey.objects.filter(name="chunky").exists()


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_over_the_limit_is_413_and_writes_nothing(make_key, settings):
    settings.API_MAX_BODY_BYTES = 1024
    key = make_key("*")
    status, body = wsgi_post("/api/v1/_test/things", b'{"name": "' + b"x" * 2000 + b'"}',
                             HTTP_X_API_KEY=key)
    assert status == 413 and orjson.loads(body)["error"]["code"] == "payload_too_large"
    assert ApiKey.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_the_server_did_not_decode_is_411(make_key):
    key = make_key("*")
    status, body = wsgi_post("/api/v1/_test/things", b'{"name": "raw"}', terminated=False,
                             HTTP_X_API_KEY=key)
    assert status == 411 and orjson.loads(body)["error"]["code"] == "length_required"
    assert not ApiKey.objects.filter(name="raw").exists()


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 2**31 + 5])
def test_an_out_of_range_integer_is_refused_never_stored_wrapped(value):
    """With server-side binding psycopg packed Int4 values into 4 bytes unchecked: 2**31 + 5 was
    stored as -2147483643. The backend's checked dumpers refuse it, as PostgreSQL would."""
    from django.db import DataError, transaction

    from inventory.models import Location

    with pytest.raises(DataError), transaction.atomic():
        Location.objects.create(code="WRAP", name="wrap", priority=value)
    assert not Location.objects.filter(code="WRAP").exists()
    edge = Location.objects.create(code="EDGE", name="edge", priority=2**31 - 1)
    edge.refresh_from_db()
    assert edge.priority == 2**31 - 1
