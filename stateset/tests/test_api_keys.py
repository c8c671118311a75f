"""``/api/v1/api-keys`` (SPEC §3): a key created over the API can do exactly its scopes, a key
grants only what it holds, rotation with a grace period, revocation at once, secrets shown once."""

import json
import logging
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from stateset import services
from stateset.keys import HMAC_SHA256, SHA256, hash_key, key_cache, principal_for_key, scope_allows
from stateset.models import ApiKey, IdempotencyRecord
from stateset.testing import client_for, data_of, error_of

pytestmark = pytest.mark.django_db
URL = "/api/v1/api-keys"
SHAPE = {"id", "name", "prefix", "scopes", "expires_at", "rate_limit", "last_used_at", "created_at",
         "revoked_at"}


def manager(make_key, *scopes, **kwargs):
    """An API client whose key holds keys:manage and ``scopes``."""
    return client_for(make_key("keys:manage", *scopes, name=kwargs.pop("name", "manager"),
                               **kwargs))


def create(client, status=201, **body):
    body.setdefault("name", "made")
    body.setdefault("scopes", ["orders:read"])
    response = client.post(URL, body, format="json")
    return data_of(response, status) if status < 400 else error_of(response, status)


def stored_values():
    """Every stored column of every key but ``last_used_at`` (the touch of the request itself), as
    one string: to compare before and after, and to look for a secret in it."""
    rows = ApiKey.objects.order_by("pk").values()
    return json.dumps([{k: v for k, v in row.items() if k != "last_used_at"} for row in rows],
                      default=str)


# --- create, show, list ---------------------------------------------------------------------------


def test_create_answers_the_key_and_its_secret_once(make_key):
    client = manager(make_key, "orders:read", "customers:write")
    data = create(client, name="  shop  ", scopes=["orders:read", "customers:write"],
                  rate_limit="600/min")
    raw = data.pop("key")
    assert set(data) == SHAPE
    assert raw.startswith("sk_") and len(raw) == 3 + 43  # 32 random bytes, URL-safe base64
    assert data["name"] == "shop" and data["scopes"] == ["orders:read", "customers:write"]
    assert data["prefix"] == raw[:10] and data["rate_limit"] == "600/min"
    assert data["revoked_at"] is None and data["last_used_at"] is None
    row = ApiKey.objects.get(pk=data["id"])
    assert row.hash_scheme == HMAC_SHA256 and row.key_hash == hash_key(raw)
    # keyed: the plain digest of the secret is not stored
    assert row.key_hash != hash_key(raw, SHA256)
    assert raw not in stored_values()
    assert row.created_by == "api-key:manager"

    shown = data_of(client.get(f"{URL}/{data['id']}"))
    assert shown == {**data, "last_used_at": None}
    listed = data_of(client.get(URL))["items"]
    assert {item["id"] for item in listed} == {data["id"],
                                               str(ApiKey.objects.get(name="manager").pk)}
    assert all(set(item) == SHAPE for item in listed)


def test_list_filters_revoked_and_refuses_unknown_filters(make_key):
    client = manager(make_key, "orders:read")
    gone = create(client, name="gone")
    client.delete(f"{URL}/{gone['id']}")
    assert [i["name"] for i in data_of(client.get(URL, {"revoked": "true"}))["items"]] == ["gone"]
    assert "gone" not in [i["name"]
                          for i in data_of(client.get(URL, {"revoked": "false"}))["items"]]
    assert error_of(client.get(URL, {"owner": "x"}), 422)["code"] == "invalid_parameter"


