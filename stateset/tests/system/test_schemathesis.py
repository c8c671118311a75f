"""SPEC §10, STYLE "One source per answer shape": a property-based run of the committed OpenAPI
schema. Schemathesis generates valid and invalid requests for every operation, sends them to the
app in-process and checks every answer against the schema: no 5xx, a documented status code, a
documented content type, and a body that validates against the documented schema (the envelope,
the output serializer of ``data``, the error envelope of every 4xx; objects closed). Valid
generated requests name real rows, so success answers are checked too; and a journey gives every
operation of the schema (and every list, with rows) one success answer, checked the same way. A
drift between a documented and a real body fails here."""

from pathlib import Path

import pytest
import schemathesis
import yaml
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core import NOT_SET
from schemathesis.core.failures import FailureGroup

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml"


def closed(node):
    """Every object of an answer without additionalProperties gets ``additionalProperties: false``
    here, in the test only: a body field the schema does not document is a drift too, but the
    published schema stays open to additive changes (SPEC: /api/v1/ changes are additive)."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            closed(value)
    elif isinstance(node, list):
        for value in node:
            closed(value)
    return node


def answers_closed(document):
    for name, component in document["components"]["schemas"].items():
        if not name.endswith("Request"):
            closed(component)
    for operations in document["paths"].values():
        for operation in operations.values():
            closed(operation.get("responses", {}))
    return document


# An NDJSON import is bytes on the wire, as a CSV one is.
schemathesis.serializer.alias("application/x-ndjson", "application/octet-stream")
schema = schemathesis.openapi.from_dict(answers_closed(yaml.safe_load(SCHEMA_FILE.read_text())))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def wsgi_app():
    """The real WSGI handler, minus the per-request connection close (as Django's test client
    does) so every request runs inside the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(db, make_key):
    """Real rows for generated requests to hit: the guide's customer and product with stock."""
    from django.core.management import call_command

    call_command("seed_demo", "--products", "5", "--customers", "3", verbosity=0)
    return make_key("*")


def _data(response, status=200):
    assert response.status_code == status, response.content[:500]
    return response.json()["data"]


