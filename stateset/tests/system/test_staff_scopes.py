"""SPEC §3/§5: a staff session uses the API with exactly the scopes its Django permissions give —
view → read, add/change/delete → write (manage for webhooks and keys), superuser → * — and its
writes need the CSRF token."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.middleware.csrf import _get_new_csrf_string
from rest_framework.test import APIClient

from customers.models import Customer
from stateset.api.auth import scopes_for_permissions
from stateset.testing import data_of, error_of
from webhooks.models import Endpoint

pytestmark = pytest.mark.django_db


def staff(*codenames: str, superuser: bool = False, via_group: bool = False) -> APIClient:
    user = User.objects.create_user(f"staff{User.objects.count()}", password="x", is_staff=True,
                                    is_superuser=superuser)
    permissions = Permission.objects.filter(codename__in=codenames)
    assert permissions.count() == len(codenames)
    if via_group:
        group = Group.objects.create(name=f"g{user.pk}")
        group.permissions.set(permissions)
        user.groups.add(group)
    else:
        user.user_permissions.set(permissions)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def with_csrf(client: APIClient) -> APIClient:
    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    client.credentials(HTTP_X_CSRFTOKEN=token)
    return client


def test_permissions_map_to_scopes():
    assert scopes_for_permissions({"orders.view_order", "catalog.change_product",
                                   "customers.view_address",
                                   "inventory.delete_location", "returns.add_return"}) == (
        "catalog:write", "customers:read", "inventory:write", "orders:read", "returns:write")
    assert scopes_for_permissions({"webhooks.change_endpoint", "stateset.add_apikey"}) == (
        "keys:manage", "webhooks:manage")
    assert scopes_for_permissions({"webhooks.view_endpoint"}) == ("webhooks:read",)
    # No API resource, or a custom move: no scope.
    assert scopes_for_permissions({"auth.view_user", "stateset.view_idempotencyrecord",
                                   "webhooks.view_event", "orders.record_payment"}) == ()


def test_a_view_only_session_reads_its_resources_and_nothing_else():
    client = staff("view_order")
    assert data_of(client.get("/api/v1/orders"))["items"] == []
    Customer.objects.create(email="private@example.com")
    for path in ("/api/v1/customers", "/api/v1/customers/export.csv", "/api/v1/products",
                 "/api/v1/inventory", "/api/v1/returns", "/api/v1/shipments", "/api/v1/webhooks"):
        response = client.get(path)
        if response.status_code == 404:  # a route another branch adds
            continue
        assert error_of(response, 403)["code"] == "insufficient_scope", path
        assert b"private@example.com" not in response.content
    denied = with_csrf(client).post("/api/v1/orders", {}, format="json")
    assert error_of(denied, 403)["code"] == "insufficient_scope"


def test_group_permissions_count_like_the_users_own():
    client = staff("view_customer", via_group=True)
    assert client.get("/api/v1/customers").status_code == 200
    assert client.get("/api/v1/orders").status_code == 403


def test_session_writes_need_the_csrf_token_and_write_nothing_without_it():
    client = staff("add_customer", "view_customer")
    body = {"email": "csrf@example.com", "first_name": "C", "last_name": "S"}
    refused = client.post("/api/v1/customers", body, format="json")
    assert error_of(refused, 403)["code"] == "forbidden"
    assert "CSRF" in error_of(refused, 403)["message"]
    assert not Customer.objects.filter(email="csrf@example.com").exists()
    made = with_csrf(client).post("/api/v1/customers", body, format="json")
    assert data_of(made, 201)["email"] == "csrf@example.com"


def test_webhooks_need_a_write_permission_on_endpoints():
    Endpoint.objects.create(url="https://hooks.example.com/x", events=["*"], secret="s" * 32)
    assert staff("view_endpoint").get("/api/v1/webhooks").status_code == 403
    assert data_of(staff("change_endpoint").get("/api/v1/webhooks"))["total"] == 1


def test_a_superuser_session_has_every_scope():
    client = staff(superuser=True)
    for path in ("/api/v1/orders", "/api/v1/customers", "/api/v1/webhooks", "/api/v1/inventory"):
        assert client.get(path).status_code == 200, path


def test_a_non_staff_session_is_not_authenticated():
    user = User.objects.create_user("shopper", password="x")
    client = APIClient()
    client.force_login(user)
    assert error_of(client.get("/api/v1/orders"), 401)["code"] == "authentication_required"