@pytest.mark.parametrize("rows", [1, 30])
def test_list_query_count_is_fixed(make_key, django_assert_num_queries, rows):
    client = manager(make_key)
    for i in range(rows):
        services.api_key_create(name=f"k{i}", scopes=["orders:read"])
    data_of(client.get(URL))  # authenticates the key once
    with django_assert_num_queries(1):  # the page, which holds the rest of the list: its total
        page = data_of(client.get(URL, {"limit": 100}))
    assert len(page["items"]) == rows + 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "scopes": ["orders:read"]}, "name"),
        ({"name": "x" * 101, "scopes": ["orders:read"]}, "name"),
        ({"name": 12, "scopes": ["orders:read"]}, "name"),
        ({"name": "n", "scopes": []}, "scopes"),
        ({"name": "n", "scopes": ["orders:fly"]}, "scopes"),
        ({"name": "n", "scopes": "orders:read"}, "scopes"),
        ({"name": "n", "scopes": ["orders:read"], "expires_at": "2001-01-01T00:00:00Z"},
         "expires_at"),
        ({"name": "n", "scopes": ["orders:read"], "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "n", "scopes": ["orders:read"], "rate_limit": "fast"}, "rate_limit"),
        ({"name": "n", "scopes": ["orders:read"], "key": "sk_mine_0123456789abcdef"}, "key"),
        ({"name": "n", "scopes": ["orders:read"], "hash_scheme": "sha256"}, "hash_scheme"),
    ],
)
def test_invalid_bodies_are_422_and_write_nothing(make_key, body, field):
    client = manager(make_key, "orders:read")
    before = stored_values()
    error = error_of(client.post(URL, body, format="json"), 422)
    assert field in error["details"]
    assert "API key" not in error["message"]  # about the body, not the caller's credentials
    assert stored_values() == before


def test_unknown_key_is_404(make_key):
    client = manager(make_key)
    for path in ("00000000-0000-0000-0000-000000000000", "nope"):
        assert error_of(client.get(f"{URL}/{path}"), 404)["code"] == "api_key_not_found"
        assert error_of(client.delete(f"{URL}/{path}"), 404)["code"] == "api_key_not_found"
        assert error_of(client.post(f"{URL}/{path}/rotate", {}, format="json"),
                        404)["code"] == "api_key_not_found"


@pytest.mark.parametrize("scopes", [("orders:read",), ("keys:read",), ("keys:write",), ("*:read",)])
def test_every_route_needs_keys_manage(make_key, scopes):
    target = ApiKey.objects.get(pk=services.api_key_create(name="t", scopes=["orders:read"])[0].pk)
    client = client_for(make_key(*scopes, name="weak"))
    before = stored_values()
    for response in (client.get(URL), client.get(f"{URL}/{target.pk}"),
                     client.post(URL, {"name": "n", "scopes": ["orders:read"]}, format="json"),
                     client.post(f"{URL}/{target.pk}/rotate", {}, format="json"),
                     client.delete(f"{URL}/{target.pk}")):
        assert error_of(response, 403)["code"] == "insufficient_scope"
    assert stored_values() == before


# --- a key grants only what it holds --------------------------------------------------------------


def test_a_key_made_over_the_api_can_do_exactly_its_scopes(make_key):
    creator = manager(make_key, "orders:read", "customers:*", "catalog:read")
    made = client_for(create(creator, scopes=["orders:read", "customers:write"])["key"])
    allowed = [
        made.get("/api/v1/orders"),
        made.post("/api/v1/customers", {"email": "new@example.com"}, format="json"),
    ]
    assert [r.status_code for r in allowed] == [200, 201]
    refused = {
        "orders:write": made.post("/api/v1/orders", {}, format="json"),
        "customers:read": made.get("/api/v1/customers"),
        "catalog:read": made.get("/api/v1/products"),
        "inventory:read": made.get("/api/v1/locations"),
        "webhooks:manage": made.get("/api/v1/webhooks"),
        "keys:manage": made.get(URL),
    }
    for scope, response in refused.items():
        assert error_of(response, 403)["code"] == "insufficient_scope", scope
    assert not ApiKey.objects.filter(name="made", scopes__contains=["keys:manage"]).exists()


@pytest.mark.parametrize(
    ("held", "asked"),
    [
        (("orders:read",), ["orders:write"]),
        (("orders:read",), ["orders:read", "inventory:read"]),
        (("orders:read", "orders:write"), ["orders:*"]),
        (("orders:*",), ["*"]),
        (("*:read",), ["*:write"]),
        (("orders:*",), ["orders:set_prices"]),
        (("*",), ["orders:set_prices"]),
    ],
)
def test_a_key_cannot_grant_a_scope_it_does_not_hold(make_key, held, asked):
    client = manager(make_key, *held)
    before = stored_values()
    error = create(client, 403, scopes=asked)
    assert error["code"] == "insufficient_scope"
    assert error["details"]["scopes"]
    assert stored_values() == before