@pytest.fixture
def world(seeded, settings):
    """One row of every resource, made over the API: the ids a valid request names."""
    from rest_framework.test import APIClient

    from catalog.models import Product
    from customers.models import Customer
    from inventory.models import InventoryItem, Location
    from webhooks.tests.factories import DeliveryFactory

    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=seeded)

    def post(path, body, status=201):
        return _data(api.post(f"/api/v1/{path}", body, format="json"), status)

    customer = Customer.objects.order_by("email").first()
    product = Product.objects.get(sku="TEST-001")
    location = Location.objects.get(code="MAIN")
    order = post("orders", {"customer_id": str(customer.id),
                            "items": [{"product_id": str(product.id), "quantity": 3}]})
    item = order["items"][0]["id"]
    shipment = post("shipments", {"order_id": order["id"], "carrier": "UPS",
                                  "tracking_number": "1Z-SCHEMA",
                                  "items": [{"order_item_id": item, "quantity": 2}]})
    post(f"shipments/{shipment['id']}/ship", {}, status=200)
    rma = post("returns", {"order_id": order["id"], "reason": "too big", "items": [
        {"order_item_id": item, "quantity": 1, "condition": "resellable"}]})
    reservation = post("inventory/reserve", {"items": [{"product_id": str(product.id),
                                                        "quantity": 1}],
                                             "reference_type": "cart", "reference_id": "c-1"})
    webhook = post("webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["order.created"]})
    delivery = DeliveryFactory(endpoint_id=webhook["id"])
    address = post(f"customers/{customer.id}/addresses", {
        "kind": "shipping", "line1": "1 Main St", "city": "Springfield", "country": "US"})
    other_key = post("api-keys", {"name": "revocable", "scopes": ["orders:read"]})
    return {
        "key": seeded,  # the caller's own key: generated requests revoke and rotate another one
        "api-keys": other_key["id"], "customers": str(customer.id),
        "inventory": str(InventoryItem.objects.filter(product=product,
                                                      location=location).get().id),
        "locations": str(location.id), "orders": order["id"], "products": str(product.id),
        "returns": rma["id"], "shipments": shipment["id"], "webhooks": webhook["id"],
        "customer_id": str(customer.id), "product_id": str(product.id),
        "order_id": order["id"], "location_id": str(location.id), "order_item_id": item,
        "address_id": address["id"], "reservation_id": reservation["reservations"][0]["id"],
        "number": order["order_number"], "delivery_id": str(delivery.id), "sku": product.sku,
        "tracking_number": "1Z-SCHEMA",
    }


_RENAMED = {"from_location_id": "location_id", "to_location_id": "location_id"}


def _real_ids(value, world):
    """A generated body with every id it names replaced by a real row's id."""
    if isinstance(value, dict):
        return {key: world[_RENAMED.get(key, key)]
                if _RENAMED.get(key, key) in world and key.endswith("_id") and isinstance(item, str)
                else _real_ids(item, world) for key, item in value.items()}
    if isinstance(value, list):
        return [_real_ids(item, world) for item in value]
    return value


def with_real_ids(case, world):
    """Point a valid generated request at rows that exist, so its success answer is checked too
    (random ids only ever meet 404s). Invalid requests stay as generated."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return
    resource = case.path.split("/")[3]
    for name in case.path_parameters or {}:
        real = world.get(resource) if name == "id" else world.get(name)
        if real is not None:
            case.path_parameters[name] = real
    if isinstance(case.body, dict | list):
        case.body = _real_ids(case.body, world)


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_every_answer_matches_the_schema(case, world, wsgi_app):
    with_real_ids(case, world)
    response = case.call(app=wsgi_app, headers={"X-API-Key": world["key"],
                                                "Accept-Encoding": "identity"})
    case.validate_response(response, checks=CHECKS)


# --- every operation's success answer, once, on a request that must succeed -----------------------

class Journey:
    """Calls operations of the schema as schemathesis cases and checks each answer like the
    property run does; remembers which operations answered a success."""

    def __init__(self, world, app):
        self.world, self.app, self.succeeded, self.failures = world, app, set(), []
        self.empty_lists, self.full_lists = set(), set()

    def __call__(self, method, path, status=200, *, body=NOT_SET, query=None, headers=None,
                 media_type=None, **path_parameters):
        operation = schema[f"/api/v1/{path}"][method]
        case = operation.Case(path_parameters=path_parameters or None, body=body, query=query,
                              media_type=media_type)
        response = case.call(app=self.app, headers={"X-API-Key": self.world["key"],
                                                    "Accept-Encoding": "identity",
                                                    **(headers or {})})
        assert response.status_code == status, (method, path, response.text[:800])
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as failure:  # every operation's drift at once, not the first one's
            self.failures.append(f"{method} /api/v1/{path}: {failure}")
        else:
            self.succeeded.add(f"{method} /api/v1/{path}")
        is_json = response.headers.get("content-type", [""])[0].startswith("application/json")
        if not (is_json and response.text):
            return response
        data = response.json()["data"]
        if isinstance(data, dict) and isinstance(data.get("items"), list):  # a page
            (self.full_lists if data["items"] else self.empty_lists).add(f"{method} {path}")
        return data


def test_every_operation_answers_its_documented_success(world, wsgi_app):
    w, call = world, Journey(world, wsgi_app)
    customer, product, location = w["customers"], w["products"], w["locations"]

    # platform
    call("GET", "health")
    call("GET", "status")
    call("GET", "api-keys")
    key = call("POST", "api-keys", 201, body={"name": "ci", "scopes": ["orders:read"]})
    for _ in range(2):  # the replay answers the secret as null (SPEC §4.7)
        replay = call("POST", "api-keys", 201, body={"name": "ci-2", "scopes": ["orders:read"]},
                      headers={"Idempotency-Key": "schema-key"})
    assert replay["key"] is None
    call("GET", "api-keys/{id}", id=key["id"])
    call("POST", "api-keys/{id}/rotate", body={"grace_seconds": 60}, id=key["id"])
    call("DELETE", "api-keys/{id}", 204, id=key["id"])

    # catalog
    call("GET", "products")
    call("GET", "products/search", query={"q": "test"})
    call("GET", "products/by-sku/{sku}", sku=w["sku"])
    call("GET", "products/export.csv")
    made = call("POST", "products", 201, body={"sku": "SCHEMA-1", "name": "Schema", "price": "9.50",
                                               "attributes": {"size": "M"}})
    call("GET", "products/{id}", id=made["id"])
    call("PATCH", "products/{id}", body={"name": "Schema 2"}, id=made["id"])
    call("PUT", "products/{id}", body={"name": "Schema 3"}, id=made["id"])
    call("DELETE", "products/{id}", 204, id=made["id"])
    call("DELETE", "products/{id}", id=product)  # referenced by orders: deactivated, 200
    call("PATCH", "products/{id}", body={"is_active": True}, id=product)

    # customers
    call("GET", "customers")
    call("GET", "customers/export.csv")
    buyer = call("POST", "customers", 201, body={"email": "schema@example.com", "first_name": "S"})
    call("GET", "customers/{id}", id=buyer["id"])
    call("PATCH", "customers/{id}", body={"last_name": "T"}, id=buyer["id"])
    call("PUT", "customers/{id}", body={"email": "schema2@example.com"}, id=buyer["id"])
    call("GET", "customers/{customer_id}/orders", customer_id=customer)
    call("GET", "customers/{id}/addresses", id=customer)
    address = call("POST", "customers/{id}/addresses", 201, id=customer, body={
        "kind": "billing", "line1": "2 Side St", "city": "Shelbyville", "country": "US"})
    call("GET", "customers/{id}/addresses/{address_id}", id=customer, address_id=address["id"])
    call("PATCH", "customers/{id}/addresses/{address_id}", body={"city": "Ogdenville"},
         id=customer, address_id=address["id"])
    call("PUT", "customers/{id}/addresses/{address_id}", body={"city": "North Haverbrook"},
         id=customer, address_id=address["id"])
    call("DELETE", "customers/{id}/addresses/{address_id}", 204, id=customer,
         address_id=address["id"])

    # inventory
    call("GET", "locations")
    east = call("POST", "locations", 201, body={"code": "SCHEMA", "name": "Schema"})
    call("GET", "locations/{id}", id=east["id"])
    call("PATCH", "locations/{id}", body={"name": "Schema East"}, id=east["id"])
    call("PUT", "locations/{id}", body={"name": "Schema East 2"}, id=east["id"])
    call("GET", "inventory")
    call("GET", "inventory/export.csv")
    call("GET", "inventory/movements")
    call("GET", "inventory/movements/export.csv")
    call("GET", "inventory/reservations")
    row = call("POST", "inventory", 201, body={"product_id": product, "location_id": east["id"],
                                               "on_hand": 5})
    call("GET", "inventory/{id}", id=row["id"])
    call("PATCH", "inventory/{id}", body={"reorder_point": 1000, "allow_backorder": True},
         id=row["id"])
    call("PUT", "inventory/{id}", body={"safety_stock": 0}, id=row["id"])
    call("GET", "inventory/low-stock")
    call("POST", "inventory/receive", body={"product_id": product, "location_id": east["id"],
                                            "quantity": 3})
    call("POST", "inventory/adjust", body={"product_id": product, "location_id": east["id"],
                                           "delta": -1, "reason": "count"})
    call("POST", "inventory/bulk-adjust", body={"adjustments": [
        {"product_id": product, "location_id": east["id"], "delta": 1, "reason": "count"}]})
    call("POST", "inventory/transfer", body={"product_id": product, "from_location_id": location,
                                             "to_location_id": east["id"], "quantity": 1})
    held = call("POST", "inventory/reserve", 201, body={
        "items": [{"product_id": product, "quantity": 1}], "reference_type": "cart",
        "reference_id": "c-2", "expires_in": 600})
    call("POST", "inventory/reservations/{reservation_id}/extend", body={"expires_in": 900},
         reservation_id=held["reservations"][0]["id"])
    call("POST", "inventory/release", body={"reservation_ids": [held["reservations"][0]["id"]]})

    # orders
    awaited = call("POST", "products", 201, body={"sku": "SCHEMA-BO", "name": "Awaited",
                                                  "price": "3.00"})
    shelf = call("POST", "inventory", 201, body={"product_id": awaited["id"],
                                                 "location_id": location, "on_hand": 0})
    call("PATCH", "inventory/{id}", body={"allow_backorder": True}, id=shelf["id"])
    backordered = call("POST", "orders", 201, body={
        "customer_id": customer, "items": [{"product_id": awaited["id"], "quantity": 2}]})
    assert backordered["backordered"] is True
    call("GET", "inventory/backorders")
    call("GET", "orders")
    call("GET", "orders", query={"include_items": "true"})
    call("GET", "orders/export.csv")
    order = call("POST", "orders", 201, body={
        "customer_id": customer, "items": [{"product_id": product, "quantity": 4,
                                            "discount": "1.00"}],
        "shipping_lines": [{"method": "ground", "amount": "5.00"}],
        "discounts": [{"code": "TEN", "amount": "2.00"}],
        "shipping_address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
        "metadata": {"cart": "c-3"}})
    oid = order["id"]
    call("GET", "orders/{id}", id=oid)
    call("GET", "orders/by-number/{number}", number=order["order_number"])
    call("GET", "orders/{id}/events", id=oid)
    version = call("PATCH", "orders/{id}", body={"notes": "gift"}, id=oid)["version"]
    version = call("PUT", "orders/{id}", body={"notes": "gift!"}, id=oid)["version"]
    version = call("POST", "orders/{id}/edit", body={"add": [{"product_id": product,
                                                              "quantity": 1}]},
                   headers={"If-Match": f'"{version}"'}, id=oid)["version"]
    call("POST", "orders/{id}/payments", 201, body={"kind": "authorize"}, id=oid)
    call("GET", "orders/{id}/payments", id=oid)
    call("POST", "orders/{id}/status", body={"status": "confirmed"}, id=oid)
    call("POST", "orders/{id}/payment", body={"payment_status": "paid"}, id=oid)
    call("GET", "audit", query={"object_type": "orders.order", "object_id": oid})

    # fulfillment
    call("GET", "shipments")
    parcel = call("POST", "shipments", 201, body={"order_id": oid, "carrier": "UPS",
                                                  "tracking_number": "1Z-JOURNEY"})
    call("GET", "shipments/{id}", id=parcel["id"])
    call("PATCH", "shipments/{id}", body={"service": "ground"}, id=parcel["id"])
    call("PUT", "shipments/{id}", body={"service": "express"}, id=parcel["id"])
    call("GET", "shipments/track/{tracking_number}", tracking_number="1Z-JOURNEY")
    call("POST", "shipments/{id}/ship", id=parcel["id"])
    call("POST", "shipments/{id}/deliver", id=parcel["id"])
    spare = call("POST", "orders", 201, body={"customer_id": customer,
                                              "items": [{"product_id": product, "quantity": 1}]})
    pending = call("POST", "shipments", 201, body={"order_id": spare["id"], "carrier": "UPS"})
    call("POST", "shipments/{id}/cancel", body={"reason": "oops"}, id=pending["id"])
    call("POST", "orders/{id}/cancel", body={"reason": "changed mind"}, id=spare["id"])

    # returns
    call("GET", "returns")
    line = max(call("GET", "orders/{id}", id=oid)["items"], key=lambda i: i["quantity"])["id"]
    rma = call("POST", "returns", 201, body={"order_id": oid, "reason": "too big", "items": [
        {"order_item_id": line, "quantity": 1, "condition": "resellable", "restock": True}]})
    call("GET", "returns/{id}", id=rma["id"])
    for verb in ("approve", "receive", "refund", "close"):
        call("POST", f"returns/{{id}}/{verb}", body={}, id=rma["id"])
    for verb in ("reject", "cancel"):
        other = call("POST", "returns", 201, body={"order_id": oid, "reason": "x", "items": [
            {"order_item_id": line, "quantity": 1, "condition": "damaged"}]})
        call("POST", f"returns/{{id}}/{verb}", body={"note": verb}, id=other["id"])

    # webhooks
    call("GET", "webhooks")
    hook = call("POST", "webhooks", 201, body={"url": "http://127.0.0.1:9/other",
                                               "events": ["order.created"]})
    for _ in range(2):
        replay = call("POST", "webhooks", 201, body={"url": "http://127.0.0.1:9/again",
                                                     "events": ["order.created"]},
                      headers={"Idempotency-Key": "schema-hook"})
    assert replay["secret"] is None
    call("GET", "webhooks/{id}", id=hook["id"])
    call("PATCH", "webhooks/{id}", body={"description": "ci"}, id=hook["id"])
    call("PUT", "webhooks/{id}", body={"description": "ci 2"}, id=hook["id"])
    rotated = [call("POST", "webhooks/{id}/rotate-secret", id=hook["id"],
                    headers={"Idempotency-Key": "schema-rotate"}) for _ in range(2)]
    assert rotated[0]["secret"] and rotated[1]["secret"] is None
    call("GET", "webhooks/{id}/deliveries", id=w["webhooks"])
    call("POST", "webhooks/{id}/deliveries/{delivery_id}/resend", id=w["webhooks"],
         delivery_id=w["delivery_id"])
    call("DELETE", "webhooks/{id}", 204, id=hook["id"])

    # imports
    job = call("POST", "imports", 202, query={"kind": "products", "dry_run": "true"},
               media_type="text/csv", body="sku,name,price\nIMP-1,Imported,1.00\n")
    call("GET", "imports/{id}", id=job["id"])
    call("GET", "imports")

    documented = {f"{op.method.upper()} {op.path}" for op in
                  (result.ok() for result in schema.get_all_operations())}
    assert not call.failures, "\n\n".join(call.failures)
    assert call.empty_lists - call.full_lists == set(), "lists whose rows were never checked"
    assert documented - call.succeeded == set(), "operations without a checked success answer"


# Required query parameters (the audit trail's scope depends on the object type asked for).
REQUIRED_QUERY = {"object_type": "orders.order", "object_id": "ORD-000001", "kind": "products"}


@pytest.mark.parametrize("scopes, status", [(None, 401), (["orders:set_prices"], 403)],
                         ids=["no key", "a key without the scope"])
def test_every_operation_refuses_a_caller_with_its_documented_error(world, wsgi_app, make_key,
                                                                     scopes, status):
    """The error side of every operation once, deterministically: no key is a documented 401, a
    key without the operation's scope a documented 403, in the error envelope (the open health
    probes answer 200)."""
    headers = {"Accept-Encoding": "identity"}
    if scopes is not None:
        headers["X-API-Key"] = make_key(*scopes)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        resource = operation.path.split("/")[3]
        names = [p.name for p in operation.path_parameters]
        # Any id in the right shape: authentication comes before the lookup.
        case = operation.Case(path_parameters={
            name: world.get(resource if name == "id" else name, world["orders"])
            for name in names} or None, query={
            p.name: REQUIRED_QUERY.get(p.name, "x") for p in operation.query if p.is_required}
            or None)
        response = case.call(app=wsgi_app, headers=headers)
        expected = status if operation.definition.raw.get("security") else 200
        if response.status_code != expected:
            failures.append(f"{operation.label}: {response.status_code} {response.text[:200]}")
            continue
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as failure:
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)


def test_every_read_documenting_304_answers_its_etag_and_304(world, wsgi_app):
    """Each GET whose schema documents ``If-None-Match`` answers an ``ETag`` and, asked again with
    it, a 304 with no body that matches the schema; and no other GET of one resource was left out
    of the schema (a route that tags its answer documents it)."""
    failures, documented = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "GET":
            continue
        resource = operation.path.split("/")[3]
        parameters = {p.name: world.get(resource if p.name == "id" else p.name)
                      for p in operation.path_parameters}
        if not parameters or None in parameters.values():
            continue
        case = operation.Case(path_parameters=parameters)
        headers = {"X-API-Key": world["key"], "Accept-Encoding": "identity"}
        first = case.call(app=wsgi_app, headers=headers)
        conditional = "304" in operation.definition.raw["responses"]
        tag = next((values[0] for name, values in first.headers.items()
                    if name.lower() == "etag"), None)
        if not conditional:
            if tag is not None and first.status_code == 200:
                failures.append(f"{operation.label}: answers an ETag, documents no 304")
            continue
        documented += 1
        if first.status_code != 200 or tag is None:
            failures.append(f"{operation.label}: {first.status_code}, ETag {tag!r}")
            continue
        again = case.call(app=wsgi_app, headers={**headers, "If-None-Match": tag})
        if again.status_code != 304 or again.content:
            failures.append(f"{operation.label}: {again.status_code} {again.content[:200]!r} "
                            "to its own ETag")
            continue
        try:
            case.validate_response(again, checks=CHECKS)
        except FailureGroup as failure:
            failures.append(f"{operation.label}: {failure}")
    assert documented >= 10 and not failures, "\n".join(failures)
