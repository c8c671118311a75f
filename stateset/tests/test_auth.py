from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from stateset import services
from stateset.keys import scope_allows
from stateset.models import ApiKey
from stateset.testing import error_of

pytestmark = [pytest.mark.django_db, pytest.mark.urls("stateset.tests.urls")]
URL = "/api/v1/_test/things"


def assert_error(response, status, code):
    assert error_of(response, status)["code"] == code


def test_missing_key_is_401(anon_client):
    response = anon_client.post(URL, {"name": "x"}, format="json")
    assert_error(response, 401, "authentication_required")
    assert "Bearer" in response["WWW-Authenticate"]
    assert not ApiKey.objects.filter(name="x").exists()


@pytest.mark.parametrize("raw", ["sk_not-a-real-key-0000000000", "nonsense", "sk_" + "x" * 300])
def test_bad_key_is_401(anon_client, make_key, raw):
    make_key("*")
    anon_client.credentials(HTTP_X_API_KEY=raw)
    assert_error(anon_client.post(URL, {"name": "x"}, format="json"), 401, "invalid_api_key")


def test_key_without_the_scope_is_403_and_writes_nothing(client_with):
    client = client_with("catalog:read", "orders:*")
    assert_error(client.post(URL, {"name": "x"}, format="json"), 403, "insufficient_scope")
    assert not ApiKey.objects.filter(name="x").exists()


@pytest.mark.parametrize("scopes", [("catalog:write",), ("catalog:*",), ("*:write",), ("*",)])
def test_key_with_the_scope_or_a_wildcard_passes(client_with, scopes):
    response = client_with(*scopes).post(URL, {"name": "made"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["data"]["name"] == "made"


def test_bearer_header_is_accepted(make_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key('*')}")
    assert client.post(URL, {"name": "b"}, format="json").status_code == 201


def test_expired_and_revoked_keys_are_401(make_key):
    expired = make_key("*", expires_at=timezone.now() - timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=expired)
    assert_error(client.post(URL, {"name": "x"}, format="json"), 401, "api_key_expired")

    live = make_key("*", name="to-revoke")
    services.api_key_revoke(api_key_id=ApiKey.objects.get(name="to-revoke").pk)
    client.credentials(HTTP_X_API_KEY=live)
    assert_error(client.post(URL, {"name": "x"}, format="json"), 401, "invalid_api_key")


def test_keys_are_stored_hashed_and_last_used_is_recorded(make_key, anon_client):
    raw = make_key("*", name="hashed")
    row = ApiKey.objects.get(name="hashed")
    assert raw not in (row.key_hash, row.prefix) and len(row.key_hash) == 64
    assert row.last_used_at is None
    anon_client.credentials(HTTP_X_API_KEY=raw)
    anon_client.post(URL, {"name": "y"}, format="json")
    row.refresh_from_db()
    assert row.last_used_at is not None  # eager Celery in tests; a worker in production


def test_scope_rules():
    assert scope_allows(["orders:read"], "orders:read")
    assert not scope_allows(["orders:read"], "orders:write")
    assert scope_allows(["orders:*"], "orders:write")
    assert scope_allows(["*:read"], "inventory:read")
    assert not scope_allows(["*:read"], "inventory:write")
    assert scope_allows(["webhooks:manage"], "webhooks:read")
    assert not scope_allows(["inventory:write"], "orders:write")
    assert scope_allows(["*"], "returns:write")


def test_create_api_key_command_rejects_unknown_scopes_and_short_keys(db):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_api_key", name="n", scopes="orders:fly")
    with pytest.raises(CommandError, match="starts with sk_"):
        call_command("create_api_key", name="n", scopes="*", key="short")
    assert not ApiKey.objects.exists()


def test_create_api_key_command_with_a_chosen_key(db, capsys):
    from django.core.management import call_command

    call_command("create_api_key", name="load", scopes="orders:read,orders:write",
                 key="sk_loadtest_key_0123456789")
    assert capsys.readouterr().out.strip() == "sk_loadtest_key_0123456789"
    client = APIClient()
    client.credentials(HTTP_X_API_KEY="sk_loadtest_key_0123456789")
    assert_error(client.post(URL, {"name": "x"}, format="json"), 403, "insufficient_scope")


def test_failed_authentication_is_limited_per_client_address(make_key, settings):
    settings.API_AUTH_FAILURE_LIMIT = "3/min"
    good = make_key("*", name="good")
    attacker, neighbour = APIClient(REMOTE_ADDR="203.0.113.7"), APIClient(REMOTE_ADDR="203.0.113.8")
    for n in range(3):
        attacker.credentials(HTTP_X_API_KEY=f"sk_guess-{n:030d}")
        assert_error(attacker.post(URL, {"name": "x"}, format="json"), 401, "invalid_api_key")
    attacker.credentials(HTTP_X_API_KEY="sk_guess-" + "9" * 30)
    response = attacker.post(URL, {"name": "x"}, format="json")
    assert_error(response, 429, "too_many_failed_authentications")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert (response["RateLimit-Limit"], response["RateLimit-Remaining"],
            response["RateLimit-Reset"]) == ("3", "0", response["Retry-After"])
    # Blocked before any key is looked up: the right key from that address waits too...
    attacker.credentials(HTTP_X_API_KEY=good)
    assert_error(attacker.post(URL, {"name": "x"}, format="json"), 429,
                 "too_many_failed_authentications")
    # ...while another address is not affected.
    neighbour.credentials(HTTP_X_API_KEY=good)
    assert neighbour.post(URL, {"name": "ok"}, format="json").status_code == 201
    assert not ApiKey.objects.filter(name="x").exists()


def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(make_key, settings):
    settings.API_AUTH_FAILURE_LIMIT = "2/min"
    settings.API_TRUSTED_PROXIES = 1
    good = make_key("*", name="good")

    def client(forwarded: str) -> APIClient:
        return APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)

    for n in range(3):  # a client cannot escape by inventing its own X-Forwarded-For entries
        spoofing = client(f"198.51.100.{n}, 203.0.113.9")
        spoofing.credentials(HTTP_X_API_KEY="sk_nope-" + "0" * 30)
        last = spoofing.post(URL, {"name": "x"}, format="json")
    assert_error(last, 429, "too_many_failed_authentications")
    other = client("203.0.113.10")  # another client behind the same proxy
    other.credentials(HTTP_X_API_KEY=good)
    assert other.post(URL, {"name": "ok"}, format="json").status_code == 201