@pytest.mark.parametrize(
    ("held", "asked"),
    [
        (("orders:*",), ["orders:write", "orders:read"]),
        (("orders:*",), ["orders:*"]),
        (("*",), ["*", "keys:manage"]),
        (("*:read",), ["inventory:read"]),
        (("webhooks:manage",), ["webhooks:read"]),
        (("orders:set_prices", "orders:write"), ["orders:set_prices", "orders:write"]),
    ],
)
def test_a_key_may_grant_what_it_holds(make_key, held, asked):
    assert create(manager(make_key, *held), scopes=asked)["scopes"] == asked


def test_orders_set_prices_is_granted_by_name_only():
    assert scope_allows(["orders:set_prices"], "orders:set_prices")
    for wildcard in (["*"], ["orders:*"], ["*:*"], ["*:write"], ["orders:write", "orders:manage"]):
        assert not scope_allows(wildcard, "orders:set_prices"), wildcard
    assert not scope_allows(["orders:set_prices"], "orders:write")  # and it grants nothing else


def test_create_api_key_command_grants_orders_set_prices(db, capsys):
    from django.core.management import call_command

    call_command("create_api_key", name="pricing", scopes="orders:write,orders:set_prices")
    raw = capsys.readouterr().out.strip()
    principal = principal_for_key(raw)
    assert principal is not None and principal.scopes == ("orders:write", "orders:set_prices")
    assert ApiKey.objects.get(name="pricing").hash_scheme == HMAC_SHA256


def test_a_key_cannot_grant_a_longer_life_or_a_higher_rate(make_key):
    ends = timezone.now() + timedelta(hours=1)
    client = manager(make_key, "orders:read", expires_at=ends, rate_limit="100/min")
    made = create(client)  # inherits the grantor's expiry and rate
    assert parse_datetime(made["expires_at"]) == ends and made["rate_limit"] == "100/min"
    before = stored_values()
    later = (ends + timedelta(minutes=1)).isoformat()
    assert create(client, 403, expires_at=later)["code"] == "exceeds_own_key"
    assert create(client, 403, rate_limit="2/s")["code"] == "exceeds_own_key"
    assert stored_values() == before
    assert create(client, rate_limit="1/s")["rate_limit"] == "1/s"  # 60/min is below 100/min


def test_a_key_cannot_revoke_or_rotate_a_broader_key(make_key):
    strong_raw = make_key("*", name="strong")
    strong = ApiKey.objects.get(name="strong")
    weak = manager(make_key, "orders:read", name="weak")
    before = stored_values()
    assert error_of(weak.delete(f"{URL}/{strong.pk}"), 403)["code"] == "insufficient_scope"
    assert error_of(weak.post(f"{URL}/{strong.pk}/rotate", {}, format="json"),
                    403)["code"] == "insufficient_scope"
    assert stored_values() == before
    assert client_for(strong_raw).get("/api/v1/orders").status_code == 200


# --- revoke and rotate ----------------------------------------------------------------------------


def test_revoke_is_204_and_the_key_stops_at_once(make_key, django_capture_on_commit_callbacks):
    client = manager(make_key, "orders:read")
    made = create(client)
    victim = client_for(made["key"])
    assert victim.get("/api/v1/orders").status_code == 200  # now in this process's cache
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(f"{URL}/{made['id']}")
    assert response.status_code == 204
    assert error_of(victim.get("/api/v1/orders"), 401)["code"] == "invalid_api_key"
    revoked_at = data_of(client.get(f"{URL}/{made['id']}"))["revoked_at"]
    assert revoked_at is not None
    assert client.delete(f"{URL}/{made['id']}").status_code == 204  # again: nothing changes
    assert data_of(client.get(f"{URL}/{made['id']}"))["revoked_at"] == revoked_at


def test_rotate_with_no_grace_stops_the_old_secret_at_once(make_key):
    client = manager(make_key, "orders:read")
    made = create(client)
    old = client_for(made["key"])
    assert old.get("/api/v1/orders").status_code == 200
    rotated = data_of(client.post(f"{URL}/{made['id']}/rotate", format="json"))
    assert set(rotated) == SHAPE | {"key"} and rotated["id"] == made["id"]
    assert rotated["key"] != made["key"] and rotated["prefix"] == rotated["key"][:10]
    assert error_of(old.get("/api/v1/orders"), 401)["code"] == "invalid_api_key"
    assert client_for(rotated["key"]).get("/api/v1/orders").status_code == 200
    assert made["key"] not in stored_values() and rotated["key"] not in stored_values()


