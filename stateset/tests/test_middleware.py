"""The session stack is the back office's: a keyed API request and a probe skip it; all else keeps
it."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from stateset.middleware import (
    BrowserAuthenticationMiddleware,
    BrowserMessageMiddleware,
    BrowserSessionMiddleware,
)

STACK = (BrowserSessionMiddleware, BrowserAuthenticationMiddleware, BrowserMessageMiddleware)


def seen_by_view(path, **headers):
    seen = {}

    def view(request):
        seen.update(session=hasattr(request, "session"), user=hasattr(request, "user"),
                    messages=hasattr(request, "_messages"))
        return HttpResponse("ok")

    handler = view
    for middleware in reversed(STACK):
        handler = middleware(handler)
    response = handler(RequestFactory().get(path, headers=headers))
    assert response.status_code == 200
    return seen


@pytest.mark.parametrize("headers", [{"X-API-Key": "sk_anything"},
                                     {"Authorization": "Bearer sk_anything"}])
def test_an_api_request_with_a_key_gets_no_session_user_or_messages(headers):
    assert seen_by_view("/api/v1/orders", **headers) == {"session": False, "user": False,
                                                         "messages": False}


@pytest.mark.parametrize("path", ["/health", "/health/ready", "/metrics", "/metrics/json"])
def test_a_probe_or_scrape_gets_no_session_user_or_messages(path):
    assert seen_by_view(path) == {"session": False, "user": False, "messages": False}


@pytest.mark.django_db
def test_a_probe_keeps_its_security_headers_and_sets_no_cookie(client):
    response = client.get("/health", HTTP_COOKIE="sessionid=whatever")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"
    assert not response.cookies and "Cookie" not in response.get("Vary", "")


@pytest.mark.parametrize("path,headers", [
    ("/healthz", {}),
    ("/health/", {}),
    ("/api/v1/orders", {}),  # a staff session's API call
    ("/api/v1/orders", {"Authorization": "Basic eDp5"}),
    ("/admin/", {"X-API-Key": "sk_anything"}),  # the back office is never a key's
])
def test_everything_else_keeps_the_session_stack(path, headers):
    assert seen_by_view(path, **headers) == {"session": True, "user": True, "messages": True}


@pytest.mark.django_db
def test_a_keyed_request_answers_as_before_without_a_session_cookie():
    from stateset import services
    from stateset.testing import client_for

    _, raw = services.api_key_create(name="mw", scopes=["inventory:read"])
    response = client_for(raw).get("/api/v1/locations")
    assert response.status_code == 200 and response.json()["success"] is True
    assert "sessionid" not in response.cookies and "Cookie" not in response.get("Vary", "")
    assert client_for("sk_" + "x" * 40).get("/api/v1/locations").status_code == 401
