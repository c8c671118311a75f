"""The API-key admin refuses what the services and the request path would refuse (SPEC §3):
a key saved in the back office never turns its requests into 500s."""

import pytest
from django.urls import reverse

from stateset import services
from stateset.models import ApiKey
from stateset.testing import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("stateset.tests.urls")]
ADD = reverse("admin:stateset_apikey_add")


def form(**fields):
    return {"name": "ops", "scopes": "orders:read", "rate_limit": "", "expires_at_0": "",
            "expires_at_1": "", **fields}


@pytest.mark.parametrize("fields, field", [
    ({"scopes": "orders:fly"}, "scopes"),
    ({"scopes": "orders:read,nonsense"}, "scopes"),
    ({"scopes": ""}, "scopes"),
    ({"rate_limit": "lots"}, "rate_limit"),
    ({"rate_limit": "0/min"}, "rate_limit"),
    ({"rate_limit": "10/fortnight"}, "rate_limit"),
])
def test_the_add_form_refuses_what_the_services_refuse(admin_client, fields, field):
    response = admin_client.post(ADD, form(**fields))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not ApiKey.objects.exists()


def test_the_change_form_refuses_a_bad_rate_and_the_key_keeps_working(admin_client):
    key, raw = services.api_key_create(name="live", scopes=["catalog:write"])
    url = reverse("admin:stateset_apikey_change", args=[key.pk])
    response = admin_client.post(url,
                                 form(name="live", scopes="catalog:write,teleport:now",
                                      rate_limit="x/y"))
    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"scopes", "rate_limit"}
    key.refresh_from_db()
    assert key.scopes == ["catalog:write"] and key.rate_limit == ""
    made = client_for(raw).post("/api/v1/_test/things", {"name": "still-works"}, format="json")
    assert made.status_code == 201


def test_a_good_key_is_created_through_the_service(admin_client):
    response = admin_client.post(ADD,
                                 form(scopes="orders:read, orders:write", rate_limit="100/min"))
    assert response.status_code == 302
    key = ApiKey.objects.get(name="ops")
    assert key.scopes == ["orders:read", "orders:write"] and key.rate_limit == "100/min"


def test_a_key_stored_with_an_unreadable_rate_still_answers(settings):
    """Keys saved before the form checked rates: the request path falls back to the default."""
    settings.API_RATE_LIMIT = "5/min"
    key, raw = services.api_key_create(name="old", scopes=["catalog:write"])
    ApiKey.objects.filter(pk=key.pk).update(rate_limit="lots")
    response = client_for(raw).post("/api/v1/_test/things", {"name": "fine"}, format="json")
    assert response.status_code == 201
    assert response["RateLimit-Limit"] == "5"