def test_rotated_old_secret_works_for_the_grace_period_then_stops(make_key):
    client = manager(make_key, "orders:read")
    made = create(client)
    old = client_for(made["key"])
    assert old.get("/api/v1/orders").status_code == 200
    started = time.monotonic()
    rotated = data_of(client.post(f"{URL}/{made['id']}/rotate", {"grace_seconds": 2},
                                  format="json"))
    new = client_for(rotated["key"])
    assert old.get("/api/v1/orders").status_code == 200  # within the grace period
    assert new.get("/api/v1/orders").status_code == 200
    time.sleep(max(0.0, 2.2 - (time.monotonic() - started)))
    # served from cache too
    assert error_of(old.get("/api/v1/orders"), 401)["code"] == "invalid_api_key"
    key_cache.clear()
    # and from the database
    assert error_of(old.get("/api/v1/orders"), 401)["code"] == "invalid_api_key"
    assert new.get("/api/v1/orders").status_code == 200


def test_a_second_rotation_ends_the_first_grace_period(make_key):
    client = manager(make_key, "orders:read")
    made = create(client)
    first = data_of(client.post(f"{URL}/{made['id']}/rotate", {"grace_seconds": 3600},
                                format="json"))
    second = data_of(client.post(f"{URL}/{made['id']}/rotate", {"grace_seconds": 3600},
                                 format="json"))
    assert error_of(client_for(made["key"]).get("/api/v1/orders"), 401)["code"] == "invalid_api_key"
    assert client_for(first["key"]).get("/api/v1/orders").status_code == 200
    assert client_for(second["key"]).get("/api/v1/orders").status_code == 200


@pytest.mark.parametrize("body",
                         [{"grace_seconds": "5"}, {"grace_seconds": -1}, {"grace_seconds": 1.5},
                                  {"grace_seconds": True}, {"grace_seconds": 30 * 86400 + 1},
                          {"grace": 5}])
def test_rotate_with_a_bad_grace_is_422_and_changes_nothing(make_key, body):
    client = manager(make_key, "orders:read")
    made = create(client)
    before = stored_values()
    error_of(client.post(f"{URL}/{made['id']}/rotate", body, format="json"), 422)
    assert stored_values() == before


def test_a_revoked_key_cannot_be_rotated(make_key):
    client = manager(make_key, "orders:read")
    made = create(client)
    client.delete(f"{URL}/{made['id']}")
    before = stored_values()
    assert error_of(client.post(f"{URL}/{made['id']}/rotate", {}, format="json"),
                    409)["code"] == "api_key_revoked"
    assert stored_values() == before


def test_revoking_during_a_grace_period_stops_both_secrets(make_key):
    client = manager(make_key, "orders:read")
    made = create(client)
    rotated = data_of(client.post(f"{URL}/{made['id']}/rotate", {"grace_seconds": 3600},
                                  format="json"))
    client.delete(f"{URL}/{made['id']}")
    for raw in (made["key"], rotated["key"]):
        assert error_of(client_for(raw).get("/api/v1/orders"), 401)["code"] == "invalid_api_key"


def test_a_key_can_rotate_itself_and_keep_working_through_the_grace(make_key):
    raw = make_key("keys:manage", "orders:read", name="self")
    me = ApiKey.objects.get(name="self")
    rotated = data_of(client_for(raw).post(f"{URL}/{me.pk}/rotate", {"grace_seconds": 60},
                                           format="json"))
    assert client_for(raw).get(URL).status_code == 200
    assert client_for(rotated["key"]).get(URL).status_code == 200


# --- secrets are shown once: never in idempotency records or logs ---------------------------------


