"""SPEC §3/§10: a walk of the URL conf proves every route under /api/v1/ needs its scope.

For every route and every method it serves: no key is 401, a key holding every scope but the
ones that would grant it is 403, and a key with exactly that scope gets past authorization. The
scope each route needs is not read from the view: it is this file's table of URL prefixes →
resource (SPEC §3), with ``read`` for GET and ``write`` (``manage`` for webhooks and keys) for the
rest — a new route under a prefix nobody listed fails here until someone says what guards it.
Every method a route does NOT serve is a 405 envelope, also with an ``Idempotency-Key``.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.test import APIClient

from stateset import services
from stateset.keys import RESOURCES, scope_allows, scope_is_valid
from stateset.testing import error_of

pytestmark = pytest.mark.django_db

# The routes that need no key, named one by one.
OPEN = {"/api/v1/health", "/api/v1/status"}
# URL prefix (first path segment after /api/v1/) → the resource whose scope guards it.
PREFIX_RESOURCE = {
    "products": "catalog",
    "customers": "customers",
    "inventory": "inventory",
    "locations": "inventory",
    "orders": "orders",
    "shipments": "fulfillment",
    "returns": "returns",
    "webhooks": "webhooks",
    "api-keys": "keys",
    "imports": "imports",
    "audit": "catalog",  # its object_type names the resource: the walk reads a product's trail
}
# Routes whose scope a query parameter decides: the walk sends this query.
QUERY = {"/api/v1/audit": "?object_type=catalog.product&object_id={id}"}
# Longer prefixes that belong to another resource than their first segment.
SUBROUTE_RESOURCE = {re.compile(r"^customers/[^/]+/orders$"): "orders"}
MANAGED = {"webhooks", "keys"}  # every route of these needs <resource>:manage
# GET routes of other resources that are reads of a write-guarded flow, none today.
METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + _pattern_text(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + _pattern_text(entry.pattern), entry


def _pattern_text(pattern) -> str:
    text = str(pattern)
    return text[1:] if text.startswith("^") else text


def _sample(regex: str) -> str:
    """An unknown id that the group's own pattern accepts (a UUID where it may be one)."""
    candidates = (str(uuid.uuid4()), uuid.uuid4().hex, "ORD-999999", "x")
    return next(value for value in candidates if re.fullmatch(regex, value))


def concrete(route: str) -> str:
    """``products/(?P<pk>[^/]+)$`` or ``customers/<uuid:customer_id>/orders`` → a real path."""
    route = route.rstrip("$")
    route = re.sub(r"\(\?P<(\w+)>([^)]*)\)", lambda m: _sample(m.group(2)), route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(uuid.uuid4()), route)
    route = route.replace("^", "").replace("\\.", ".")
    return "/" + route + QUERY.get("/" + route, "").format(id=uuid.uuid4())


def api_routes() -> list[tuple[str, str, frozenset[str]]]:
    """(route pattern, a concrete path, the methods it serves) for every route under /api/v1/."""
    found = []
    for route, entry in _walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/"):
            continue
        callback = entry.callback
        actions = getattr(callback, "actions", None)
        if actions is not None:
            methods = frozenset(actions)
        else:
            view = callback.view_class
            methods = frozenset(m for m in METHODS if hasattr(view, m))
        found.append((route, concrete(route), methods))
    return found


def required_scope(path: str, method: str) -> str:
    rest = path.removeprefix("/api/v1/").partition("?")[0]
    resource = next((r for pattern, r in SUBROUTE_RESOURCE.items() if pattern.match(rest)), None)
    if resource is None:
        first = rest.split("/", 1)[0]
        assert first in PREFIX_RESOURCE, (
            f"/api/v1/{first}: no resource says what guards it (add it above)")
        resource = PREFIX_RESOURCE[first]
    if resource in MANAGED:
        return f"{resource}:manage"
    return f"{resource}:{'read' if method == 'get' else 'write'}"


# Scopes a route takes in place of its own: who starts an import may follow it (imports/api.py).
ALSO_GRANTS = {"imports:read": {"imports:write"}}


def every_scope_but(required: str) -> list[str]:
    """Every concrete scope that does not grant ``required`` (no wildcards)."""
    resources = {*RESOURCES, "keys", "imports", "audit"}
    scopes = [f"{r}:{a}" for r in sorted(resources) for a in ("read", "write", "manage")]
    return [s for s in scopes if scope_is_valid(s) and not scope_allows([s], required)
            and s not in ALSO_GRANTS.get(required, set())]


ROUTES = api_routes()
GUARDED = [(route, path, method) for route, path, methods in ROUTES for method in sorted(methods)
           if path not in OPEN]


def key_client(*scopes: str) -> APIClient:
    _, raw = services.api_key_create(name="walker", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    return client


def send(client: APIClient, method: str, path: str, **extra):
    if method in ("get", "delete"):
        return getattr(client, method)(path, **extra)
    return getattr(client, method)(path, {}, format="json", **extra)


def test_the_walk_finds_the_api():
    routes = {route for route, _, _ in ROUTES}
    assert len(GUARDED) >= 40
    assert any(r.startswith("api/v1/customers/<uuid:customer_id>/orders") for r in routes)
    assert {p for _, p, _ in ROUTES} >= OPEN
    for path in OPEN:  # the open routes are what they say they are
        assert APIClient().get(path).status_code == 200


def test_every_route_that_serves_patch_serves_put_too():
    """SPEC §3 names PATCH and PUT for updates (the reference system's SDK updates with PUT)."""
    patched = [(route, methods) for route, _, methods in ROUTES if "patch" in methods]
    assert len(patched) >= 8
    assert [route for route, methods in patched if "put" not in methods] == []


@pytest.mark.parametrize("route, path, method", GUARDED,
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_route_needs_its_scope(route, path, method):
    assert resolve(path.partition("?")[0]).route == route  # the concrete path is this route's
    required = required_scope(path, method)

    anonymous = send(APIClient(), method, path)
    assert error_of(anonymous, 401)["code"] == "authentication_required"

    lacking = send(key_client(*every_scope_but(required)), method, path)
    assert error_of(lacking, 403)["code"] == "insufficient_scope", (method, path, required)

    allowed = send(key_client(required), method, path)
    assert allowed.status_code not in (401, 403), (method, path, required, allowed.content)
    assert allowed.status_code < 500, (method, path, allowed.content)


UNSERVED = [(route, path, method) for route, path, methods in ROUTES for method in METHODS
            if method not in methods]


@pytest.mark.parametrize("route, path, method", UNSERVED,
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_method_a_route_does_not_serve_is_405_even_with_an_idempotency_key(route, path,
                                                                                 method):
    client = key_client("*")
    if path in OPEN:
        client = APIClient()  # unauthenticated, as a probe would be
    response = send(client, method, path, HTTP_IDEMPOTENCY_KEY=f"k-{uuid.uuid4()}")
    assert error_of(response, 405)["code"] == "method_not_allowed"
    from stateset.models import IdempotencyRecord

    assert not IdempotencyRecord.objects.exists()