def test_idempotent_replays_do_not_reveal_the_secret(make_key):
    client = manager(make_key, "orders:read")
    body = {"name": "once", "scopes": ["orders:read"]}
    first = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    made = data_of(first, 201)
    replay = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    assert replay["Idempotent-Replayed"] == "true"
    assert data_of(replay, 201) == {**made, "key": None}
    assert ApiKey.objects.filter(name="once").count() == 1

    rotated = data_of(client.post(f"{URL}/{made['id']}/rotate", {"grace_seconds": 5}, format="json",
                                  HTTP_IDEMPOTENCY_KEY="rotate-1"))
    replay = client.post(f"{URL}/{made['id']}/rotate", {"grace_seconds": 5}, format="json",
                         HTTP_IDEMPOTENCY_KEY="rotate-1")
    assert data_of(replay) == {**rotated, "key": None}
    assert client_for(rotated["key"]).get("/api/v1/orders").status_code == 200  # not rotated twice

    records = json.dumps(list(IdempotencyRecord.objects.values()), default=str)
    assert made["key"] not in records and rotated["key"] not in records
    assert records.count('"key": null') == 2


def test_secrets_never_reach_a_log_line(make_key, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    client = manager(make_key, "orders:read")
    made = create(client)
    client_for(made["key"]).get("/api/v1/orders")
    client_for(made["key"]).get("/api/v1/nothing-here")
    rotated = data_of(client.post(f"{URL}/{made['id']}/rotate", {"grace_seconds": 5},
                                  format="json"))
    client_for(rotated["key"]).post("/api/v1/orders", "{bad json", content_type="application/json")
    logged = caplog.text + repr([record.__dict__ for record in caplog.records]) + "".join(
        capfd.readouterr())
    assert logged  # the request log lines were captured
    assert made["key"] not in logged and rotated["key"] not in logged
    assert made["key"][3:] not in logged


# --- hashes: legacy SHA-256 rows ------------------------------------------------------------------


def test_legacy_sha256_key_authenticates_and_is_rehashed_on_first_use(anon_client):
    raw = "sk_legacy_key_made_before_keyed_hashing"
    legacy = ApiKey.objects.create(name="legacy", prefix=raw[:10], key_hash=hash_key(raw, SHA256),
                                   hash_scheme=SHA256, scopes=["orders:read"])
    anon_client.credentials(HTTP_X_API_KEY=raw)
    assert anon_client.get("/api/v1/orders").status_code == 200
    legacy.refresh_from_db()
    assert (legacy.hash_scheme, legacy.key_hash) == (HMAC_SHA256, hash_key(raw))
    key_cache.clear()
    assert anon_client.get("/api/v1/orders").status_code == 200
    assert error_of(anon_client.get("/api/v1/inventory"), 403)["code"] == "insufficient_scope"


def test_a_digest_of_the_other_scheme_never_matches(anon_client):
    raw = "sk_cross_scheme_key_0123456789"
    # A row claiming to be HMAC but holding the plain digest (or the reverse) names no key.
    ApiKey.objects.create(name="a", prefix="x", key_hash=hash_key(raw, SHA256),
                          hash_scheme=HMAC_SHA256, scopes=["*"])
    anon_client.credentials(HTTP_X_API_KEY=raw)
    assert error_of(anon_client.get("/api/v1/orders"), 401)["code"] == "invalid_api_key"


def test_a_legacy_key_rotated_with_grace_keeps_its_old_secret_for_the_grace(make_key, anon_client):
    raw = "sk_legacy_key_rotated_with_grace_0001"
    legacy = ApiKey.objects.create(name="legacy", prefix=raw[:10], key_hash=hash_key(raw, SHA256),
                                   hash_scheme=SHA256, scopes=["orders:read"])
    _, new = services.api_key_rotate(api_key_id=legacy.pk, grace_seconds=60)
    legacy.refresh_from_db()
    assert legacy.previous_hash_scheme == SHA256 and legacy.hash_scheme == HMAC_SHA256
    for secret in (raw, new):
        anon_client.credentials(HTTP_X_API_KEY=secret)
        assert anon_client.get("/api/v1/orders").status_code == 200


def test_the_pepper_changes_every_stored_hash(settings):
    raw = "sk_same_secret_two_peppers_000"
    settings.API_KEY_PEPPER = ""
    derived = hash_key(raw)
    settings.API_KEY_PEPPER = "p" * 32
    assert hash_key(raw) != derived != hash_key(raw, SHA256)
